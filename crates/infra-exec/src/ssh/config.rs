//! The OpenSSH client configuration `infra` writes for its own connections, in its private
//! control folder. It is the only `-F` file `infra` passes: a config file found in a checkout
//! (a lab's, a pull request's) is never used, so a `ProxyCommand` in one cannot run here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::ssh::HostKeyPolicy;

/// What the written configuration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The private key for the host and its jump hosts, if one is named.
    pub identity: Option<PathBuf>,
    /// A known_hosts file to use instead of the user's (the lab's).
    pub known_hosts: Option<PathBuf>,
    /// Host key policy (applies to jump hosts too).
    pub host_keys: HostKeyPolicy,
    /// The user's own OpenSSH configuration, included after `infra`'s settings (none for the
    /// lab, whose hosts need nothing from it).
    pub include: Option<PathBuf>,
}

/// Why the configuration cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A path has a character an ssh_config value cannot hold.
    #[error("`{}` cannot be written into an SSH configuration (quotes or control characters)", path.display())]
    UnsafePath {
        /// The path.
        path: PathBuf,
    },
}

fn value(path: &Path) -> Result<String, ConfigError> {
    let text = path.to_string_lossy();
    if text.chars().any(|c| c.is_control() || c == '"') {
        return Err(ConfigError::UnsafePath {
            path: path.to_path_buf(),
        });
    }
    Ok(format!("\"{text}\""))
}

impl ClientConfig {
    /// The configuration's text. `Host *` comes first, so its settings win over the user's
    /// own for every host this connection touches, jump hosts included.
    pub fn render(&self) -> Result<String, ConfigError> {
        let mut text = String::from(
            "# Written by infra for one connection, in its private folder; removed when it ends.\nHost *\n    BatchMode yes\n",
        );
        let strict = match self.host_keys {
            HostKeyPolicy::Strict => "yes",
            HostKeyPolicy::AcceptNew => "accept-new",
        };
        let _ = writeln!(text, "    StrictHostKeyChecking {strict}");
        if let Some(identity) = &self.identity {
            let _ = writeln!(
                text,
                "    IdentityFile {}\n    IdentitiesOnly yes",
                value(identity)?
            );
        }
        if let Some(known) = &self.known_hosts {
            let _ = writeln!(
                text,
                "    UserKnownHostsFile {}\n    GlobalKnownHostsFile /dev/null",
                value(known)?
            );
        }
        if let Some(include) = &self.include {
            let _ = writeln!(text, "Include {}", value(include)?);
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_applies_to_every_host_and_paths_are_quoted() {
        let config = ClientConfig {
            identity: Some(PathBuf::from("/home/o p/.ssh/id")),
            known_hosts: None,
            host_keys: HostKeyPolicy::Strict,
            include: Some(PathBuf::from("/home/o p/.ssh/config")),
        };
        let text = config.render().expect("renders");
        assert!(text.contains("Host *\n"));
        assert!(text.contains("IdentityFile \"/home/o p/.ssh/id\""));
        assert!(text.contains("StrictHostKeyChecking yes"));
        assert!(text.ends_with("Include \"/home/o p/.ssh/config\"\n"));
        let hostile = ClientConfig {
            identity: Some(PathBuf::from("/x\"\nProxyCommand touch /tmp/p")),
            ..config
        };
        assert!(hostile.render().is_err());
    }
}
