//! `infra-topology`: reads an `infra.yaml` and turns it into a checked [`Topology`].
//!
//! Loading never panics and never stops at the first problem it can see past: YAML syntax
//! errors stop it (nothing after them can be trusted), but unknown keys and every semantic
//! check are reported all at once, each with `file:line:col`, what was expected and a hint.
//! YAML stays behind this crate (serde-saphyr today), so the parser can be swapped.

mod diagnostic;
mod model;
mod names;
mod node;
mod raw;
pub mod reserved;
pub mod rules;
mod secret;
mod source;
pub mod text;
mod validate;

use std::path::Path;

pub use diagnostic::{Diagnostic, Diagnostics, SHOWN_LIMIT, Severity};
pub use model::*;
pub use secret::{Secret, SecretSource};
pub use source::{Position, SourceFile, read_regular_file};
pub use validate::{EnvLookup, Resolve, resolve_system};

/// Why a topology could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read the topology")]
    Read(#[source] std::io::Error),
    /// The file was read but is not a valid topology; the findings say why.
    #[error("{} in `{}`", summary(.diagnostics), .source_file.path().display())]
    Invalid {
        /// The file, for rendering the findings.
        source_file: Box<SourceFile>,
        /// Every finding (at least one error).
        diagnostics: Diagnostics,
    },
}

fn summary(diagnostics: &Diagnostics) -> String {
    let errors = diagnostics.error_count();
    format!("{errors} error{}", if errors == 1 { "" } else { "s" })
}

/// A topology that passed validation, with the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The checked topology.
    pub topology: Topology,
    /// The file it came from.
    pub source: SourceFile,
    /// Warnings (never errors).
    pub warnings: Diagnostics,
}

/// The largest topology file `infra` reads: real ones are a few KiB.
pub const TOPOLOGY_LIMIT: u64 = 1024 * 1024;

/// Reads and validates the topology at `path`. `env` resolves `${env:NAME}` secrets (and
/// `HOME`, for `~/` in key paths); hosts given by DNS name are resolved by the system. Only a regular file of at most [`TOPOLOGY_LIMIT`] bytes is
/// read: a FIFO, a device or a huge file is an error, never a hang.
pub fn load(path: &Path, env: EnvLookup<'_>) -> Result<Loaded, LoadError> {
    let text = read_regular_file(path, TOPOLOGY_LIMIT).map_err(LoadError::Read)?;
    load_source(SourceFile::new(path, text), env)
}

/// Validates topology text that was already read (used by `load`, tests and fuzzing).
pub fn load_source(source: SourceFile, env: EnvLookup<'_>) -> Result<Loaded, LoadError> {
    load_source_resolving(source, env, &resolve_system)
}

/// [`load_source`] with host names resolved by `resolve` instead of the system.
pub fn load_source_resolving(
    source: SourceFile,
    env: EnvLookup<'_>,
    resolve: Resolve<'_>,
) -> Result<Loaded, LoadError> {
    let mut diagnostics = Diagnostics::default();
    let base_dir = match source.path().parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let topology = parse(&source, &mut diagnostics).and_then(|raw| {
        validate::validate(
            raw,
            &base_dir,
            source.path(),
            env,
            resolve,
            &mut diagnostics,
        )
    });
    match topology {
        Some(topology) if !diagnostics.has_errors() => Ok(Loaded {
            topology,
            source,
            warnings: diagnostics,
        }),
        _ => Err(LoadError::Invalid {
            source_file: Box::new(source),
            diagnostics,
        }),
    }
}

/// The JSON Schema of the topology file, for editors (`infra schema`).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(raw::RawTopology);
    serde_json::to_value(&schema).unwrap_or_default()
}

/// The deepest nesting a topology may have. Real topologies need about 6 levels; the limit keeps
/// recursive deserialization far from the stack's end even in debug builds on test threads.
const MAX_DEPTH: usize = 20;

/// YAML to raw types. Syntax errors end here; unknown keys are all collected first.
fn parse(source: &SourceFile, diagnostics: &mut Diagnostics) -> Option<raw::RawTopology> {
    let options = serde_saphyr::options! { budget: serde_saphyr::budget! { max_depth: MAX_DEPTH, max_nodes: 200_000 } };
    let tree = match serde_saphyr::from_str_with_options::<raw::Sp<node::Node>>(
        source.text(),
        options.clone(),
    ) {
        Ok(tree) => tree,
        Err(error) => {
            diagnostics.push(yaml_error(&error));
            return None;
        }
    };
    if !matches!(tree.value, node::Node::Mapping(_)) {
        let mut d = Diagnostic::error(tree.position, "the topology is not a mapping");
        d.expected("keys such as `name:`, `hosts:`, `web:` at the top level");
        diagnostics.push(d);
        return None;
    }
    let unknown = node::unknown_keys(&tree, &json_schema());
    if !unknown.is_empty() {
        diagnostics.extend(unknown);
        return None;
    }
    match serde_saphyr::from_str_with_options::<raw::RawTopology>(source.text(), options) {
        Ok(raw) => Some(raw),
        Err(error) => {
            diagnostics.push(yaml_error(&error));
            None
        }
    }
}

fn yaml_error(error: &serde_saphyr::Error) -> Diagnostic {
    let position = error
        .location()
        .map_or(Position::UNKNOWN, |l| Position::from_location(&l));
    let text = error.without_snippet().to_string();
    // serde-saphyr appends " at line L, column C"; the position is shown separately.
    let message = match text.rfind(" at line ") {
        Some(index) => text[..index].trim().to_owned(),
        None => text.trim().to_owned(),
    };
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        let mut diagnostic = Diagnostic::error(position, format!("duplicate key `{key}`"));
        diagnostic.expected("each key (and each host name) once in its mapping");
        return diagnostic;
    }
    if message.contains("budget breached") || message.contains("recursion limit") {
        let mut diagnostic = Diagnostic::error(
            position,
            "the file is nested too deeply or expands too much",
        );
        diagnostic.expected(format!(
            "at most {MAX_DEPTH} levels of nesting and no alias expansion bombs"
        ));
        return diagnostic;
    }
    let expected = match message.as_str() {
        "invalid u16" => Some("a whole number from 0 to 65535"),
        "invalid u32" => Some("a whole number from 0 to 4294967295"),
        "invalid u8" => Some("a whole number from 0 to 255"),
        m if m.contains("bool") => Some("`true` or `false`"),
        _ => None,
    };
    let shown = if expected.is_some() && message.starts_with("invalid u") {
        "invalid number".to_owned()
    } else {
        message.clone()
    };
    let mut diagnostic = Diagnostic::error(position, shown);
    if let Some(expected) = expected {
        diagnostic.expected(expected);
    }
    if message.contains("missing field") {
        diagnostic.hint("see docs/topology.md for the keys each section needs");
    }
    diagnostic
}
