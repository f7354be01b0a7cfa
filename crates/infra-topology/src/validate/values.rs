//! Values shared by every part of the file: secrets, URL paths, remote paths, local folders.

use std::path::{Component, Path, PathBuf};

use super::Checker;
use crate::model::RemotePath;
use crate::raw::Sp;
use crate::rules::{
    self, KEEPALIVED_PASSWORD_LENGTH, MAX_SECRET_LENGTH, MIN_SECRET_LENGTH, SecretFormat,
};
use crate::secret::{self, Secret, SecretSource};
use crate::source;

/// The largest `${file:...}` secret `infra` reads.
const SECRET_FILE_LIMIT: u64 = 64 * 1024;

/// Where a secret ends up, which decides the characters and length it may have.
#[derive(Debug, Clone, Copy)]
pub(super) struct SecretUse {
    /// The formats the value is written into.
    pub formats: &'static [SecretFormat],
    /// How long it may be.
    pub length: SecretLength,
}

/// How long a secret may be.
#[derive(Debug, Clone, Copy)]
pub(super) enum SecretLength {
    /// From [`MIN_SECRET_LENGTH`] to [`MAX_SECRET_LENGTH`].
    Usual,
    /// Exactly this many characters.
    Exactly(usize),
}

impl SecretUse {
    /// The stats page's password, in `haproxy.cfg`.
    pub const STATS: SecretUse = SecretUse {
        formats: &[SecretFormat::Haproxy],
        length: SecretLength::Usual,
    };
    /// The VRRP password, in `keepalived.conf`, which uses exactly 8 characters.
    pub const VRRP: SecretUse = SecretUse {
        formats: &[SecretFormat::Keepalived],
        length: SecretLength::Exactly(KEEPALIVED_PASSWORD_LENGTH),
    };
    /// The app's database password: SQL, and the app's environment file.
    pub const APP_DATABASE: SecretUse = SecretUse {
        formats: &[SecretFormat::Sql, SecretFormat::SystemdEnvironment],
        length: SecretLength::Usual,
    };
    /// The replication password: SQL only.
    pub const REPLICATION: SecretUse = SecretUse {
        formats: &[SecretFormat::Sql],
        length: SecretLength::Usual,
    };
    /// The database password of MariaDB's exporter: SQL, and the exporter's client file, from
    /// which Debian 12's exporter builds a Go data source name (which splits at its last `@`
    /// and `/`).
    pub const MONITORING_DATABASE: SecretUse = SecretUse {
        formats: &[
            SecretFormat::Sql,
            SecretFormat::ClientFile,
            SecretFormat::DataSourceName,
        ],
        length: SecretLength::Usual,
    };
    /// A secret in the app's environment file.
    pub const APP_ENVIRONMENT: SecretUse = SecretUse {
        formats: &[SecretFormat::SystemdEnvironment],
        length: SecretLength::Usual,
    };
}

/// Whether a local folder is uploaded to the hosts (and so must stay inside the topology's
/// folder and hold no secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Upload {
    /// Its files are copied to the hosts.
    Yes,
    /// It is only read by `infra` (templates).
    No,
}

impl Checker<'_, '_> {
    /// Resolves a `${env:NAME}` or `${file:PATH}` reference used as `usage`; literals are
    /// refused, and so is a value with a character one of its formats cannot take.
    pub(super) fn secret(
        &mut self,
        value: &Sp<String>,
        key: &str,
        usage: SecretUse,
    ) -> Option<Secret> {
        let (source, resolved) = self.resolve_secret(value, key)?;
        let length = resolved.chars().count();
        let length_problem = match usage.length {
            SecretLength::Usual if length < MIN_SECRET_LENGTH => Some(format!(
                "the value of {source} for `{key}` is {length} characters long"
            )),
            SecretLength::Usual if length > MAX_SECRET_LENGTH => Some(format!(
                "the value of {source} for `{key}` is longer than {MAX_SECRET_LENGTH} characters"
            )),
            SecretLength::Exactly(wanted) if length != wanted => Some(format!(
                "the value of {source} for `{key}` is {length} characters long"
            )),
            SecretLength::Usual | SecretLength::Exactly(_) => None,
        };
        if let Some(message) = length_problem {
            let expected = match usage.length {
                SecretLength::Usual => {
                    format!("{MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters")
                }
                SecretLength::Exactly(wanted) => format!(
                    "exactly {wanted} characters: keepalived uses the first {wanted} and silently drops the rest"
                ),
            };
            let hint = match usage.length {
                SecretLength::Usual => "generate one with `openssl rand -hex 16`",
                SecretLength::Exactly(_) => "generate one with `openssl rand -hex 4`",
            };
            self.error(value.position, message)
                .expected(expected)
                .hint(hint);
            return None;
        }
        if let Some(bad) = rules::secret_character_problem(&resolved, usage.formats) {
            let format = usage
                .formats
                .iter()
                .find(|f| f.forbidden().contains(&bad))
                .map_or_else(
                    || "no config file `infra` writes can hold".to_owned(),
                    |f| format!("{} cannot hold", f.describe()),
                );
            let shown = match bad {
                ' ' => "a space".to_owned(),
                c if c.is_control() || c.is_whitespace() => "a control character".to_owned(),
                c if !c.is_ascii() => format!("the non-ASCII character `{c}`"),
                c => format!("`{c}`"),
            };
            let forbidden: Vec<String> = usage
                .formats
                .iter()
                .flat_map(|f| f.forbidden())
                .map(|c| format!("`{c}`"))
                .collect();
            let mut expected = "printable ASCII without spaces".to_owned();
            if !forbidden.is_empty() {
                expected.push_str(&format!(", and none of {}", forbidden.join(" ")));
            }
            self.error(
                value.position,
                format!("the value of {source} for `{key}` has {shown}, which {format}"),
            )
            .expected(expected)
            .hint(match usage.length {
                SecretLength::Usual => "generate one with `openssl rand -hex 16`",
                SecretLength::Exactly(_) => "generate one with `openssl rand -hex 4`",
            });
            return None;
        }
        Some(Secret::new(source, resolved))
    }

    /// Resolves a PEM private key reference (`tls.key_file`).
    pub(super) fn pem_key(&mut self, value: &Sp<String>, key: &str) -> Option<Secret> {
        let (source, resolved) = self.resolve_secret(value, key)?;
        if !resolved.contains("PRIVATE KEY-----") {
            self.error(
                value.position,
                format!("{source} for `{key}` is not a PEM private key"),
            )
            .expected("a PEM file that contains `-----BEGIN ... PRIVATE KEY-----`");
            return None;
        }
        Some(Secret::new(source, resolved))
    }

    fn resolve_secret(&mut self, value: &Sp<String>, key: &str) -> Option<(SecretSource, String)> {
        let Some(source) = secret::parse_reference(&value.value) else {
            let d = self.error(
                value.position,
                format!("`{key}` must be a secret reference"),
            );
            d.expected = Some("`${env:NAME}` or `${file:PATH}`".to_owned());
            d.hint = Some(if secret::looks_like_reference(&value.value) {
                "only `env:` and `file:` references are supported".to_owned()
            } else {
                "secrets are never written in the topology: put the value in an environment variable or a file".to_owned()
            });
            return None;
        };
        let resolved = match &source {
            SecretSource::Env(name) => {
                if !rules::is_env_name(name) {
                    self.error(
                        value.position,
                        format!("`{name}` is not a valid environment variable name"),
                    )
                    .expected("letters, digits and `_`");
                    return None;
                }
                match (self.env)(name) {
                    Some(v) => v,
                    None => {
                        self.error(value.position, format!("environment variable `{name}` for `{key}` is not set"))
                            .expected("the variable to be set when `infra` runs")
                            .hint(format!("export {name}=... (for example `export {name}=$(openssl rand -hex 16)`)"));
                        return None;
                    }
                }
            }
            SecretSource::File(path) => {
                let path = self.base_dir.join(path);
                match source::read_regular_file(&path, SECRET_FILE_LIMIT) {
                    Ok(text) => {
                        if let Ok(canonical) = path.canonicalize() {
                            self.secret_files.push((canonical, key.to_owned()));
                        }
                        text.trim_end_matches(['\n', '\r']).to_owned()
                    }
                    Err(error) => {
                        self.error(
                            value.position,
                            format!(
                                "cannot read secret file `{}` for `{key}`: {error}",
                                path.display()
                            ),
                        )
                        .expected(format!(
                            "a readable regular file of at most {} KiB, relative to the topology file",
                            SECRET_FILE_LIMIT / 1024
                        ));
                        return None;
                    }
                }
            }
        };
        Some((source, resolved))
    }

    pub(super) fn url_path(&mut self, value: Option<&Sp<String>>, default: &str) -> String {
        match value {
            Some(p) if !rules::is_url_path(&p.value) => {
                self.error(p.position, format!("`{}` is not a safe URL path", p.value))
                    .expected("a path starting with `/` made of letters, digits and `/ . _ - ~`");
                default.to_owned()
            }
            Some(p) => p.value.clone(),
            None => default.to_owned(),
        }
    }

    pub(super) fn remote_path(
        &mut self,
        value: Option<&Sp<String>>,
        default: &str,
        key: &str,
    ) -> Option<RemotePath> {
        match value {
            Some(p) => match RemotePath::new(p.value.trim_end_matches('/')) {
                Some(path) => Some(path),
                None => {
                    self.error(
                        p.position,
                        format!("`{}` in `{key}` is not a safe absolute path", p.value),
                    )
                    .expected("an absolute path of letters, digits and `/ . _ -`, without `..`");
                    None
                }
            },
            None => RemotePath::new(default),
        }
    }

    /// A local folder named by `key`. One that is uploaded must be inside the topology's
    /// folder (no absolute path, no `..`, no link leading out), outside `.infra/`, and may not
    /// hold the topology file itself.
    pub(super) fn local_folder(
        &mut self,
        value: &Sp<String>,
        key: &str,
        upload: Upload,
    ) -> Option<PathBuf> {
        if value.value.contains('\0') || value.value.is_empty() {
            self.error(value.position, format!("`{key}` is not a usable path"))
                .expected("a folder path");
            return None;
        }
        let relative = Path::new(&value.value);
        if upload == Upload::Yes {
            let escapes = relative.is_absolute()
                || relative.components().any(|c| {
                    matches!(
                        c,
                        Component::ParentDir | Component::RootDir | Component::Prefix(_)
                    )
                });
            if escapes {
                self.error(
                    value.position,
                    format!("`{key}` must be a folder inside the topology's folder"),
                )
                .expected("a relative path without `..`, such as `site`")
                .hint("everything in it is copied to the hosts; keep it next to the topology file");
                return None;
            }
        }
        let path = self.base_dir.join(relative);
        if !path.is_dir() {
            self.error(
                value.position,
                format!("`{key}`: folder `{}` does not exist", path.display()),
            )
            .expected("an existing folder, relative to the topology file");
            return None;
        }
        if upload == Upload::Yes {
            return self.confined_upload(value, key, path);
        }
        Some(path)
    }

    fn confined_upload(&mut self, value: &Sp<String>, key: &str, path: PathBuf) -> Option<PathBuf> {
        let (Ok(canonical), Ok(base)) = (path.canonicalize(), self.base_dir.canonicalize()) else {
            self.error(
                value.position,
                format!("`{key}`: cannot resolve `{}`", path.display()),
            )
            .expected("an existing folder inside the topology's folder");
            return None;
        };
        let problem = if !canonical.starts_with(&base) {
            Some("leads outside the topology's folder (through a link)".to_owned())
        } else if canonical.starts_with(base.join(".infra")) {
            Some("is inside `.infra/`, which holds `infra`'s keys and secrets".to_owned())
        } else if self
            .topology_file
            .canonicalize()
            .is_ok_and(|file| file.starts_with(&canonical))
        {
            Some("holds the topology file itself".to_owned())
        } else {
            None
        };
        if let Some(problem) = problem {
            self.error(
                value.position,
                format!("`{key}` (`{}`) {problem}", value.value),
            )
            .expected("a folder of its own inside the topology's folder, such as `site`")
            .hint("everything in it is copied to the hosts (and the web tier serves it)");
            return None;
        }
        self.upload_folders
            .push((canonical.clone(), key.to_owned(), value.position));
        Some(canonical)
    }
}

/// `~/` at the start of `path` is the controller user's home folder; other relative paths
/// start at the topology's folder.
pub(super) fn expand_home(path: &str, base_dir: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => base_dir.join(path),
    }
}
