//! The monitoring tier on real hosts: Prometheus on `mon1` scrapes every exporter, the shipped
//! alerts fire and clear on real failures, the firewall admits the exporters to the monitoring
//! hosts only and Prometheus to the admin sources only, and removing the tier (then destroy)
//! leaves nothing of it, its database account included. Every host runs Debian 13 (trixie):
//! its newer Prometheus, exporters and MariaDB 11.8 (the other lab tests run Debian 12 or a mix).
//!
//! Needs a running Docker engine and root (the README's test command sets both up).

mod common;

use common::{show, text};

use std::process::Command;
use std::time::{Duration, Instant};

use common::LabExample;
use serde_json::Value;

/// The lab's subnet is 10.231.12.0/24; the machine reaches it from the bridge's gateway.
const OCTET: u8 = 12;
const GATEWAY: &str = "10.231.12.1";
/// How long an alert's condition must hold here (`monitoring.alerts.for_seconds`).
const FOR_SECONDS: u64 = 10;

/// Polls `ready` every 500 ms until it gives a value, failing after `seconds`.
fn wait_for<T>(what: &str, seconds: u64, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Prometheus's API on `mon1`, asked from this machine (an admin source).
fn prometheus(example: &LabExample, path: &str) -> Option<Value> {
    let output = Command::new("curl")
        .args(["-s", "--max-time", "5", "-f"])
        .arg(format!("http://{}:9090{path}", example.address("mon1")))
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

/// The alerts that fire now, as `(name, labels)`.
fn firing(example: &LabExample) -> Option<Vec<(String, Value)>> {
    let answer = prometheus(example, "/api/v1/alerts")?;
    Some(
        answer["data"]["alerts"]
            .as_array()?
            .iter()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                (
                    a["labels"]["alertname"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    a["labels"].clone(),
                )
            })
            .collect(),
    )
}

fn fires(example: &LabExample, alert: &str, host: &str) -> bool {
    firing(example).is_some_and(|alerts| {
        alerts.iter().any(|(name, labels)| {
            name == alert && (labels["host"] == host || labels["server"] == host)
        })
    })
}

/// Whether a TCP connection from `from` to `address:port` is accepted within 3 s.
fn connects(example: &LabExample, from: &str, address: &str, port: u16) -> bool {
    example
        .ssh(
            from,
            &format!("timeout 3 bash -c '</dev/tcp/{address}/{port}'"),
        )
        .status
        .success()
}

#[test]
fn prometheus_scrapes_every_tier_and_its_alerts_fire_and_clear_on_real_hosts() {
    let example = LabExample::new("monitor-test", OCTET, |text| {
        text.replace("scrape_interval_seconds: 15", "scrape_interval_seconds: 2")
            .replace("for_seconds: 60", &format!("for_seconds: {FOR_SECONDS}"))
            .replace(
                "  admin_sources: [10.231.12.0/24]\n",
                &format!("  admin_sources: [{GATEWAY}/32]\n"),
            )
            .replace("\nlab:\n", "\nlab:\n  release: trixie\n")
    });
    let up = example.run(&["lab", "up"]);
    assert!(up.status.success(), "lab up: {}", show(&up));
    for host in ["lb1", "db1", "db2", "mon1"] {
        let release = example.ssh_ok(host, ". /etc/os-release && echo $VERSION_ID");
        assert_eq!(release.trim(), "13", "{host} runs Debian 13");
    }
    let fresh_mon1 = example.snapshot("mon1");
    let fresh_web1 = example.snapshot("web1");

    let apply = example.run(&["apply", "--auto-approve", "--no-color"]);
    assert!(apply.status.success(), "apply: {}", show(&apply));
    let plan = example.run(&["plan", "--detailed-exitcode", "--no-color"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "a second plan: {}",
        show(&plan)
    );
    // A Debian 13 primary offers TLS, and its replica keeps MariaDB 11.8's default of using it.
    let replica = example.ssh_ok("db2", "mariadb -e 'SHOW REPLICA STATUS\\G'");
    assert!(
        replica.contains("Master_SSL_Allowed: Yes") && replica.contains("Slave_IO_Running: Yes"),
        "{replica}"
    );

    // Every target up, as Prometheus's own API says it.
    let targets = wait_for("every target up in Prometheus", 120, || {
        let answer = prometheus(&example, "/api/v1/targets")?;
        let targets = answer["data"]["activeTargets"].as_array()?.clone();
        (targets.len() == 20 && targets.iter().all(|t| t["health"] == "up")).then_some(targets)
    });
    let mut jobs: Vec<String> = targets
        .iter()
        .map(|t| {
            format!(
                "{} {}",
                t["labels"]["job"].as_str().unwrap_or_default(),
                t["labels"]["host"].as_str().unwrap_or_default()
            )
        })
        .collect();
    jobs.sort();
    assert_eq!(
        jobs,
        [
            "app_health app1",
            "app_health app2",
            "blackbox mon1",
            "haproxy lb1",
            "haproxy lb2",
            "mysqld db1",
            "mysqld db2",
            "nginx web1",
            "nginx web2",
            "node app1",
            "node app2",
            "node db1",
            "node db2",
            "node lb1",
            "node lb2",
            "node mon1",
            "node web1",
            "node web2",
            "prometheus mon1",
            "vip vip",
        ]
    );
    // The exporters read real values: MariaDB through its least-privilege account (whose
    // password holds every character its formats allow), the replica's threads, the VIP's ping.
    for (query, wanted) in [
        ("mysql_up", 2),
        ("mysql_slave_status_slave_sql_running == 1", 1),
        ("nginx_up == 1", 2),
        ("probe_success{job=\"vip\"} == 1", 1),
        ("haproxy_server_status{state=\"UP\"} == 1", 4),
    ] {
        wait_for(&format!("`{query}` to give {wanted} series"), 60, || {
            let answer = prometheus(
                &example,
                &format!("/api/v1/query?query={}", urlencode(query)),
            )?;
            (answer["data"]["result"].as_array()?.len() == wanted).then_some(())
        });
    }
    let grants = example.ssh_ok(
        "db1",
        "mariadb -N -e \"SHOW GRANTS FOR 'exporter'@'127.0.0.1'\"",
    );
    assert!(
        grants.starts_with("GRANT PROCESS, SLAVE MONITOR ON *.* TO `exporter`@`127.0.0.1`"),
        "the exporter's account can do nothing else: {grants}"
    );

    // `infra status` reads the same signals.
    let status = example.run(&["status", "--json", "--no-edge-check"]);
    let document: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let summary = &document["monitoring"][0];
    assert_eq!(summary["host"], "mon1", "{document}");
    assert_eq!(summary["answered"], true, "{document}");
    assert_eq!(summary["targets"], 20, "{document}");
    assert_eq!(summary["targets_up"], 20, "{document}");

    // The firewall: exporters answer the monitoring host only, Prometheus the admin sources
    // only, HAProxy's metrics need no password from the monitoring host only.
    let web1 = example.address("web1");
    let mon1 = example.address("mon1");
    assert!(connects(&example, "mon1", &web1, 9100));
    assert!(
        !connects(&example, "lb1", &web1, 9100),
        "node exporter open to lb1"
    );
    assert!(
        !connects(&example, "lb1", &web1, 9113),
        "Nginx exporter open to lb1"
    );
    assert!(
        !connects(&example, "app1", &example.address("db1"), 9104),
        "MariaDB exporter open to app1"
    );
    assert!(
        !connects(&example, "lb1", &mon1, 9090),
        "Prometheus open to lb1"
    );
    let metrics = example.ssh_ok(
        "mon1",
        &format!(
            "timeout 5 bash -c 'exec 3<>/dev/tcp/{}/8404; printf \"GET /metrics HTTP/1.0\\r\\n\\r\\n\" >&3; head -n1 <&3'",
            example.address("lb1")
        ),
    );
    assert!(
        metrics.contains(" 200 "),
        "mon1 reads HAProxy's metrics: {metrics}"
    );
    let refused = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://{}:8404/metrics", example.address("lb1")))
        .output()
        .expect("curl");
    assert_eq!(
        text(&refused.stdout),
        "401",
        "an admin source still needs the password"
    );

    // Nginx stops on web2: HAProxy marks it down, and after `for:` the alert fires; it clears
    // once Nginx is back.
    let stopped = Instant::now();
    example.ssh_ok("web2", "systemctl stop nginx");
    wait_for("BackendServerDown for web2", 180, || {
        fires(&example, "BackendServerDown", "web2").then_some(())
    });
    let fired_after = stopped.elapsed();
    assert!(
        fired_after >= Duration::from_secs(FOR_SECONDS),
        "an alert fires only after its condition held for `for:` ({fired_after:?})"
    );
    let status = example.run(&["status", "--json", "--no-edge-check"]);
    assert_eq!(status.status.code(), Some(1), "{}", show(&status));
    let document: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert!(
        document["monitoring"][0]["firing"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f["alert"] == "BackendServerDown")),
        "status lists the firing alert: {document}"
    );
    example.ssh_ok("web2", "systemctl start nginx");
    let started = Instant::now();
    wait_for("BackendServerDown to clear", 180, || {
        firing(&example)
            .filter(|alerts| !alerts.iter().any(|(name, _)| name == "BackendServerDown"))
            .map(|_| ())
    });
    eprintln!(
        "BackendServerDown fired {:.1} s after nginx stopped on web2 and cleared {:.1} s after it started",
        fired_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // The replica's SQL thread stops: the replication alert fires, and clears once it runs.
    let stopped = Instant::now();
    example.ssh_ok("db2", "mariadb -e 'STOP SLAVE SQL_THREAD'");
    wait_for("ReplicaNotRunning on db2", 180, || {
        fires(&example, "ReplicaNotRunning", "db2").then_some(())
    });
    let fired_after = stopped.elapsed();
    example.ssh_ok("db2", "mariadb -e 'START SLAVE SQL_THREAD'");
    let started = Instant::now();
    wait_for("ReplicaNotRunning to clear", 180, || {
        firing(&example)
            .filter(|alerts| !alerts.iter().any(|(name, _)| name == "ReplicaNotRunning"))
            .map(|_| ())
    });
    eprintln!(
        "ReplicaNotRunning fired {:.1} s after the SQL thread stopped on db2 and cleared {:.1} s after it started",
        fired_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // The tier leaves the topology: apply removes its packages, files, firewall openings and
    // the exporter's account everywhere, and what stays still works.
    let full = std::fs::read_to_string(example.file()).expect("topology");
    std::fs::write(example.file(), without_monitoring(&full)).expect("write topology");
    let apply = example.run(&["apply", "--auto-approve", "--no-color"]);
    assert!(
        apply.status.success(),
        "apply without monitoring: {}",
        show(&apply)
    );
    for host in ["web1", "db1", "lb1", "app1", "mon1"] {
        let left = example.ssh_ok(
            host,
            "dpkg-query -W -f='${Package} ${Status}\\n' 'prometheus*' 2>/dev/null | grep ' installed' || true",
        );
        assert_eq!(left, "", "{host} keeps no Prometheus package");
    }
    let nft = example.ssh_ok("web1", "nft list table inet infra");
    assert!(!nft.contains("9100") && !nft.contains("9113"), "{nft}");
    for host in ["db1", "db2"] {
        let accounts = example.ssh_ok(
            host,
            "mariadb -N -e \"SELECT COUNT(*) FROM mysql.user WHERE User = 'exporter'\"",
        );
        assert_eq!(
            accounts.trim(),
            "0",
            "the exporter's account is gone from {host}"
        );
    }
    let plan = example.run(&["plan", "--detailed-exitcode", "--no-color"]);
    assert_eq!(plan.status.code(), Some(0), "{}", show(&plan));

    // Back in, then destroy: the exporter's account goes even though destroy keeps the data,
    // and the hosts are as they were.
    std::fs::write(example.file(), &full).expect("write topology");
    let apply = example.run(&["apply", "--auto-approve", "--no-color"]);
    assert!(
        apply.status.success(),
        "apply with monitoring again: {}",
        show(&apply)
    );
    let accounts = example.ssh_ok(
        "db2",
        "mariadb -N -e \"SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User = 'exporter'\"",
    );
    assert_eq!(
        accounts.trim(),
        "exporter@127.0.0.1",
        "back, and replicated"
    );
    let plan = example.run(&["plan", "--destroy", "--json"]);
    let document: Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");
    let dropped: Vec<&Value> = document["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["kind"] == "database_user" && c["actions"][0] == "delete")
        .collect();
    let mut dropped: Vec<String> = dropped
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["host"].as_str().unwrap_or_default(),
                c["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    dropped.sort();
    assert_eq!(
        dropped,
        ["db1 exporter@127.0.0.1", "db2 exporter@127.0.0.1"],
        "destroy drops the exporter's account, on the replica too, and no other (the app's stay with the data)"
    );
    let destroy = example.run(&["destroy", "--auto-approve", "--no-color"]);
    assert!(destroy.status.success(), "destroy: {}", show(&destroy));
    assert_eq!(
        example.snapshot("web1"),
        fresh_web1,
        "destroy leaves web1 as it was"
    );
    assert_eq!(
        example.snapshot("mon1"),
        fresh_mon1,
        "destroy leaves mon1 as it was"
    );
    let down = example.run(&["lab", "down"]);
    assert!(down.status.success(), "lab down: {}", show(&down));
}

/// The topology with the `monitoring:` section taken out (`mon1` stays declared, in no tier).
fn without_monitoring(text: &str) -> String {
    let start = text.find("\nmonitoring:\n").expect("a monitoring section");
    let end = text[start + 1..]
        .find("\n\n")
        .map_or(text.len(), |i| start + 1 + i);
    format!("{}{}", &text[..start], &text[end..])
}

fn urlencode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
