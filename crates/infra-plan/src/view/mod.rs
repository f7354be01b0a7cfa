//! Views of a plan, derived from it and never read back: the text a person reads, the JSON a
//! pipeline reads.

pub mod json;
pub mod markdown;
pub mod text;
