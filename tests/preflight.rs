//! Preflight on real hosts: each unfit host is reported by `plan`, with its name and what is
//! wrong, before anything changes: an unsupported release, the VIP's interface missing (named
//! wrong in the topology, or renamed on the host) or not carrying the host's address, `sudo -n` refused to a non-root user; and apt's lock held by
//! another process is a warning that apply really waits out. Then a host given by DNS name and
//! reached over SSH at another address plans and applies.
//!
//! Needs a running Docker engine and root (the README's test command sets both up).

mod common;

use common::{show, text};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TOPOLOGY: &str = "\
name: preflight-test
hosts:
  alpha: { address: 10.231.13.11 }
  beta:  { address: 10.231.13.12 }
  gamma: { address: 10.231.13.13 }
load_balancer:
  hosts: [alpha, beta]
  vip: 10.231.13.10/24
  interface: eth0
web:
  hosts: [gamma]
firewall:
  enabled: true
  admin_sources: [10.231.13.0/24]
lab:
  subnet: 10.231.13.0/24
";

fn infra(dir: &Path, args: &[&str]) -> Output {
    common::infra()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run infra")
}

fn ssh(dir: &Path, address: &str, command: &str) -> String {
    let output = Command::new("ssh")
        .arg("-F")
        .arg(dir.join(".infra/lab/preflight-test/ssh_config"))
        .arg(address)
        .arg(command)
        .output()
        .expect("ssh runs");
    assert!(
        output.status.success(),
        "ssh {address} {command}: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Runs `command` in a lab container through Docker (for what would cut SSH off).
fn docker_exec(container: &str, command: &str) {
    common::docker(&["exec", container, "sh", "-c", command]);
}

/// `plan` with the topology `edit` makes, expecting it to stop with `errors`.
fn refused(dir: &Path, edit: impl FnOnce(&str) -> String, hosts: &[&str], errors: &[&str]) {
    std::fs::write(dir.join("infra.yaml"), edit(TOPOLOGY)).expect("write topology");
    let mut args = vec!["plan", "--no-color"];
    for host in hosts {
        args.extend(["--target", host]);
    }
    let plan = infra(dir, &args);
    assert_eq!(plan.status.code(), Some(1), "{}", show(&plan));
    let said = format!("{}{}", text(&plan.stdout), text(&plan.stderr));
    for error in errors {
        assert!(said.contains(error), "`{error}` not said:\n{said}");
    }
    std::fs::write(dir.join("infra.yaml"), TOPOLOGY).expect("restore topology");
}

#[test]
fn unfit_hosts_are_named_by_plan_before_anything_changes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path();
    std::fs::write(path.join("infra.yaml"), TOPOLOGY).expect("write topology");
    let _ = infra(path, &["lab", "down"]);
    let up = infra(path, &["lab", "up"]);
    assert!(up.status.success(), "lab up: {}", show(&up));
    let (beta, gamma) = ("10.231.13.12", "10.231.13.13");

    // Fit hosts: a plan with changes and no error.
    let plan = infra(path, &["plan", "--detailed-exitcode", "--no-color"]);
    assert_eq!(plan.status.code(), Some(2), "{}", show(&plan));

    // An unsupported release.
    ssh(
        path,
        beta,
        "cp --remove-destination /usr/lib/os-release /etc/os-release && sed -i 's/^VERSION_ID=.*/VERSION_ID=\"11\"/' /etc/os-release",
    );
    refused(
        path,
        str::to_owned,
        &[],
        &[
            "host `beta` could not be planned: `beta` runs debian 11; `infra` supports Debian 12 (bookworm) and Debian 13 (trixie)",
        ],
    );
    ssh(path, beta, "ln -sf ../usr/lib/os-release /etc/os-release");

    // The VIP's interface: missing, or not carrying the host's address.
    refused(
        path,
        |t| t.replace("interface: eth0", "interface: eth9"),
        &[],
        &[
            "`alpha` has no interface `eth9` for the VIP (it has `eth0`, `lo`)",
            "`beta` has no interface `eth9` for the VIP",
        ],
    );
    refused(
        path,
        |t| t.replace("interface: eth0", "interface: lo"),
        &["alpha"],
        &[
            "interface `lo` of `alpha` does not carry its address 10.231.13.11 (it has `127.0.0.1/8`)",
        ],
    );
    // The interface renamed on the host itself (its address goes with it).
    docker_exec(
        "infra-preflight-test-alpha",
        "ip link set eth0 down && ip link set eth0 name lan0 && ip link set lan0 up",
    );
    refused(
        path,
        str::to_owned,
        &["alpha"],
        &["`alpha` has no interface `eth0` for the VIP (it has `lan0`, `lo`)"],
    );
    docker_exec(
        "infra-preflight-test-alpha",
        // (the link going down took the default route with it)
        "ip link set lan0 down && ip link set lan0 name eth0 && ip link set eth0 up \
         && ip route replace default via 10.231.13.1",
    );
    let plan = infra(path, &["plan", "--no-color"]);
    assert!(plan.status.success(), "fit again: {}", show(&plan));

    // Another process holds apt's lock (a POSIX lock on dpkg's lock file, as apt takes it):
    // plan says so and goes on; apply waits until it is let go, then installs.
    ssh(
        path,
        gamma,
        "nohup perl -e 'use Fcntl; open(my $f, \">>\", \"/var/lib/dpkg/lock-frontend\") or die; \
         my $l = pack(\"s s x4 q q i x4\", F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLKW, $l) or die \"lock: $!\"; sleep 600' \
         >/dev/null 2>&1 & \
         for i in $(seq 50); do lslocks -rn -o TYPE,PATH | grep -q '^POSIX /var/lib/dpkg/lock-frontend$' && exit 0; sleep 0.1; done; exit 1",
    );
    let plan = infra(path, &["plan", "--no-color", "--target", "gamma"]);
    assert_eq!(plan.status.code(), Some(0), "{}", show(&plan));
    let said = text(&plan.stdout);
    assert!(
        said.contains("apt's lock on `gamma` is held by `perl` (pid ")
            && said.contains("apply waits up to 5 minutes for it"),
        "{said}"
    );
    let mut apply = common::infra_process()
        .current_dir(path)
        .args([
            "apply",
            "--auto-approve",
            "--no-color",
            "--no-edge-check",
            "--target",
            "gamma",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start apply");
    // apt-get install waits for the lock (it would fail at once without waiting): it is there,
    // and nginx is still not installed, for as long as the lock is held.
    let deadline = Instant::now() + Duration::from_secs(120);
    // (`[a]pt-get`: the pattern must not match the shell that runs this very line)
    let installing = "pgrep -f '[a]pt-get .*install' >/dev/null && echo waiting || true";
    while !ssh(path, gamma, installing).contains("waiting") {
        assert!(
            Instant::now() < deadline,
            "apt-get install never started on gamma"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let held = ssh(
        path,
        gamma,
        "sleep 5; pgrep -f '[a]pt-get .*install' >/dev/null && echo still; dpkg-query -W -f='${Status}' nginx 2>/dev/null || true",
    );
    assert!(
        held.starts_with("still") && !held.contains("install ok installed"),
        "apt-get did not wait for the lock: {held}"
    );
    ssh(path, gamma, "pkill -x perl");
    let stdout = apply.stdout.take().expect("stdout");
    let transcript: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .collect();
    let status = apply.wait().expect("apply ends");
    assert!(status.success(), "apply:\n{}", transcript.join("\n"));
    assert!(
        ssh(path, gamma, "dpkg-query -W -f='${Status}' nginx").contains("install ok installed"),
        "nginx installed once the lock was free"
    );

    // `sudo -n` refused to a non-root login.
    ssh(
        path,
        gamma,
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q sudo >/dev/null && useradd -m -s /bin/bash deploy \
         && mkdir -p /home/deploy/.ssh && cp /root/.ssh/authorized_keys /home/deploy/.ssh/ \
         && chown -R deploy: /home/deploy/.ssh",
    );
    refused(
        path,
        |t| {
            t.replace(
                "  gamma: { address: 10.231.13.13 }",
                "  gamma: { address: 10.231.13.13, ssh: { user: deploy }, become: sudo }",
            )
        },
        &["gamma"],
        &[
            "host `gamma` could not be planned: `sudo -n` does not give root on `gamma`: sudo: a password is required",
            "NOPASSWD",
        ],
    );

    a_host_given_by_name_plans_and_applies(path);

    let down = infra(path, &["lab", "down"]);
    assert!(down.status.success(), "lab down: {}", show(&down));
}

/// Names the topology gives hosts by, put in this machine's `/etc/hosts` (read by the system's
/// resolver as DNS would be) for as long as the value lives.
struct HostsEntry {
    line: String,
}

const HOSTS_FILE: &str = "/etc/hosts";

impl HostsEntry {
    fn add(line: &str) -> HostsEntry {
        let mut text = std::fs::read_to_string(HOSTS_FILE).expect("read /etc/hosts");
        if !text.ends_with('\n') && !text.is_empty() {
            text.push('\n');
        }
        text.push_str(line);
        text.push('\n');
        // In place: /etc/hosts may be a bind mount, which a rename would not replace.
        std::fs::write(HOSTS_FILE, text).expect("this test writes /etc/hosts: run it as root");
        HostsEntry {
            line: line.to_owned(),
        }
    }
}

impl Drop for HostsEntry {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(HOSTS_FILE) {
            let kept: String = text
                .lines()
                .filter(|l| *l != self.line)
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write(HOSTS_FILE, kept);
        }
    }
}

/// `gamma` given by its DNS name and reached over SSH at another address than the one the
/// tiers use (`localhost`, where the lab publishes its SSH port, as a public address would be):
/// plan shows what the names resolved to, apply converges, HAProxy and the firewall are
/// written with the address, and a second plan is clean.
fn a_host_given_by_name_plans_and_applies(path: &Path) {
    let _beta = HostsEntry::add("10.231.13.12 beta.preflight-test.infra.test");
    let _gamma = HostsEntry::add("10.231.13.13 gamma.preflight-test.infra.test");
    let named = TOPOLOGY
        .replace(
            "  beta:  { address: 10.231.13.12 }",
            "  beta:  { address: beta.preflight-test.infra.test }",
        )
        .replace(
            "  gamma: { address: 10.231.13.13 }",
            "  gamma: { address: gamma.preflight-test.infra.test, ssh_address: \"localhost:2213\" }",
        );
    std::fs::write(path.join("infra.yaml"), &named).expect("write topology");
    let up = infra(path, &["lab", "up"]);
    assert!(up.status.success(), "lab up: {}", show(&up));
    let known = std::fs::read_to_string(path.join(".infra/lab/preflight-test/known_hosts"))
        .expect("known_hosts");
    assert!(
        known.contains("[127.0.0.1]:2213 ") && !known.contains("10.231.13.13"),
        "gamma is known at its ssh_address only (so SSH anywhere else fails strict checking):\n{known}"
    );

    let plan = infra(path, &["plan", "--no-color"]);
    assert!(plan.status.success(), "plan: {}", show(&plan));
    let said = text(&plan.stdout);
    for line in [
        "beta: address beta.preflight-test.infra.test is 10.231.13.12",
        "gamma: address gamma.preflight-test.infra.test is 10.231.13.13",
        "gamma: ssh_address localhost is 127.0.0.1",
    ] {
        assert!(said.contains(line), "`{line}` not said:\n{said}");
    }
    let json = infra(path, &["plan", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON plan");
    assert_eq!(
        json["resolved"][1],
        serde_json::json!({
            "host": "gamma", "key": "address",
            "name": "gamma.preflight-test.infra.test", "address": "10.231.13.13"
        })
    );

    let apply = infra(
        path,
        &["apply", "--auto-approve", "--no-color", "--no-edge-check"],
    );
    assert!(apply.status.success(), "apply: {}", show(&apply));
    let haproxy = ssh(path, "10.231.13.11", "cat /etc/haproxy/haproxy.cfg");
    assert!(
        haproxy.contains("10.231.13.13:80") && !haproxy.contains("preflight-test.infra.test"),
        "HAProxy sends to gamma's address:\n{haproxy}"
    );
    let firewall = ssh(path, "10.231.13.11", "nft list table inet infra");
    assert!(
        firewall.contains("ip saddr 10.231.13.12 meta l4proto 112 accept")
            && !firewall.contains("infra.test"),
        "alpha's firewall admits VRRP from beta's address:\n{firewall}"
    );
    let again = infra(path, &["plan", "--detailed-exitcode", "--no-color"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "a second plan: {}",
        show(&again)
    );
    std::fs::write(path.join("infra.yaml"), TOPOLOGY).expect("restore topology");
}
