//! Preflight on real hosts: each unfit host is reported by `plan`, with its name and what is
//! wrong, before anything changes: an unsupported release, the VIP's interface missing (named
//! wrong in the topology, or renamed on the host) or not carrying the host's address, `sudo -n` refused to a non-root user; and apt's lock held by
//! another process is a warning that apply really waits out.
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
    let output = Command::new("docker")
        .args(["exec", container, "sh", "-c", command])
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker exec {container} {command}: {}",
        text(&output.stderr)
    );
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
            "host `beta` could not be planned: `beta` runs debian 11; `infra` supports Debian 12 (bookworm)",
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
        "ip link set lan0 down && ip link set lan0 name eth0 && ip link set eth0 up",
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

    let down = infra(path, &["lab", "down"]);
    assert!(down.status.success(), "lab down: {}", show(&down));
}
