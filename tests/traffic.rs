//! The example serves real traffic on lab hosts: the site and the app through the VIP with
//! TLS, requests spread over both web and both app hosts, a counter kept in MariaDB and
//! replicated to the read-only replica, firewalls that admit only what each tier needs,
//! the monitoring endpoints, and the VIP moving to lb2 when lb1 stops (and back).
//!
//! A copy of `examples/scale-up` renamed `scale-traffic` on 10.231.6.0/24, every host Debian 12.

mod common;

use common::text;

use common::LabExample;

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "10.231.6.10";

/// `infra` that must succeed, and the TCP probe, on the lab copy of the example.
trait Traffic {
    fn infra(&self, args: &[&str]) -> Output;
    fn reaches(&self, from: &str, to: &str, port: u16) -> bool;
}

impl Traffic for LabExample {
    fn infra(&self, args: &[&str]) -> Output {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "infra {args:?}: exit {:?}\n{}\n{}",
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr)
        );
        output
    }

    /// Whether `from` can open a TCP connection to `to:port` (3 s limit), from inside the host.
    fn reaches(&self, from: &str, to: &str, port: u16) -> bool {
        let probe = format!(
            "timeout 3 bash -c '</dev/tcp/{}/{port}' 2>/dev/null && echo open || echo closed",
            self.address(to)
        );
        let output = self.ssh(from, &probe);
        assert!(
            output.status.success(),
            "ssh {from}: {}",
            text(&output.stderr)
        );
        text(&output.stdout).trim() == "open"
    }
}

/// `curl` from this machine; returns the status code, headers and body.
fn curl(args: &[&str]) -> (u16, String, String) {
    let output = Command::new("curl")
        .args(["-sk", "--max-time", "5", "-D", "-", "-o", "/dev/stdout"])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("curl runs");
    let all = text(&output.stdout);
    let (headers, body) = all.split_once("\r\n\r\n").unwrap_or((&all, ""));
    let code = headers
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, headers.to_owned(), body.to_owned())
}

fn header(headers: &str, name: &str) -> Option<String> {
    headers.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

#[test]
fn the_example_serves_real_traffic_and_survives_losing_a_load_balancer() {
    let example = LabExample::new("scale-traffic", 6, |text| text);
    let _ = common::infra()
        .current_dir(example.path())
        .args(["lab", "down"])
        .output();
    example.infra(&["lab", "up", "--recreate"]);
    let mut before: Vec<(String, String)> = [
        "lb1", "lb2", "web1", "web2", "app1", "app2", "db1", "db2", "mon1",
    ]
    .iter()
    .map(|h| ((*h).to_owned(), example.snapshot(h)))
    .collect();
    example.infra(&["apply", "--auto-approve"]);
    // Converged on Debian 12: a second plan finds nothing to do (exit 2 would fail here).
    example.infra(&["plan", "--detailed-exitcode"]);

    // keepalived takes the VIP once its HAProxy check has passed a few times.
    wait_for("lb1 to take the VIP", 30, || holds_vip(&example, "lb1"));

    // `infra status`: every service active, every health check passing; a stopped service
    // is reported and fails the command.
    let status = example.infra(&["status"]);
    let out = text(&status.stdout);
    assert!(
        out.contains("check    vip") && out.contains("holds 10.231.6.10"),
        "{out}"
    );
    assert!(
        out.contains("check    replication") && !out.contains("FAIL"),
        "{out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("check    health"))
            .count(),
        4,
        "{out}"
    );
    assert!(example.ssh("web2", "systemctl stop nginx").status.success());
    let failing = common::infra()
        .current_dir(example.path())
        .arg("status")
        .output()
        .expect("run");
    assert_eq!(failing.status.code(), Some(1));
    let out = text(&failing.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("web2") && l.contains("nginx.service") && l.contains("FAIL")),
        "{out}"
    );
    assert!(
        example
            .ssh("web2", "systemctl start nginx")
            .status
            .success()
    );

    // The site through the VIP over HTTPS; HTTP redirects to HTTPS.
    let (code, _, body) = curl(&[&format!("https://{VIP}/")]);
    assert_eq!(code, 200);
    assert!(body.contains("<h1>scale-up</h1>"), "{body}");
    let (code, headers, _) = curl(&[&format!("http://{VIP}/")]);
    assert_eq!(code, 301);
    assert_eq!(
        header(&headers, "location").as_deref(),
        Some(format!("https://{VIP}/").as_str())
    );

    // The API: LB -> Nginx -> app -> MariaDB, spread over both web and both app hosts, with a
    // counter that only goes up.
    let mut web_hosts = BTreeSet::new();
    let mut app_hosts = BTreeSet::new();
    let mut last = 0;
    for _ in 0..12 {
        let (code, headers, body) = curl(&[&format!("https://{VIP}/api/count")]);
        assert_eq!(code, 200, "{headers}{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let counter = json["counter"].as_i64().expect("counter");
        assert!(counter > last, "the counter went from {last} to {counter}");
        last = counter;
        app_hosts.insert(json["host"].as_str().unwrap_or_default().to_owned());
        web_hosts.insert(header(&headers, "x-served-by").unwrap_or_default());
    }
    assert_eq!(
        app_hosts,
        BTreeSet::from(["app1".to_owned(), "app2".to_owned()])
    );
    assert_eq!(
        web_hosts,
        BTreeSet::from(["web1".to_owned(), "web2".to_owned()])
    );

    // The counter is replicated to db2, which is read-only.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let output = example.ssh(
            "db2",
            "mariadb -N -e 'SELECT total FROM scaleup.visits WHERE id = 1; SELECT @@read_only'",
        );
        let values: Vec<String> = text(&output.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if values.first().map(String::as_str) == Some(last.to_string().as_str()) {
            assert_eq!(
                values.get(1).map(String::as_str),
                Some("1"),
                "db2 is not read-only"
            );
            break;
        }
        assert!(Instant::now() < deadline, "db2 never caught up: {values:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Each firewall admits only what its tier needs (probed from inside the hosts).
    assert!(
        example.reaches("app1", "db1", 3306),
        "the app tier must reach MariaDB"
    );
    assert!(
        !example.reaches("web1", "db1", 3306),
        "a web host reached MariaDB"
    );
    assert!(
        !example.reaches("lb1", "app1", 8000),
        "a load balancer reached the app port"
    );
    assert!(
        example.reaches("web1", "app1", 8000),
        "the web tier must reach the app"
    );
    assert!(
        !example.reaches("app1", "web2", 80),
        "an app host reached a web server"
    );
    assert!(
        example.reaches("lb1", "web1", 80),
        "the load balancers must reach the web tier"
    );
    assert!(
        example.reaches("db2", "db1", 3306),
        "the replica must reach the primary"
    );

    // Monitoring: the stats page and Prometheus metrics want the password; stub_status answers
    // the load balancers only.
    let (code, _, _) = curl(&[&format!("http://{}:8404/stats", example.address("lb1"))]);
    assert_eq!(code, 401);
    let credentials = format!("admin:{}", common::secret("INFRA_STATS_PASSWORD"));
    let (code, _, body) = curl(&[
        "-u",
        &credentials,
        &format!("http://{}:8404/metrics", example.address("lb1")),
    ]);
    assert_eq!(code, 200);
    assert!(body.contains("haproxy_process_"), "no Prometheus metrics");
    let status = example.ssh("lb1", &format!("timeout 3 bash -c 'exec 3<>/dev/tcp/{}/8080; printf \"GET /nginx_status HTTP/1.0\\r\\n\\r\\n\" >&3; cat <&3'", example.address("web1")));
    assert!(
        text(&status.stdout).contains("Active connections"),
        "{}",
        text(&status.stdout)
    );
    assert!(
        !example.reaches("app1", "web1", 8080),
        "stub_status is open to the app tier"
    );

    // lb1 stops: the VIP moves to lb2 and the site keeps answering after the VRRP window.
    assert!(holds_vip(&example, "lb1"), "the VIP starts on lb1");
    // Requests go on while lb1 shuts down; failures may happen only within the VRRP window.
    let (failures, window) = failover(&["stop", "infra-scale-traffic-lb1"]);
    eprintln!("failover, lb1 stopped: {failures} failed requests, failure window {window:.1} s");
    assert!(window < 10.0, "failures lasted {window:.1} s");
    assert!(holds_vip(&example, "lb2"), "lb2 holds the VIP");

    // lb1 back: with preempt it takes the VIP again.
    example.infra(&["lab", "up"]);
    wait_for("lb1 to take the VIP back", 30, || {
        holds_vip(&example, "lb1")
    });
    assert_eq!(curl(&[&format!("https://{VIP}/healthz")]).0, 200);

    // (a) A change to the web tier's config while requests flow: Nginx reloads, nothing fails.
    let file = example.path().join("infra.yaml");
    common::edit(
        &file,
        "  app_path: /api/\n",
        "  app_path: /api/\n  status_port: 8081\n",
    );
    // Every request goes through the whole chain: HAProxy, Nginx, the app, MariaDB.
    let api = format!("https://{VIP}/api/count");
    no_request_lost("a web config change", &api, || {
        example.infra(&["apply", "--auto-approve"]);
    });

    // (b) A web host added while requests flow: it joins the HAProxy backend with a reload.
    common::edit(
        &file,
        "  web2: { address: 10.231.6.22 }\n",
        "  web2: { address: 10.231.6.22 }\n  web3: { address: 10.231.6.23 }\n",
    );
    common::edit(
        &file,
        "  hosts: [web1, web2]\n",
        "  hosts: [web1, web2, web3]\n",
    );
    example.infra(&["lab", "up"]);
    before.push(("web3".to_owned(), example.snapshot("web3")));
    no_request_lost("the addition of web3", &api, || {
        example.infra(&["apply", "--auto-approve"]);
    });
    wait_for("web3 to serve a request", 20, || {
        let (_, headers, _) = curl(&[&format!("https://{VIP}/")]);
        header(&headers, "x-served-by").as_deref() == Some("web3")
    });

    // (c) A load balancer config change: one at a time, HAProxy reloads.
    common::edit(
        &file,
        "  algorithm: roundrobin\n",
        "  algorithm: leastconn\n",
    );
    no_request_lost("a load balancer config change", &api, || {
        example.infra(&["apply", "--auto-approve"]);
    });

    // (d) The app's environment and (e) its source change: the app restarts one host at a
    // time, each healthy before the next; Nginx sends what finds a host restarting to another.
    common::edit(
        &file,
        "COUNTER_GREETING: hello from the scale-up example",
        "COUNTER_GREETING: hello again",
    );
    no_request_lost("an app environment change", &api, || {
        example.infra(&["apply", "--auto-approve"]);
    });
    std::fs::write(example.path().join("app/RELEASE"), "2\n").expect("release file");
    no_request_lost("an app source change", &api, || {
        example.infra(&["apply", "--auto-approve"]);
    });
    // (e2) A release whose code needs a new column: its migration adds it on app1 before any
    // app host restarts, while the old release keeps serving (it ignores the column).
    common::edit(
        &example.path().join("app/migrate.py"),
        "    \"ALTER TABLE visits ADD COLUMN IF NOT EXISTS last_host VARCHAR(64) NULL\",\n",
        "    \"ALTER TABLE visits ADD COLUMN IF NOT EXISTS last_host VARCHAR(64) NULL\",\n    \"ALTER TABLE visits ADD COLUMN IF NOT EXISTS updated_at DATETIME NULL\",\n",
    );
    common::edit(
        &example.path().join("app/app.py"),
        "last_host = VALUES(last_host)",
        "last_host = VALUES(last_host), updated_at = NOW()",
    );
    no_request_lost("a release with a migration", &api, || {
        example.infra(&["apply", "--auto-approve"]);
    });
    // The column is there, replicated, and the new release writes it.
    for db in ["db1", "db2"] {
        wait_for(&format!("{db} to hold the new column's value"), 20, || {
            text(
                &example
                    .ssh(
                        db,
                        "mariadb -N -e 'SELECT updated_at IS NOT NULL FROM scaleup.visits WHERE id = 1'",
                    )
                    .stdout,
            )
            .trim()
                == "1"
        });
    }

    // (e3) A release whose migration fails: apply stops with the migration's output, and no
    // app host switches to the release (app1 gets its previous files back).
    let migrate_py = example.path().join("app/migrate.py");
    let migration = std::fs::read_to_string(&migrate_py).expect("migrate.py");
    std::fs::write(
        &migrate_py,
        format!("{migration}\nraise SystemExit(\"migration refused: the column clashes\")\n"),
    )
    .expect("failing migrate.py");
    let releases =
        || ["app1", "app2"].map(|h| example.ssh_ok(h, "sha256sum /opt/counter/migrate.py"));
    let before_failed = releases();
    let mut failed = None;
    no_request_lost("a release whose migration fails", &api, || {
        failed = Some(example.run(&["apply", "--auto-approve"]));
    });
    let failed = failed.expect("apply ran");
    let said = text(&failed.stderr);
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}\n{said}",
        text(&failed.stdout)
    );
    assert!(
        said.contains("the migration failed")
            && said.contains("migration refused: the column clashes"),
        "{said}"
    );
    assert_eq!(
        releases(),
        before_failed,
        "every app host keeps the old release"
    );
    std::fs::write(&migrate_py, migration).expect("restore migrate.py");

    // (f) The app's database password rotated, and back: the new one works beside the old one
    // until every app host uses it.
    let rotated = "rotated-app-password-7";
    no_request_lost("the database app password rotation", &api, || {
        let output = common::infra()
            .current_dir(example.path())
            .env("INFRA_DB_APP_PASSWORD", rotated)
            .args(["apply", "--auto-approve"])
            .output()
            .expect("run");
        assert!(output.status.success(), "{}", text(&output.stderr));
    });
    let accounts = text(&example.ssh("db1", "mariadb -N -e \"SELECT JSON_LENGTH(Priv, '$.auth_or') FROM mysql.global_priv WHERE User = 'counter'\"").stdout);
    assert!(
        accounts.split_whitespace().all(|n| n == "1" || n == "NULL"),
        "the old password was retired: {accounts}"
    );
    no_request_lost("the database app password rotation back", &api, || {
        example.infra(&["apply", "--auto-approve"]);
    });

    // (g) An app host added, then one removed.
    common::edit(
        &file,
        "  app2: { address: 10.231.6.32 }\n",
        "  app2: { address: 10.231.6.32 }\n  app3: { address: 10.231.6.33 }\n",
    );
    common::edit(
        &file,
        "  hosts: [app1, app2]\n",
        "  hosts: [app1, app2, app3]\n",
    );
    example.infra(&["lab", "up"]);
    before.push(("app3".to_owned(), example.snapshot("app3")));
    no_request_lost("the addition of app3", &api, || {
        example.infra(&["apply", "--auto-approve"]);
    });
    wait_for("app3 to serve a request", 20, || {
        curl(&[&api]).2.contains("\"app3\"")
    });
    common::edit(
        &file,
        "  hosts: [app1, app2, app3]\n",
        "  hosts: [app1, app2]\n",
    );
    no_request_lost("the removal of app3", &api, || {
        example.infra(&["apply", "--auto-approve"]);
    });

    // (h) A broken release (it cannot start): the rollout stops at app1, which gets the
    // previous release back; app2 never sees it; apply fails and says why; nothing is lost.
    let app_py = example.path().join("app/app.py");
    let good = std::fs::read_to_string(&app_py).expect("app.py");
    std::fs::write(&app_py, format!("{good}\nthis release is broken (\n")).expect("broken app.py");
    common::edit(
        &file,
        "  health_path: /health\n",
        "  health_path: /health\n  rollout: { timeout_seconds: 10 }\n",
    );
    let release_before = [
        example.ssh_ok("app1", "sha256sum /opt/counter/app.py"),
        example.ssh_ok("app2", "sha256sum /opt/counter/app.py"),
    ];
    let mut broken = None;
    no_request_lost("a broken release", &api, || {
        broken = Some(example.run(&["apply", "--auto-approve"]));
    });
    let broken = broken.expect("apply ran");
    let err = text(&broken.stderr);
    assert_eq!(
        broken.status.code(),
        Some(1),
        "{}\n{err}",
        text(&broken.stdout)
    );
    assert!(
        err.contains("on `app1`")
            && err.contains("did not become healthy")
            && err.contains("SyntaxError"),
        "{err}"
    );
    assert_eq!(
        [
            example.ssh_ok("app1", "sha256sum /opt/counter/app.py"),
            example.ssh_ok("app2", "sha256sum /opt/counter/app.py"),
        ],
        release_before,
        "app1 is back on the previous release and app2 never left it"
    );
    assert_eq!(
        example
            .ssh_ok("app1", "systemctl is-active counter.service || true")
            .trim(),
        "active",
        "app1 runs the previous release again (even after systemd's start limit)"
    );
    std::fs::write(&app_py, good).expect("app.py back");

    // `infra status` says which load balancer holds the VIP and checks the edge, as JSON too.
    let status = example.infra(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(
        status["vip"]["holders"],
        serde_json::json!(["lb1"]),
        "{status}"
    );
    assert_eq!(status["edge"]["ok"], true, "{status}");

    // lb1 killed outright (no goodbye to lb2): lb2 takes over after missing its adverts.
    let (failures, window) = failover(&["kill", "infra-scale-traffic-lb1"]);
    eprintln!("failover, lb1 killed: {failures} failed requests, failure window {window:.1} s");
    assert!(window < 10.0, "failures lasted {window:.1} s");

    // TLS passthrough: HAProxy forwards TLS untouched and Nginx terminates it.
    example.infra(&["lab", "up"]);
    common::edit(&file, "    mode: terminate\n", "    mode: passthrough\n");
    example.infra(&["apply", "--auto-approve"]);
    let haproxy = text(
        &example
            .ssh("lb1", "grep -c 'mode tcp' /etc/haproxy/haproxy.cfg")
            .stdout,
    );
    assert!(
        haproxy.trim().parse::<u32>().unwrap_or(0) >= 2,
        "HAProxy does not pass TLS through"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, headers, body) = curl(&[&format!("https://{VIP}/api/count")]);
        if code == 200 && header(&headers, "x-served-by").is_some() && body.contains("counter") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no answer over end-to-end TLS: {code} {headers}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(curl(&[&format!("http://{VIP}/")]).0, 301);

    // The database accounts exist only for the hosts that need them.
    let accounts = text(&example.ssh("db1", "mariadb -N -e \"SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User IN ('counter', 'repl') ORDER BY 1\"").stdout);
    assert_eq!(
        accounts.split_whitespace().collect::<Vec<_>>(),
        [
            "counter@10.231.6.31",
            "counter@10.231.6.32",
            "repl@10.231.6.42"
        ]
    );

    // After all this, destroy leaves every host as it was before the first apply (the
    // database data is kept, as by default).
    example.infra(&["destroy", "--auto-approve"]);
    for (host, snapshot) in &before {
        assert!(
            &example.snapshot(host) == snapshot,
            "{host} differs after destroy"
        );
    }

    example.infra(&["lab", "down"]);
}

/// Polls `ready` every 200 ms until it holds, failing the test after `seconds`.
fn wait_for(what: &str, seconds: u64, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {seconds} s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether `host` holds the VIP on its interface now.
fn holds_vip(example: &LabExample, host: &str) -> bool {
    text(&example.ssh(host, "ip -4 addr show eth0").stdout).contains(VIP)
}

/// Runs `work` while requests go to `url` every 50 ms, and asserts that none failed; prints
/// the count (for the closing notes and docs/design.md).
fn no_request_lost(what: &str, url: &str, work: impl FnOnce()) {
    let (sent, failures) = under_load(url, work);
    let failed = failures.len();
    eprintln!("load during {what}: {failed} of {sent} requests failed");
    assert!(sent > 0, "no request was sent during {what}");
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during {what} (seconds from the start, status): {failures:?}"
    );
}

/// Runs `work` while another thread sends requests to `url` every 50 ms; returns how many
/// were sent and, for each that failed, when (seconds from the start) and its status.
fn under_load(url: &str, work: impl FnOnce()) -> (usize, Vec<(f64, u16)>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = Arc::new(AtomicBool::new(false));
    let load = {
        let done = Arc::clone(&done);
        let url = url.to_owned();
        std::thread::spawn(move || {
            let (mut sent, mut failed) = (0, Vec::new());
            let begin = Instant::now();
            while !done.load(Ordering::SeqCst) && begin.elapsed() < Duration::from_secs(300) {
                sent += 1;
                let code = curl(&["--max-time", "3", &url]).0;
                if code != 200 {
                    failed.push((begin.elapsed().as_secs_f64(), code));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (sent, failed)
        })
    };
    work();
    done.store(true, Ordering::SeqCst);
    load.join().expect("load thread")
}

/// Runs `docker ARGS` (stopping lb1) while requests go to the VIP every 100 ms, until the
/// site has answered 10 times after docker returned. Returns the failed requests and the time
/// from the first failure to the last (0 when none failed).
fn failover(docker: &[&str]) -> (usize, f64) {
    let mut stopping = Command::new("docker")
        .args(docker)
        .stdout(Stdio::null())
        .spawn()
        .expect("docker");
    let begin = Instant::now();
    let (mut failures, mut first_failure, mut last_failure) = (0, None, None);
    let mut answered_after_stop = 0;
    while begin.elapsed() < Duration::from_secs(30) && answered_after_stop < 10 {
        let code = curl(&["--max-time", "1", &format!("https://{VIP}/healthz")]).0;
        let now = begin.elapsed();
        if code == 200 {
            if stopping.try_wait().ok().flatten().is_some() {
                answered_after_stop += 1;
            }
        } else {
            failures += 1;
            first_failure.get_or_insert(now);
            last_failure = Some(now);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(stopping.wait().expect("docker ends").success());
    assert_eq!(
        answered_after_stop, 10,
        "the site did not answer through lb2"
    );
    let window = match (first_failure, last_failure) {
        (Some(first), Some(last)) => (last - first).as_secs_f64() + 0.1,
        _ => 0.0,
    };
    (failures, window)
}
