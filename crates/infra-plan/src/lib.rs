//! `infra-plan`: from a checked topology to the desired state of every host.
//!
//! Pure: it reads local files the topology names (templates, static files, the app's
//! source, a certificate) but never touches a host and never prints.

mod build;
mod context;
mod desired;
mod diff;
pub mod facts;
pub mod firewall;
pub mod graph;
pub mod paths;
pub mod plan;
pub mod shell;
pub mod show;
mod templates;

use std::path::PathBuf;

pub use build::{EdgeCertificate, desired_state};
pub use context::{PLACEHOLDER, Secrets};
pub use desired::*;
pub use templates::{BUILT_IN, Templates};

/// Why the desired state could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template failed to parse or to render (the source names template, line and column).
    #[error("template `{template}` failed")]
    Template {
        /// The template's name.
        template: String,
        /// Tera's report.
        #[source]
        source: Box<tera::Error>,
    },
    /// A file in the override folder does not match any built-in template.
    #[error("`{}` does not override any built-in template (expected one of: {known})", path.display())]
    UnknownOverride {
        /// The file.
        path: PathBuf,
        /// The built-in names.
        known: String,
    },
    /// A local file could not be read.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file to upload has a name that is not safe on the host.
    #[error("`{}` has a name that is not safe to upload (letters, digits, `.`, `_` and `-` only)", path.display())]
    UnsafeUploadName {
        /// The file.
        path: PathBuf,
    },
    /// TLS was asked for but no certificate was given or generated.
    #[error("TLS is enabled but no certificate was provided")]
    MissingCertificate,
}
