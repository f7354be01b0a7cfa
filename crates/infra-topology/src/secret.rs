//! Secrets: written in the topology only as references, resolved at run time, never shown.

use std::fmt;
use std::path::PathBuf;

/// Where a secret comes from, as written in the topology.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "from", rename_all = "lowercase")]
pub enum SecretSource {
    /// `${env:NAME}`: an environment variable of the `infra` process.
    Env(String),
    /// `${file:PATH}`: a local file (relative to the topology), its trailing newline removed.
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "${{env:{name}}}"),
            SecretSource::File(path) => write!(f, "${{file:{}}}", path.display()),
        }
    }
}

/// A resolved secret. Its `Debug` and `Display` never show the value; only
/// [`Secret::expose`] does, and only the renderer calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    source: SecretSource,
    value: String,
}

impl Secret {
    /// Pairs a reference with the value it resolved to.
    pub fn new(source: SecretSource, value: String) -> Secret {
        Secret { source, value }
    }

    /// Where the value came from (safe to print).
    pub fn source(&self) -> &SecretSource {
        &self.source
    }

    /// The secret value itself. Callers must keep it out of output and logs.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}, (sensitive value))", self.source)
    }
}

/// Parses `${env:NAME}` or `${file:PATH}`; `None` when `text` is not a reference.
pub fn parse_reference(text: &str) -> Option<SecretSource> {
    let inner = text.trim().strip_prefix("${")?.strip_suffix('}')?;
    let (kind, rest) = inner.split_once(':')?;
    match kind {
        "env" => Some(SecretSource::Env(rest.to_owned())),
        "file" => Some(SecretSource::File(PathBuf::from(rest))),
        _ => None,
    }
}

/// True when `text` looks like a `${...}` reference at all (to give a precise error for
/// `${vault:x}` and the like).
pub fn looks_like_reference(text: &str) -> bool {
    text.trim().starts_with("${")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_literals_do_not() {
        assert_eq!(
            parse_reference("${env:DB_PASS}"),
            Some(SecretSource::Env("DB_PASS".into()))
        );
        assert_eq!(
            parse_reference("${file:./k.pem}"),
            Some(SecretSource::File("./k.pem".into()))
        );
        assert_eq!(parse_reference("hunter2"), None);
        assert_eq!(parse_reference("${vault:x}"), None);
    }

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new(SecretSource::Env("X".into()), "hunter2".into());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
