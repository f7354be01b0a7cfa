//! `infra lab` on real Docker containers: Debian 12 with systemd as PID 1 and sshd.
//!
//! One test walks the whole life of a lab so the (slow) hosts are shared: up, SSH with the
//! lab's key and strict host-key checking, a second `up` that keeps the hosts, `--recreate`
//! that replaces them, a colliding subnet refused, `down` twice, nothing labelled left.
//! Needs a running Docker engine and root (the README's test command sets both up).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::docker;

const TOPOLOGY: &str = "lab-three";
const ADDRESSES: [&str; 3] = ["10.231.9.11", "10.231.9.12", "10.231.9.13"];

/// Container IDs of the lab, by host label.
fn container_ids() -> Vec<String> {
    let filter = format!("label=infra.topology={TOPOLOGY}");
    let mut ids: Vec<String> =
        docker(&["ps", "--all", "--quiet", "--no-trunc", "--filter", &filter])
            .lines()
            .map(str::to_owned)
            .collect();
    ids.sort();
    ids
}

fn lab(dir: &Path, args: &[&str]) -> std::process::Output {
    common::infra()
        .current_dir(dir)
        .arg("lab")
        .args(args)
        .output()
        .expect("run infra lab")
}

fn assert_success(what: &str, output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `command` on `address` with system OpenSSH, the lab's key and known_hosts, and strict
/// host-key checking (the lab's ssh_config sets all three; `-o` repeats the strictness so the
/// test does not depend on that file alone).
fn ssh(dir: &Path, address: &str, command: &str) -> String {
    let lab = dir.join(".infra/lab").join(TOPOLOGY);
    let output = Command::new("ssh")
        .arg("-F")
        .arg(lab.join("ssh_config"))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            lab.join("known_hosts").display()
        ))
        .arg("-i")
        .arg(lab.join("id_ed25519"))
        .arg(format!("root@{address}"))
        .arg(command)
        .output()
        .expect("ssh runs");
    assert!(
        output.status.success(),
        "ssh {address} {command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn host_keys(dir: &Path) -> BTreeSet<String> {
    let known = std::fs::read_to_string(dir.join(".infra/lab").join(TOPOLOGY).join("known_hosts"))
        .expect("known_hosts");
    known
        .lines()
        .filter(|l| l.contains("ssh-ed25519"))
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect()
}

#[test]
fn a_lab_comes_up_answers_over_ssh_is_kept_recreated_and_goes_away() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::copy(
        common::root().join("tests/lab-topologies/three-hosts/infra.yaml"),
        dir.path().join("infra.yaml"),
    )
    .expect("copy");
    // A lab left over by an interrupted earlier run must not change the outcome.
    let _ = lab(dir.path(), &["down"]);

    let up = lab(dir.path(), &["up"]);
    assert_success("lab up", &up);
    let first_ids = container_ids();
    assert_eq!(first_ids.len(), 3, "three containers");

    // Each host: its own name, systemd fully up, reached with strict host-key checking.
    for (address, name) in ADDRESSES.iter().zip(["alpha", "beta", "gamma"]) {
        assert_eq!(ssh(dir.path(), address, "hostname"), name);
        assert_eq!(
            ssh(dir.path(), address, "systemctl is-system-running --wait"),
            "running"
        );
    }
    let keys = host_keys(dir.path());
    assert_eq!(keys.len(), 3, "every host has its own ed25519 host key");
    let key = dir
        .path()
        .join(".infra/lab")
        .join(TOPOLOGY)
        .join("id_ed25519");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600
    );

    // A key the lab did not record is refused: strict checking really is on.
    let stranger = tempfile::NamedTempFile::new().expect("empty known_hosts");
    let refused = Command::new("ssh")
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", stranger.path().display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .arg("-i")
        .arg(&key)
        .arg(format!("root@{}", ADDRESSES[0]))
        .arg("true")
        .output()
        .expect("ssh runs");
    assert!(
        !refused.status.success(),
        "an unknown host key was accepted"
    );

    // The Debian package (scripts/package-deb) installs on a fresh Debian 12 host, works there
    // (version, validate, its manual page and completions in place), and removes cleanly.
    let packages = tempfile::tempdir().expect("package folder");
    let built = Command::new(common::root().join("scripts/package-deb"))
        .env("DEB_GZIP_LEVEL", "1")
        .arg(assert_cmd::cargo::cargo_bin!("infra"))
        .arg(packages.path())
        .output()
        .expect("package-deb runs");
    assert_success("scripts/package-deb", &built);
    let deb = String::from_utf8_lossy(&built.stdout).trim().to_owned();
    let container = format!("infra-{TOPOLOGY}-alpha");
    docker(&["cp", &deb, &format!("{container}:/root/infra.deb")]);
    docker(&[
        "cp",
        common::root()
            .join("tests/lab-topologies/three-hosts/infra.yaml")
            .to_str()
            .expect("utf-8"),
        &format!("{container}:/root/infra.yaml"),
    ]);
    let installed = docker(&[
        "exec",
        &container,
        "sh",
        "-c",
        "dpkg -i /root/infra.deb >/dev/null && infra --version \
         && infra validate -f /root/infra.yaml \
         && ls /usr/share/man/man1/infra.1.gz /usr/share/bash-completion/completions/infra \
         && dpkg -r infra >/dev/null && [ ! -e /usr/bin/infra ] && echo removed",
    ]);
    assert!(
        installed.contains(concat!("infra ", env!("CARGO_PKG_VERSION")))
            && installed.contains("is valid")
            && installed.contains("infra.1.gz")
            && installed.trim_end().ends_with("removed"),
        "{installed}"
    );

    let status = lab(dir.path(), &["status"]);
    assert_success("lab status", &status);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(text.matches("running    answers").count(), 3, "{text}");

    // Idempotent: a second up keeps the very same containers.
    let again = lab(dir.path(), &["up"]);
    assert_success("second lab up", &again);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .matches(" kept ")
            .count(),
        3
    );
    assert_eq!(container_ids(), first_ids);

    // A stopped host is started again, not replaced: same container, same disk and host key.
    docker(&["stop", "infra-lab-three-gamma"]);
    let restarted = lab(dir.path(), &["up"]);
    assert_success("lab up after a stop", &restarted);
    assert!(
        String::from_utf8_lossy(&restarted.stdout).contains(" started "),
        "{}",
        String::from_utf8_lossy(&restarted.stdout)
    );
    assert_eq!(container_ids(), first_ids);
    assert_eq!(host_keys(dir.path()), keys);
    assert_eq!(ssh(dir.path(), ADDRESSES[2], "hostname"), "gamma");

    // A second topology whose subnet overlaps this lab's is refused, naming the network.
    let other = tempfile::tempdir().expect("dir");
    std::fs::write(
        other.path().join("infra.yaml"),
        "name: lab-clash\nhosts:\n  one: { address: 10.231.9.200 }\nfirewall: { enabled: false }\nlab: { subnet: 10.231.9.128/25 }\n",
    )
    .expect("write");
    let clash = lab(other.path(), &["up"]);
    assert_eq!(clash.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&clash.stderr);
    assert!(
        stderr.contains("overlaps Docker network `infra-lab-three`"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");

    // --recreate gives fresh hosts: new containers, new host keys, still reachable.
    let recreated = lab(dir.path(), &["up", "--recreate"]);
    assert_success("lab up --recreate", &recreated);
    let new_ids = container_ids();
    assert_eq!(new_ids.len(), 3);
    assert!(
        new_ids.iter().all(|id| !first_ids.contains(id)),
        "containers were not replaced"
    );
    assert!(
        host_keys(dir.path()).is_disjoint(&keys),
        "fresh hosts must have fresh host keys"
    );
    assert_eq!(ssh(dir.path(), ADDRESSES[1], "hostname"), "beta");

    // Down removes exactly what up created; twice is fine.
    assert_success("lab down", &lab(dir.path(), &["down"]));
    assert!(container_ids().is_empty(), "containers remain");
    let networks = docker(&[
        "network",
        "ls",
        "--quiet",
        "--filter",
        &format!("label=infra.topology={TOPOLOGY}"),
    ]);
    assert!(networks.trim().is_empty(), "network remains: {networks}");
    assert!(
        !dir.path().join(".infra/lab").join(TOPOLOGY).exists(),
        "lab files remain"
    );
    assert_success("second lab down", &lab(dir.path(), &["down"]));
}
