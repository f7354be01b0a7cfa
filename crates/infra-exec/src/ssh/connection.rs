//! One SSH connection: the system OpenSSH client with one multiplexed master connection per
//! host (the `openssh` crate, native mux), so the user's `~/.ssh/config`, the agent,
//! `ProxyJump` and known_hosts work as they do for `ssh`. Host keys are checked strictly by
//! default, for jump hosts too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use infra_topology::{Become, Host};
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::RwLock;

use super::config::ClientConfig;
use crate::process;

/// What to do with a host key that is not in known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse unknown and changed keys (`StrictHostKeyChecking=yes`).
    Strict,
    /// Trust an unknown key on first use and record it; still refuse a changed one.
    AcceptNew,
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host key policy.
    pub host_keys: HostKeyPolicy,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for each remote command.
    pub command_timeout: Duration,
    /// The private folder for control sockets and `infra`'s own SSH configuration.
    pub control_dir: PathBuf,
    /// The lab's key and known_hosts, when the lab that wrote them is the one in use.
    pub lab: Option<LabAccess>,
    /// The user's OpenSSH configuration to include (`~/.ssh/config` when it exists, or the
    /// file given with `--ssh-config`); never one found in a checkout.
    pub user_config: Option<PathBuf>,
    /// Print each script sent (`-v`), with every here-document body left out: file contents
    /// and SQL, where secrets travel, never reach the terminal.
    pub verbose: bool,
}

/// The lab's client files, used only when its hosts are the running lab's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabAccess {
    /// The lab's private key.
    pub key: PathBuf,
    /// The lab's known_hosts (host keys read through Docker).
    pub known_hosts: PathBuf,
}

/// What went wrong reaching or using a host.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The host's key is not in known_hosts.
    #[error("the host key of `{host}` ({address}) is not known{}", fingerprint_text(.fingerprints))]
    UnknownHostKey {
        /// The host.
        host: String,
        /// Its address.
        address: String,
        /// The fingerprints it offers.
        fingerprints: Vec<String>,
    },
    /// The host's key differs from the one in known_hosts.
    #[error("the host key of `{host}` ({address}) has CHANGED since it was recorded{}", fingerprint_text(.fingerprints))]
    ChangedHostKey {
        /// The host.
        host: String,
        /// Its address.
        address: String,
        /// The fingerprints it offers now.
        fingerprints: Vec<String>,
    },
    /// Authentication failed.
    #[error("`{host}` ({address}) refused the login: {message}")]
    Authentication {
        /// The host.
        host: String,
        /// Its address.
        address: String,
        /// ssh's message.
        message: String,
    },
    /// The host could not be reached.
    #[error("cannot reach `{host}` ({address}): {message}")]
    Unreachable {
        /// The host.
        host: String,
        /// Its address.
        address: String,
        /// ssh's message.
        message: String,
    },
    /// A remote command could not be run or its connection broke.
    #[error("on `{host}`: {message}")]
    Command {
        /// The host.
        host: String,
        /// What happened.
        message: String,
    },
    /// `infra`'s own SSH configuration could not be written.
    #[error("cannot prepare the SSH connection to `{host}`: {message}")]
    Setup {
        /// The host.
        host: String,
        /// Why.
        message: String,
    },
    /// The connection was closed.
    #[error("the connection to `{host}` is closed")]
    Closed {
        /// The host.
        host: String,
    },
    /// A remote command did not finish in time.
    #[error("on `{host}`: a command did not finish within {seconds} s")]
    Timeout {
        /// The host.
        host: String,
        /// The limit.
        seconds: u64,
    },
}

fn fingerprint_text(fingerprints: &[String]) -> String {
    if fingerprints.is_empty() {
        String::new()
    } else {
        format!(": it offers {}", fingerprints.join(", "))
    }
}

impl TransportError {
    /// What the user should do.
    pub fn hint(&self) -> Option<String> {
        match self {
            TransportError::UnknownHostKey { address, .. } => Some(format!(
                "check the fingerprint out of band, then add it (`ssh-keyscan {address} >> ~/.ssh/known_hosts`), or pass `--accept-new-host-keys` to trust it on first use"
            )),
            TransportError::ChangedHostKey { address, .. } => Some(format!(
                "if the host was reinstalled, remove the old key (`ssh-keygen -R {address}`) and check the new one; otherwise someone may be intercepting the connection"
            )),
            TransportError::Authentication { .. } => Some(
                "check `ssh.user` and `ssh.identity_file`, or that your agent holds the key"
                    .to_owned(),
            ),
            TransportError::Unreachable { .. } => {
                Some("check the address, that sshd runs, and any `ssh.jump` host".to_owned())
            }
            _ => None,
        }
    }
}

/// The output of a remote script.
#[derive(Debug, Clone)]
pub struct ScriptOutput {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
}

/// A live connection to one host.
pub struct Connection {
    session: RwLock<Option<Session>>,
    round_trips: std::sync::atomic::AtomicUsize,
    host: String,
    become_method: Become,
    command_timeout: Duration,
    verbose: bool,
}

impl Connection {
    /// Opens the master connection to `host`.
    pub async fn open(host: &Host, options: &ConnectOptions) -> Result<Connection, TransportError> {
        let address = host.ssh_address().to_string();
        let config = ClientConfig {
            // A key the topology names wins; the lab's key is for hosts that name none.
            identity: host
                .ssh
                .identity_file
                .clone()
                .or_else(|| options.lab.as_ref().map(|lab| lab.key.clone())),
            known_hosts: options.lab.as_ref().map(|lab| lab.known_hosts.clone()),
            host_keys: options.host_keys,
            include: match options.lab {
                Some(_) => None,
                None => options.user_config.clone(),
            },
        };
        let setup = |message: String| TransportError::Setup {
            host: host.name.to_string(),
            message,
        };
        let text = config.render().map_err(|e| setup(e.to_string()))?;
        let config_path =
            options
                .control_dir
                .join(format!("config-{}-{}", std::process::id(), host.name));
        crate::files::write_transient(&config_path, text.as_bytes(), 0o600)
            .map_err(|e| setup(format!("cannot write `{}`: {e}", config_path.display())))?;
        let mut builder = SessionBuilder::default();
        builder
            .user(host.ssh.user.clone())
            .port(host.ssh_port())
            .known_hosts_check(match options.host_keys {
                HostKeyPolicy::Strict => KnownHosts::Strict,
                HostKeyPolicy::AcceptNew => KnownHosts::Add,
            })
            .connect_timeout(options.connect_timeout)
            .server_alive_interval(Duration::from_secs(10))
            .control_persist(ControlPersist::IdleFor(
                std::num::NonZeroUsize::MIN.saturating_add(59),
            ))
            .control_directory(&options.control_dir)
            .config_file(&config_path);
        if !host.ssh.jump.is_empty() {
            builder.jump_hosts(host.ssh.jump.iter());
        }
        let destination = if address.contains(':') {
            format!("[{address}]")
        } else {
            address.clone()
        };
        let connected = builder.connect_mux(destination).await;
        // The master and its jump hosts have read it; nothing reads it again.
        let _ = std::fs::remove_file(&config_path);
        match connected {
            Ok(session) => Ok(Connection {
                session: RwLock::new(Some(session)),
                round_trips: std::sync::atomic::AtomicUsize::new(0),
                host: host.name.to_string(),
                become_method: host.become_method,
                command_timeout: options.command_timeout,
                verbose: options.verbose,
            }),
            Err(error) => Err(classify(host, &error, options).await),
        }
    }

    /// How many commands ran over this connection (each one SSH round trip).
    pub fn round_trips(&self) -> usize {
        self.round_trips.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The host's name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// How commands get root there.
    pub fn become_method(&self) -> Become {
        self.become_method
    }

    /// Runs `script` with `sh -s` as root (`sudo -n` when the login user is not root), the
    /// script on stdin (never on the command line, where it could show in process lists).
    pub async fn run_script(&self, script: &str) -> Result<ScriptOutput, TransportError> {
        self.round_trips
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.verbose {
            let shown = super::script::without_data(script);
            eprintln!(
                "{}: sh -s <<'SCRIPT'\n{}SCRIPT",
                self.host,
                infra_topology::text::visible(&shown)
            );
        }
        let guard = self.session.read().await;
        let Some(session) = guard.as_ref() else {
            return Err(TransportError::Closed {
                host: self.host.clone(),
            });
        };
        let mut command = match self.become_method {
            Become::None => {
                let mut c = session.command("sh");
                c.arg("-s");
                c
            }
            Become::Sudo => {
                let mut c = session.command("sudo");
                c.args(["-n", "--", "sh", "-s"]);
                c
            }
        };
        command
            .stdin(openssh::Stdio::piped())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped());
        let run = async {
            let mut child = command.spawn().await.map_err(|e| self.command_error(&e))?;
            if let Some(mut stdin) = child.stdin().take() {
                stdin
                    .write_all(script.as_bytes())
                    .await
                    .map_err(|e| self.command_error(&e))?;
                // Dropping stdin sends EOF; a shutdown alone does not.
                drop(stdin);
            }
            child
                .wait_with_output()
                .await
                .map_err(|e| self.command_error(&e))
        };
        let output = tokio::time::timeout(self.command_timeout, run)
            .await
            .map_err(|_| TransportError::Timeout {
                host: self.host.clone(),
                seconds: self.command_timeout.as_secs(),
            })??;
        Ok(ScriptOutput {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code(),
        })
    }

    fn command_error(&self, error: &dyn std::fmt::Display) -> TransportError {
        TransportError::Command {
            host: self.host.clone(),
            message: error.to_string(),
        }
    }

    /// Closes the master connection (later commands fail as closed).
    pub async fn close(&self) {
        if let Some(session) = self.session.write().await.take() {
            let _ = session.close().await;
        }
    }
}

/// Turns ssh's complaint into an error that says what happened, with the host key's
/// fingerprint when the key is the problem.
async fn classify(host: &Host, error: &openssh::Error, options: &ConnectOptions) -> TransportError {
    let config = options.lab.as_ref().map(|lab| lab.known_hosts.as_path());
    let message = error_text(error);
    let address = host.ssh_address().to_string();
    let name = host.name.to_string();
    if message.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || message.contains("Host key for") && message.contains("has changed")
    {
        return TransportError::ChangedHostKey {
            fingerprints: fingerprints(host, config).await,
            host: name,
            address,
        };
    }
    if message.contains("Host key verification failed") || message.contains("host key is known") {
        return TransportError::UnknownHostKey {
            fingerprints: fingerprints(host, config).await,
            host: name,
            address,
        };
    }
    if message.contains("Permission denied") {
        return TransportError::Authentication {
            host: name,
            address,
            message: process::tail(&message, 1),
        };
    }
    TransportError::Unreachable {
        host: name,
        address,
        message: process::tail(&message, 2),
    }
}

fn error_text(error: &openssh::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push('\n');
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The fingerprints the host offers now (`ssh-keyscan | ssh-keygen -lf -`).
async fn fingerprints(host: &Host, _known_hosts: Option<&Path>) -> Vec<String> {
    let port = host.ssh_port().to_string();
    let address = host.ssh_address().to_string();
    let Ok(scan) = process::run(
        "ssh-keyscan",
        ["-T", "5", "-p", port.as_str(), address.as_str()],
        None,
        Duration::from_secs(10),
    )
    .await
    else {
        return Vec::new();
    };
    let Ok(listed) = process::run(
        "ssh-keygen",
        ["-l", "-f", "-"],
        Some(scan.stdout.as_bytes()),
        Duration::from_secs(10),
    )
    .await
    else {
        return Vec::new();
    };
    listed
        .stdout
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let _bits = parts.next()?;
            let fingerprint = parts.next()?;
            let kind = parts.last()?.trim_matches(|c| c == '(' || c == ')');
            Some(format!("{kind} {fingerprint}"))
        })
        .collect()
}
