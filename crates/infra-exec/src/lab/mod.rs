//! `infra lab`: one Docker container per topology host, running Debian 12 or 13 (`lab.release`,
//! or per host `lab.hosts.<host>.release`) with systemd as PID 1 and sshd, on a Docker network
//! of its own at the addresses the topology gives.
//!
//! Every Docker object carries the labels `infra.lab` and `infra.topology=<name>`, so `down`
//! removes exactly what `up` created and nothing else.

mod docker;
mod files;
mod image;
mod layout;
pub mod limits;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use infra_topology::{Release, Topology};
use ipnet::IpNet;

pub use files::LabFiles;
pub use image::{ImageSource, image};
pub use layout::{LABEL_HOST, LABEL_LAB, LABEL_TOPOLOGY, LabHost, Layout};

use crate::process::{self, ProcessError};

/// Receives progress lines while the lab works.
pub trait Reporter: Send + Sync {
    /// One step done or started, for `host` or for the lab as a whole.
    fn step(&self, host: Option<&str>, message: &str);
}

/// Why a lab operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The topology has no hosts.
    #[error("the topology has no hosts")]
    NoHosts,
    /// `docker` is not installed.
    #[error("`docker` is not installed")]
    DockerMissing,
    /// The Docker engine does not answer.
    #[error("the Docker engine is not running: {message}")]
    DockerNotRunning {
        /// What `docker info` said.
        message: String,
    },
    /// A docker command failed.
    #[error(transparent)]
    Docker(#[from] ProcessError),
    /// A docker command printed something we could not read.
    #[error("cannot read the output of `{what}`")]
    DockerOutput {
        /// The command.
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// debootstrap is needed and missing.
    #[error("`debootstrap` is not installed, and no `debian:<release>` image can be had")]
    DebootstrapMissing,
    /// debootstrap failed.
    #[error("debootstrap failed")]
    Debootstrap(#[source] ProcessError),
    /// `docker import` failed.
    #[error("cannot import the lab image: {message}")]
    ImageImport {
        /// What failed.
        message: String,
    },
    /// Some addresses are outside the lab subnet.
    #[error("the lab subnet `{subnet}` does not hold {outside}")]
    AddressesOutsideSubnet {
        /// The subnet.
        subnet: IpNet,
        /// What is outside it.
        outside: String,
    },
    /// A host's `ssh_address` is neither its address nor a loopback address.
    #[error(
        "the lab cannot reach `{host}` at its ssh_address {address}: a lab host is reached at its address, or at an IPv4 loopback address its SSH port is published on"
    )]
    SshAddressOutsideLab {
        /// The host.
        host: String,
        /// Its ssh_address.
        address: IpAddr,
    },
    /// Lab networks are IPv4.
    #[error("the lab subnet `{subnet}` is IPv6; the lab supports IPv4 subnets only")]
    Ipv6Subnet {
        /// The subnet.
        subnet: IpNet,
    },
    /// Every address of the subnet is taken.
    #[error("no free address in `{subnet}` for the lab network's gateway")]
    NoFreeGateway {
        /// The subnet.
        subnet: IpNet,
    },
    /// Another Docker network overlaps the lab subnet.
    #[error("the lab subnet `{subnet}` overlaps Docker network `{network}` ({other})")]
    SubnetCollision {
        /// Ours.
        subnet: IpNet,
        /// The other network's name.
        network: String,
        /// Its subnet.
        other: IpNet,
    },
    /// Our network exists with another subnet.
    #[error(
        "the lab network `{network}` exists with subnet `{existing}`, but the topology needs `{wanted}`"
    )]
    NetworkChanged {
        /// The network.
        network: String,
        /// Its subnet now.
        existing: String,
        /// What the topology needs.
        wanted: IpNet,
    },
    /// A host did not become reachable over SSH in time.
    #[error("host `{host}` ({address}) did not answer over SSH within {seconds} s: {last_error}")]
    SshTimeout {
        /// The host.
        host: String,
        /// Its address.
        address: IpAddr,
        /// How long we waited.
        seconds: u64,
        /// The last error ssh printed.
        last_error: String,
    },
    /// The kernel's inotify limit is too low for the lab's hosts and cannot be raised here.
    #[error(
        "the lab needs `fs.inotify.max_user_instances` of at least {needed} for its hosts' systemd, and it is {limit}"
    )]
    InotifyLimit {
        /// The limit now.
        limit: u64,
        /// What the lab needs.
        needed: u64,
    },
    /// A local file could not be written or read.
    #[error("cannot write `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl LabError {
    /// What the user can do about it, when we know.
    pub fn hint(&self) -> Option<String> {
        match self {
            LabError::DockerMissing => Some(
                "install Docker (Debian: `apt-get install docker.io`); `./scripts/quickstart` does this for you".to_owned(),
            ),
            LabError::DockerNotRunning { .. } => Some(
                "start the engine: `systemctl start docker`, or without systemd `setsid nohup dockerd >/var/log/dockerd.log 2>&1 &`".to_owned(),
            ),
            LabError::DebootstrapMissing => Some("install it: `apt-get install debootstrap` (as root)".to_owned()),
            LabError::AddressesOutsideSubnet { .. } => Some(
                "set `lab.subnet` to a subnet that holds every host address and the VIP".to_owned(),
            ),
            LabError::SubnetCollision { network, .. } => Some(format!(
                "pick another `lab.subnet` (and host addresses), or remove the network `{network}` if it is unused"
            )),
            LabError::NetworkChanged { .. } => Some("run `infra lab down` first, or `infra lab up --recreate`".to_owned()),
            LabError::SshTimeout { .. } => Some("see `infra lab status`; `infra lab up --recreate` gives fresh hosts".to_owned()),
            LabError::SshAddressOutsideLab { .. } => Some(
                "in a lab, give `ssh_address` a loopback address such as 127.0.0.21, or leave it out".to_owned(),
            ),
            LabError::InotifyLimit { needed, .. } => Some(format!(
                "as root: `sysctl -w fs.inotify.max_user_instances={needed}` (or run `infra lab up` as root, which raises it)"
            )),
            _ => None,
        }
    }
}

/// Options of `infra lab up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Replace existing hosts with fresh ones.
    pub recreate: Recreate,
    /// The Debian mirror debootstrap uses.
    pub mirror: String,
    /// How long to wait for each host's SSH.
    pub ssh_timeout: Duration,
}

/// Whether `lab up` keeps running hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recreate {
    /// Keep hosts that are running (idempotent `up`).
    Keep,
    /// Remove and create every host.
    All,
}

/// What happened to one host during `up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOutcome {
    /// It was running and was kept.
    Kept,
    /// It existed stopped and was started.
    Started,
    /// It was created.
    Created,
}

/// The result of `lab up`.
#[derive(Debug, Clone)]
pub struct UpReport {
    /// The layout brought up.
    pub layout: Layout,
    /// Per host, what happened.
    pub hosts: Vec<(LabHost, HostOutcome)>,
    /// How each release's image was had.
    pub images: Vec<(Release, ImageSource)>,
    /// Time spent on the images.
    pub image_time: Duration,
    /// Time from the image being ready to every host answering SSH.
    pub hosts_time: Duration,
    /// The lab's files.
    pub files: LabFiles,
}

/// One host's state in `lab status`.
#[derive(Debug, Clone)]
pub struct HostStatus {
    /// The host.
    pub host: LabHost,
    /// Its container's state (`running`, `exited`...), or `None` when it does not exist.
    pub container_state: Option<String>,
    /// Whether SSH answered with the lab's key and strict host-key checking.
    pub ssh: bool,
}

/// Brings the lab up (see the module documentation).
pub async fn up(
    topology: &Topology,
    options: &UpOptions,
    reporter: &dyn Reporter,
) -> Result<UpReport, LabError> {
    let layout = Layout::of(topology)?;
    docker::ensure_available().await?;
    ensure_inotify(layout.hosts.len(), reporter)?;
    let started = Instant::now();
    let mut releases: Vec<Release> = layout.hosts.iter().map(|h| h.release).collect();
    releases.sort();
    releases.dedup();
    let mut images = Vec::new();
    for release in releases {
        images.push((
            release,
            image::ensure(release, &options.mirror, reporter).await?,
        ));
    }
    let image_time = started.elapsed();
    let started = Instant::now();
    let files = LabFiles::new(&topology.base_dir, topology.name.as_str());
    let public_key = files.ensure_key(topology.name.as_str()).await?;

    let existing = docker::containers_labelled(LABEL_TOPOLOGY, &layout.topology).await?;
    // Hosts no longer in the topology, or everything with --recreate, go first: they may hold
    // addresses the new containers need.
    for container in &existing {
        let wanted = container
            .label(LABEL_HOST)
            .is_some_and(|h| layout.hosts.iter().any(|l| l.name == h));
        if options.recreate == Recreate::All || !wanted {
            reporter.step(container.label(LABEL_HOST), "removing old container");
            docker::docker(&["rm", "--force", &container.id]).await?;
        }
    }
    ensure_network(&layout, reporter).await?;
    let existing = docker::containers_labelled(LABEL_TOPOLOGY, &layout.topology).await?;

    let public_key = Arc::new(public_key);
    let mut tasks = tokio::task::JoinSet::new();
    for host in layout.hosts.clone() {
        let container = existing
            .iter()
            .find(|c| c.label(LABEL_HOST) == Some(host.name.as_str()))
            .cloned();
        let network = layout.network.clone();
        let topology_name = layout.topology.clone();
        let public_key = Arc::clone(&public_key);
        let files = files.clone();
        let timeout = options.ssh_timeout;
        tasks.spawn(async move {
            let outcome = start_host(&host, container.as_ref(), &network, &topology_name).await?;
            prepare_host(&host, &public_key).await?;
            let keys = host_keys(&host, timeout).await?;
            Ok::<_, LabError>((host, outcome, keys, files))
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (host, outcome, keys, _) = joined.map_err(|e| LabError::Io {
            path: PathBuf::from("<task>"),
            source: std::io::Error::other(e.to_string()),
        })??;
        reporter.step(
            Some(&host.name),
            match outcome {
                HostOutcome::Kept => "kept (already running)",
                HostOutcome::Started => "started",
                HostOutcome::Created => "created",
            },
        );
        results.push((host, outcome, keys));
    }
    results.sort_by_key(|(host, _, _)| layout.hosts.iter().position(|h| h.name == host.name));
    let host_keys: Vec<(String, Vec<String>)> = results
        .iter()
        .map(|(host, _, keys)| (known_hosts_name(host), keys.clone()))
        .collect();
    files.write_client_files(&layout, &host_keys)?;

    let mut waits = tokio::task::JoinSet::new();
    for (host, _, _) in &results {
        let host = host.clone();
        let config = files.ssh_config();
        let timeout = options.ssh_timeout;
        waits.spawn(async move { wait_for_ssh(&host, &config, timeout).await.map(|()| host) });
    }
    while let Some(joined) = waits.join_next().await {
        let host = joined.map_err(|e| LabError::Io {
            path: PathBuf::from("<task>"),
            source: std::io::Error::other(e.to_string()),
        })??;
        reporter.step(Some(&host.name), "answers over SSH");
    }
    Ok(UpReport {
        hosts: results.into_iter().map(|(h, o, _)| (h, o)).collect(),
        layout,
        images,
        image_time,
        hosts_time: started.elapsed(),
        files,
    })
}

/// Checks the kernel's inotify limit for `hosts` lab hosts, raising it when we are root.
fn ensure_inotify(hosts: usize, reporter: &dyn Reporter) -> Result<(), LabError> {
    let path = std::path::Path::new(limits::MAX_USER_INSTANCES);
    let Some(limit) = limits::read(path) else {
        return Ok(());
    };
    let root = crate::ssh::control::current_uid() == 0;
    match limits::decide(limit, hosts, root) {
        limits::Decision::Enough => Ok(()),
        limits::Decision::Raise { from, to } => {
            limits::write(path, to).map_err(|source| LabError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            reporter.step(
                None,
                &format!(
                    "raised fs.inotify.max_user_instances from {from} to {to}: each lab host's systemd holds about 8 (until reboot; `sysctl -w` sets it the same way)"
                ),
            );
            Ok(())
        }
        limits::Decision::TooLow { limit, needed } => Err(LabError::InotifyLimit { limit, needed }),
    }
}

/// Each host's container state and whether SSH answers.
pub async fn status(topology: &Topology) -> Result<Vec<HostStatus>, LabError> {
    let layout = Layout::of(topology)?;
    docker::ensure_available().await?;
    let files = LabFiles::new(&topology.base_dir, topology.name.as_str());
    let existing = docker::containers_labelled(LABEL_TOPOLOGY, &layout.topology).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for host in layout.hosts.clone() {
        let state = existing
            .iter()
            .find(|c| c.label(LABEL_HOST) == Some(host.name.as_str()))
            .map(|c| c.state.clone());
        let config = files.ssh_config();
        tasks.spawn(async move {
            let ssh = state.as_deref() == Some("running")
                && config.is_file()
                && ssh_answers(&host, &config).await.is_ok();
            HostStatus {
                host,
                container_state: state,
                ssh,
            }
        });
    }
    let mut statuses = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(status) = joined {
            statuses.push(status);
        }
    }
    statuses.sort_by_key(|s| layout.hosts.iter().position(|h| h.name == s.host.name));
    Ok(statuses)
}

/// What `lab down` removed.
#[derive(Debug, Clone, Default)]
pub struct DownReport {
    /// Containers removed.
    pub containers: Vec<String>,
    /// Networks removed.
    pub networks: Vec<String>,
}

/// Removes the topology's containers and network (by label) and its lab files.
pub async fn down(topology: &Topology, reporter: &dyn Reporter) -> Result<DownReport, LabError> {
    docker::ensure_available().await?;
    let mut report = DownReport::default();
    for container in docker::containers_labelled(LABEL_TOPOLOGY, topology.name.as_str()).await? {
        if container.label(LABEL_LAB).is_none() {
            continue;
        }
        reporter.step(container.label(LABEL_HOST), "removing container");
        docker::docker(&["rm", "--force", "--volumes", &container.id]).await?;
        report.containers.push(container.name);
    }
    for network in docker::networks().await? {
        if network.labels.get(LABEL_TOPOLOGY) == Some(&topology.name.to_string())
            && network.labels.contains_key(LABEL_LAB)
        {
            reporter.step(None, &format!("removing network `{}`", network.name));
            docker::docker(&["network", "rm", &network.name]).await?;
            report.networks.push(network.name);
        }
    }
    LabFiles::new(&topology.base_dir, topology.name.as_str()).remove()?;
    Ok(report)
}

async fn ensure_network(layout: &Layout, reporter: &dyn Reporter) -> Result<(), LabError> {
    let networks = docker::networks().await?;
    if let Some(ours) = networks.iter().find(|n| n.name == layout.network) {
        let ours_labelled = ours.labels.get(LABEL_TOPOLOGY) == Some(&layout.topology);
        if ours_labelled && ours.subnets.contains(&layout.subnet) {
            return Ok(());
        }
        return Err(LabError::NetworkChanged {
            network: ours.name.clone(),
            existing: ours
                .subnets
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            wanted: layout.subnet,
        });
    }
    for network in &networks {
        if let Some(other) = network.subnets.iter().find(|other| {
            other.contains(&layout.subnet.network()) || layout.subnet.contains(&other.network())
        }) {
            return Err(LabError::SubnetCollision {
                subnet: layout.subnet,
                network: network.name.clone(),
                other: *other,
            });
        }
    }
    reporter.step(
        None,
        &format!("creating network `{}` ({})", layout.network, layout.subnet),
    );
    let subnet = layout.subnet.to_string();
    let gateway = layout.gateway.to_string();
    let lab_label = format!("{LABEL_LAB}=network");
    let topology_label = format!("{LABEL_TOPOLOGY}={}", layout.topology);
    docker::docker(&[
        "network",
        "create",
        "--driver",
        "bridge",
        "--subnet",
        &subnet,
        "--gateway",
        &gateway,
        "--label",
        &lab_label,
        "--label",
        &topology_label,
        &layout.network,
    ])
    .await?;
    Ok(())
}

/// Makes sure the host's container runs, at the right address.
async fn start_host(
    host: &LabHost,
    container: Option<&docker::Container>,
    network: &str,
    topology: &str,
) -> Result<HostOutcome, LabError> {
    if let Some(container) = container {
        let inspected = docker::docker(&["inspect", &container.id])
            .await
            .unwrap_or_default();
        let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap_or_default();
        let right_place = fits(&inspected[0], host, network);
        if right_place && container.state == "running" {
            return Ok(HostOutcome::Kept);
        }
        if right_place {
            docker::docker(&["start", &container.id]).await?;
            return Ok(HostOutcome::Started);
        }
        docker::docker(&["rm", "--force", &container.id]).await?;
    }
    let address = host.address.to_string();
    let image = image::image(host.release);
    let labels = [
        format!("{LABEL_LAB}=host"),
        format!("{LABEL_TOPOLOGY}={topology}"),
        format!("{LABEL_HOST}={}", host.name),
    ];
    let mut args: Vec<&str> = vec![
        "run",
        "--detach",
        "--name",
        &host.container,
        "--hostname",
        &host.name,
        "--network",
        network,
        "--ip",
        &address,
        "--stop-signal",
        "SIGRTMIN+3",
        "--cap-add",
        "SYS_ADMIN",
        "--cap-add",
        "NET_ADMIN",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--volume",
        "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/run/lock",
        "--tmpfs",
        "/tmp",
    ];
    for label in &labels {
        args.push("--label");
        args.push(label);
    }
    let publish = format!(
        "{}:{}:{}",
        host.ssh_address, host.connect_port, host.ssh_port
    );
    if host.ssh_address != host.address {
        args.extend(["--publish", publish.as_str()]);
    }
    args.extend([image.as_str(), "/sbin/init"]);
    docker::docker(&args).await?;
    Ok(HostOutcome::Created)
}

/// Whether a container (`docker inspect`'s JSON of it) is what `host` needs on `network`: at
/// its configured address there (a stopped container has no live one), of its release's image,
/// and with its SSH port published on its `ssh_address` when that is not its address (nothing
/// published otherwise).
fn fits(container: &serde_json::Value, host: &LabHost, network: &str) -> bool {
    let address = &container["NetworkSettings"]["Networks"][network]["IPAMConfig"]["IPv4Address"];
    let bindings = container["HostConfig"]["PortBindings"]
        .as_object()
        .filter(|b| !b.is_empty());
    let published = match bindings {
        None => host.ssh_address == host.address,
        Some(_) if host.ssh_address == host.address => false,
        Some(bindings) => {
            let (address, port) = (host.ssh_address.to_string(), host.connect_port.to_string());
            bindings
                .get(&format!("{}/tcp", host.ssh_port))
                .and_then(serde_json::Value::as_array)
                .is_some_and(|list| {
                    list.iter().any(|b| {
                        b["HostIp"].as_str() == Some(address.as_str())
                            && b["HostPort"].as_str() == Some(port.as_str())
                    })
                })
        }
    };
    address.as_str() == Some(host.address.to_string().as_str())
        && container["Config"]["Image"].as_str() == Some(image::image(host.release).as_str())
        && published
}

/// Installs the lab key for the login user (creating a sudo user if it is not root) and
/// moves sshd to the topology's port.
async fn prepare_host(host: &LabHost, public_key: &str) -> Result<(), LabError> {
    let container = host.container.as_str();
    let home = if host.user == "root" {
        "/root".to_owned()
    } else {
        let present = process::run(
            "docker",
            ["exec", container, "id", "-u", &host.user],
            None,
            Duration::from_secs(30),
        )
        .await?;
        if !present.success {
            docker::docker(&[
                "exec",
                container,
                "useradd",
                "--create-home",
                "--shell",
                "/bin/bash",
                &host.user,
            ])
            .await?;
        }
        let rule = format!("{} ALL=(ALL) NOPASSWD:ALL\n", host.user);
        docker::docker_with_input(
            &["exec", "-i", container, "tee", "/etc/sudoers.d/infra-lab"],
            rule.as_bytes(),
        )
        .await?;
        format!("/home/{}", host.user)
    };
    let ssh_dir = format!("{home}/.ssh");
    let keys = format!("{ssh_dir}/authorized_keys");
    let owner = format!("{0}:{0}", host.user);
    docker::docker(&[
        "exec", container, "install", "-d", "-m", "700", "-o", &host.user, "-g", &host.user,
        &ssh_dir,
    ])
    .await?;
    docker::docker_with_input(
        &["exec", "-i", container, "tee", &keys],
        public_key.as_bytes(),
    )
    .await?;
    docker::docker(&["exec", container, "chown", &owner, &keys]).await?;
    docker::docker(&["exec", container, "chmod", "600", &keys]).await?;
    if host.ssh_port != 22 {
        let setting = format!("Port {}\n", host.ssh_port);
        docker::docker_with_input(
            &[
                "exec",
                "-i",
                container,
                "tee",
                "/etc/ssh/sshd_config.d/infra-lab.conf",
            ],
            setting.as_bytes(),
        )
        .await?;
        docker::docker(&["exec", container, "systemctl", "restart", "ssh.service"]).await?;
    }
    Ok(())
}

/// The host's public host keys, read through Docker (a trusted channel), once it has made them.
async fn host_keys(host: &LabHost, timeout: Duration) -> Result<Vec<String>, LabError> {
    let deadline = Instant::now() + timeout;
    loop {
        let output = process::run(
            "docker",
            [
                "exec",
                host.container.as_str(),
                "sh",
                "-c",
                "cat /etc/ssh/ssh_host_*_key.pub",
            ],
            None,
            Duration::from_secs(30),
        )
        .await?;
        let keys: Vec<String> = output
            .stdout
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                Some(format!("{} {}", parts.next()?, parts.next()?))
            })
            .collect();
        if output.success && keys.iter().any(|k| k.starts_with("ssh-ed25519 ")) {
            return Ok(keys);
        }
        if Instant::now() > deadline {
            return Err(LabError::SshTimeout {
                host: host.name.clone(),
                address: host.address,
                seconds: timeout.as_secs(),
                last_error: "no SSH host keys were generated".to_owned(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn known_hosts_name(host: &LabHost) -> String {
    if host.connect_port == 22 {
        host.ssh_address.to_string()
    } else {
        format!("[{}]:{}", host.ssh_address, host.connect_port)
    }
}

/// One `ssh ... true` with the lab's config: key, known_hosts, strict checking.
async fn ssh_answers(host: &LabHost, config: &std::path::Path) -> Result<(), String> {
    let config = config.display().to_string();
    // By the container's name: its own block of the config (hosts may share an ssh_address).
    let address = host.container.clone();
    let output = process::run(
        "ssh",
        [
            "-F",
            config.as_str(),
            "-o",
            "ConnectTimeout=3",
            address.as_str(),
            "true",
        ],
        None,
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| e.to_string())?;
    if output.success {
        Ok(())
    } else {
        Err(process::tail(&output.stderr, 1))
    }
}

/// Polls `ssh true` until it succeeds or `timeout` passes.
async fn wait_for_ssh(
    host: &LabHost,
    config: &std::path::Path,
    timeout: Duration,
) -> Result<(), LabError> {
    let deadline = Instant::now() + timeout;
    loop {
        match ssh_answers(host, config).await {
            Ok(()) => return Ok(()),
            Err(last_error) if Instant::now() > deadline => {
                return Err(LabError::SshTimeout {
                    host: host.name.clone(),
                    address: host.ssh_address,
                    seconds: timeout.as_secs(),
                    last_error,
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// The lab's key and known_hosts, if the lab that wrote them is the one running here: this
/// topology's lab containers exist on this machine, each labelled with a host of the topology
/// and at its address. Files found in a checkout without such a lab (a pull request that added
/// them, a copy of another machine's) are never used.
pub async fn access(topology: &Topology) -> Option<crate::ssh::LabAccess> {
    let files = LabFiles::new(&topology.base_dir, topology.name.as_str());
    if !files.key().is_file() || !files.known_hosts().is_file() {
        return None;
    }
    let containers = docker::containers_labelled(LABEL_TOPOLOGY, topology.name.as_str())
        .await
        .ok()?;
    let ids: Vec<&str> = containers.iter().map(|c| c.id.as_str()).collect();
    if ids.is_empty() {
        return None;
    }
    let mut args = vec![
        "inspect",
        "--format",
        "{{index .Config.Labels \"infra.host\"}} {{range .NetworkSettings.Networks}}{{if .IPAMConfig}}{{.IPAMConfig.IPv4Address}}{{end}} {{end}}",
    ];
    args.extend(ids);
    let listed = docker::docker(&args).await.ok()?;
    let addresses: Vec<(String, Vec<String>)> = listed
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let host = words.next()?.to_owned();
            Some((host, words.map(str::to_owned).collect()))
        })
        .collect();
    // Every container of this topology's lab is the topology's host of its name, at that
    // host's address. (A host the lab does not have, such as one just added, is simply not
    // reachable with the lab's key.)
    let lab_matches = !addresses.is_empty()
        && addresses.iter().all(|(name, ips)| {
            topology.hosts.iter().any(|host| {
                host.name.as_str() == name && ips.iter().any(|ip| *ip == host.address.to_string())
            })
        });
    lab_matches.then(|| crate::ssh::LabAccess {
        key: files.key(),
        known_hosts: files.known_hosts(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{LabHost, fits};
    use infra_topology::Release;

    fn host(ssh_address: &str, connect_port: u16) -> LabHost {
        LabHost {
            name: "gamma".to_owned(),
            address: "10.0.0.13".parse().expect("address"),
            ssh_address: ssh_address.parse().expect("address"),
            ssh_port: 22,
            connect_port,
            container: "infra-t-gamma".to_owned(),
            user: "root".to_owned(),
            release: Release::Trixie,
        }
    }

    fn container(address: &str, image: &str, bindings: serde_json::Value) -> serde_json::Value {
        json!({
            "NetworkSettings": { "Networks": { "infra-t": { "IPAMConfig": { "IPv4Address": address } } } },
            "Config": { "Image": image },
            "HostConfig": { "PortBindings": bindings },
        })
    }

    #[test]
    fn a_container_is_kept_only_at_its_address_release_and_published_port() {
        let plain = host("10.0.0.13", 22);
        let image = "infra-lab:trixie-2";
        assert!(fits(
            &container("10.0.0.13", image, json!(null)),
            &plain,
            "infra-t"
        ));
        assert!(fits(
            &container("10.0.0.13", image, json!({})),
            &plain,
            "infra-t"
        ));
        assert!(!fits(
            &container("10.0.0.14", image, json!({})),
            &plain,
            "infra-t"
        ));
        assert!(!fits(
            &container("10.0.0.13", "infra-lab:bookworm-2", json!({})),
            &plain,
            "infra-t"
        ));
        assert!(!fits(
            &container("10.0.0.13", image, json!({})),
            &plain,
            "other"
        ));

        let forwarded = host("127.0.0.1", 2213);
        let published = json!({ "22/tcp": [{ "HostIp": "127.0.0.1", "HostPort": "2213" }] });
        assert!(fits(
            &container("10.0.0.13", image, published.clone()),
            &forwarded,
            "infra-t"
        ));
        assert!(!fits(
            &container("10.0.0.13", image, json!({})),
            &forwarded,
            "infra-t"
        ));
        assert!(!fits(
            &container("10.0.0.13", image, published),
            &plain,
            "infra-t"
        ));
        let elsewhere = json!({ "22/tcp": [{ "HostIp": "127.0.0.1", "HostPort": "2222" }] });
        assert!(!fits(
            &container("10.0.0.13", image, elsewhere),
            &forwarded,
            "infra-t"
        ));
    }
}
