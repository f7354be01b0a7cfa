//! A lab of 50 hosts on one machine: `examples/fleet-50` (made by `cargo xtask fleet`) comes
//! up with `infra lab up`, which raises the kernel's inotify limit where it must, and one
//! `infra plan` reads all 50 fresh hosts in one SSH round trip each. How fast is the
//! benchmark's business (`cargo xtask bench`, docs/performance.md); this proves it works on a
//! clean machine. Needs a running Docker engine and root, like the other lab tests.

mod common;

use common::text;

use std::collections::BTreeSet;
use std::path::Path;

/// Takes the lab down when the test ends, passed or not.
struct Lab<'a> {
    dir: &'a Path,
}

impl Drop for Lab<'_> {
    fn drop(&mut self) {
        let _ = common::infra()
            .current_dir(self.dir)
            .args(["lab", "down"])
            .output();
    }
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    common::infra()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run infra")
}

#[test]
fn fifty_hosts_come_up_and_plan_in_one_round_trip_each() {
    let copy = common::copy_of_example("fleet-50");
    let dir = copy.path();
    let lab = Lab { dir };
    let up = run(dir, &["lab", "up"]);
    assert!(
        up.status.success(),
        "lab up: {}\n{}",
        text(&up.stdout),
        text(&up.stderr)
    );
    let limit: u64 = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .expect("the inotify limit")
        .trim()
        .parse()
        .expect("a number");
    assert!(
        limit >= infra_exec::lab::limits::needed(50),
        "50 systemd hosts need the limit raised, and it is {limit}"
    );

    let plan = run(dir, &["plan", "--json"]);
    let stderr = text(&plan.stderr);
    assert!(plan.status.success(), "plan: {stderr}");
    assert!(
        stderr.contains("gathered facts from 50 of 50 hosts")
            && stderr.contains("(50 SSH round trips)"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");
    assert_eq!(json["errored"], false);
    let hosts: BTreeSet<&str> = json["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|change| change["host"].as_str())
        .collect();
    assert_eq!(hosts.len(), 50, "every host has something to install");
    assert!(hosts.contains("db8") && hosts.contains("web20") && hosts.contains("lb2"));

    drop(lab);
    let left = std::process::Command::new("docker")
        .args([
            "ps",
            "--all",
            "--quiet",
            "--filter",
            "label=infra.topology=fleet-50",
        ])
        .output()
        .expect("docker ps");
    assert!(
        text(&left.stdout).trim().is_empty(),
        "lab down removed every host"
    );
}
