//! The lab's files on the control machine: its SSH key, known_hosts and an OpenSSH config
//! that `infra` (and a person with `ssh -F`) uses to reach the lab hosts with strict
//! host-key checking.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::LabError;
use super::layout::Layout;
use crate::process;

/// Paths of one topology's lab files: `<topology dir>/.infra/lab/<topology>/`.
#[derive(Debug, Clone)]
pub struct LabFiles {
    /// The folder.
    pub dir: PathBuf,
}

impl LabFiles {
    /// The lab files of topology `name` whose file lives in `base_dir`.
    pub fn new(base_dir: &Path, name: &str) -> LabFiles {
        let base = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
        LabFiles {
            dir: base.join(".infra").join("lab").join(name),
        }
    }

    /// The private key (mode 0600).
    pub fn key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// The public key.
    pub fn public_key(&self) -> PathBuf {
        self.dir.join("id_ed25519.pub")
    }

    /// The hosts' keys, for `StrictHostKeyChecking yes`.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The OpenSSH client configuration for the lab hosts.
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    /// Creates the folder (0700) and the key pair if missing; returns the public key.
    pub async fn ensure_key(&self, topology: &str) -> Result<String, LabError> {
        create_private_dir(&self.dir)?;
        if !self.key().is_file() || !self.public_key().is_file() {
            let _ = fs_err::remove_file(self.key());
            let _ = fs_err::remove_file(self.public_key());
            let key = self.key().display().to_string();
            let comment = format!("infra lab {topology}");
            process::check(
                "ssh-keygen",
                [
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    comment.as_str(),
                    "-f",
                    key.as_str(),
                ],
                None,
                Duration::from_secs(30),
            )
            .await?;
        }
        fs_err::read_to_string(self.public_key()).map_err(|source| LabError::Io {
            path: self.public_key(),
            source,
        })
    }

    /// Writes known_hosts and ssh_config for `layout` (each atomically, mode 0600).
    pub fn write_client_files(
        &self,
        layout: &Layout,
        host_keys: &[(String, Vec<String>)],
    ) -> Result<(), LabError> {
        let mut known = String::new();
        for (address_port, keys) in host_keys {
            for key in keys {
                let _ = writeln!(known, "{address_port} {key}");
            }
        }
        write_private(&self.known_hosts(), &known)?;
        let mut config = format!(
            "# Written by `infra lab up` for topology `{}`; removed by `infra lab down`.\n\
             # Use it as: ssh -F {} root@<address>\n",
            layout.topology,
            self.ssh_config().display()
        );
        for host in &layout.hosts {
            // A host is named by its container, and by its address when no other host shares it.
            let shared = layout
                .hosts
                .iter()
                .filter(|h| h.ssh_address == host.ssh_address)
                .count()
                > 1;
            let names = if shared {
                host.container.clone()
            } else {
                format!("{} {}", host.ssh_address, host.container)
            };
            let _ = write!(
                config,
                "\nHost {names}\n    HostName {address}\n    Port {port}\n    User {user}\n    IdentityFile {key}\n    IdentitiesOnly yes\n    UserKnownHostsFile {known}\n    StrictHostKeyChecking yes\n    GlobalKnownHostsFile /dev/null\n    PasswordAuthentication no\n    BatchMode yes\n",
                address = host.ssh_address,
                port = host.connect_port,
                user = host.user,
                key = self.key().display(),
                known = self.known_hosts().display(),
            );
        }
        write_private(&self.ssh_config(), &config)
    }

    /// Removes the folder and everything in it; fine when it is already gone.
    pub fn remove(&self) -> Result<(), LabError> {
        match fs_err::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(LabError::Io {
                path: self.dir.clone(),
                source,
            }),
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<(), LabError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| LabError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// Writes `text` to `path` atomically, mode 0600.
fn write_private(path: &Path, text: &str) -> Result<(), LabError> {
    crate::files::write_atomic(path, text.as_bytes(), 0o600).map_err(|source| LabError::Io {
        path: path.to_path_buf(),
        source,
    })
}
