//! The example topology's whole life on real lab hosts, run the way users run it: two separate
//! clones of the repository as two CI runners (no shared `.infra/`), a malicious pull request,
//! plans on fresh hosts, connection errors, apply, drift, saved and stale plans, two applies at
//! the same moment, a config rejected by its checker, a host killed halfway, a run killed with
//! SIGKILL, Ctrl-C, and destroy back to the hosts as they were.
//!
//! One test, so the nine hosts are brought up once. It uses copies of `examples/scale-up`
//! renamed `scale-test` on 10.231.8.0/24, so a running quickstart lab is left alone. The fleet
//! is mixed, as fleets are while they are upgraded: the second host of each tier (lb2, web2,
//! app2 and the replica db2) runs Debian 13 (trixie), the others Debian 12 (bookworm).

mod common;

use common::{show, text};

use common::LabExample;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "10.231.8.10";
const HOSTS: [&str; 9] = [
    "lb1", "lb2", "web1", "web2", "app1", "app2", "db1", "db2", "mon1",
];

/// The example on 10.231.8.0/24 as `scale-test`, with a value full of shell and config
/// punctuation that validation allows, which must arrive verbatim, and the second host of each
/// tier on Debian 13.
fn scale_test() -> LabExample {
    LabExample::new("scale-test", 8, |text| {
        text.replace(
            "    COUNTER_GREETING: hello from the scale-up example",
            "    COUNTER_GREETING: hello from the scale-up example\n    COUNTER_MOTTO: \"it's <odd> & (fine) #1 ;|*\"",
        )
        .replace("\nlab:\n", &format!("\nlab:\n  hosts:\n{}", TRIXIE.map(|h| format!("    {h}: {{ release: trixie }}\n")).concat()))
    })
}

/// The hosts that run Debian 13; the others run Debian 12.
const TRIXIE: [&str; 4] = ["lb2", "web2", "app2", "db2"];

/// Runs `infra`, checking that no secret value appears in anything it printed.
trait Infra {
    fn infra(&self, args: &[&str]) -> Output;
}

impl Infra for LabExample {
    fn infra(&self, args: &[&str]) -> Output {
        let output = self.run(args);
        assert_no_secret(args, &output);
        output
    }
}

fn assert_no_secret(args: &[&str], output: &Output) {
    for (name, value) in common::example_secrets() {
        assert!(
            !text(&output.stdout).contains(value) && !text(&output.stderr).contains(value),
            "`infra {}` printed the value of {name}:\n{}",
            args.join(" "),
            show(output)
        );
    }
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(
        !all.contains("PRIVATE KEY-----\nMI"),
        "`infra {}` printed a private key",
        args.join(" ")
    );
}

fn assert_code(what: &str, output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{what}: {}", show(output));
}

fn curl(url: &str) -> Option<String> {
    let output = Command::new("curl")
        .args(["-sk", "--max-time", "5", "-f", url])
        .output()
        .ok()?;
    output.status.success().then(|| text(&output.stdout))
}

/// Polls `ready` every 100 ms until it holds, failing after `seconds`.
fn wait_for(what: &str, seconds: u64, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !ready() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `infra ARGS` on a pseudo-terminal (so it asks for confirmation, holding the hosts' locks
/// meanwhile), its output collected by a thread.
struct Prompted {
    child: Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Prompted {
    fn start(example: &LabExample, args: &[&str]) -> Prompted {
        let infra = assert_cmd::cargo::cargo_bin!("infra").display().to_string();
        let command = std::iter::once(infra)
            .chain(args.iter().map(|a| (*a).to_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = common::infra_process_named("script")
            .current_dir(example.path())
            .args(["-qfec", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script runs");
        let mut stdout = child.stdout.take().expect("stdout");
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&output);
        let reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                if let Ok(mut all) = sink.lock() {
                    all.push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
            }
        });
        Prompted {
            child,
            output,
            reader,
        }
    }

    fn text(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    fn answer(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(line.as_bytes()).expect("answer");
        stdin.flush().expect("flush");
    }

    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().expect("ends");
        let Prompted { output, reader, .. } = self;
        let _ = reader.join();
        let text = output.lock().map(|o| o.clone()).unwrap_or_default();
        (status.code(), text)
    }
}

/// The JSON event stream of a failed run ends with an error diagnostic whose summary holds
/// `summary`; it names a host when the error concerns one.
fn assert_json_diagnostic(output: &Output, summary: &str) {
    let stdout = text(&output.stdout);
    let last: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON event at the end:\n{}", show(output)));
    for line in stdout.lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("a JSON event");
        common::check_schema("events.schema.json", &event);
    }
    assert_eq!(last["type"], "diagnostic", "{last}");
    assert_eq!(last["severity"], "error", "{last}");
    assert!(
        last["summary"].as_str().unwrap_or("").contains(summary),
        "{last}"
    );
    assert!(
        last["host"].as_str().is_some_and(|h| HOSTS.contains(&h)),
        "{last}"
    );
}

/// Whether any host still holds a lock of `infra`.
fn locked_hosts(example: &LabExample) -> Vec<&'static str> {
    HOSTS
        .into_iter()
        .filter(|h| {
            example
                .ssh_ok(h, "[ -d /var/lib/infra/lock ] && echo locked || true")
                .contains("locked")
        })
        .collect()
}

#[test]
fn two_runners_plan_apply_race_crash_and_destroy_on_real_hosts() {
    let a = scale_test();
    let _ = a.infra(&["lab", "down"]);
    assert_code("lab up", &a.infra(&["lab", "up", "--recreate"]), 0);
    for host in HOSTS {
        let release = a.ssh_ok(host, ". /etc/os-release && echo $VERSION_CODENAME");
        let wanted = if TRIXIE.contains(&host) {
            "trixie"
        } else {
            "bookworm"
        };
        assert_eq!(release.trim(), wanted, "the release of {host}");
    }
    let before: Vec<String> = HOSTS.iter().map(|h| a.snapshot(h)).collect();
    let b = LabExample::clone_of(&a);

    // Fresh hosts: everything is to be created; --detailed-exitcode says 2.
    let plan = a.infra(&["plan", "--json", "--detailed-exitcode"]);
    assert_code("plan on fresh hosts", &plan, 2);
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("JSON plan");
    assert_eq!(json["format_version"], "2.0");
    assert_eq!(json["mode"], "apply");
    let changes = json["resource_changes"]
        .as_array()
        .expect("resource_changes");
    assert!(changes.len() > 90, "{} resources", changes.len());
    for change in changes {
        let default_site = change["kind"] == "absent_file";
        let actions = &change["actions"];
        assert!(
            *actions == serde_json::json!(["create"])
                || (default_site && *actions == serde_json::json!(["delete"])),
            "{change}"
        );
    }
    let waves: Vec<&str> = json["program"]
        .as_array()
        .expect("program")
        .iter()
        .filter_map(|w| w["label"].as_str())
        .collect();
    assert_eq!(
        waves,
        [
            "packages",
            "database primary",
            "database replicas",
            "app (migration)",
            "app",
            "web",
            "load balancers",
            "monitoring"
        ]
    );
    let after_plan: Vec<String> = HOSTS.iter().map(|h| a.snapshot(h)).collect();
    assert!(before == after_plan, "plan changed a host");

    // Connection errors: each has its own message, names the host, and the others are planned.
    let ghost = LabExample::clone_of(&a);
    common::edit(
        &ghost.file(),
        "  db2:  { address: 10.231.8.42 }\n",
        "  db2:  { address: 10.231.8.42 }\n  ghost: { address: 10.231.8.99 }\n",
    );
    let unreachable = ghost.infra(&["plan", "--connect-timeout", "3"]);
    assert_code("plan with an unreachable host", &unreachable, 1);
    let out = text(&unreachable.stdout);
    assert!(
        out.contains("host `ghost` could not be planned") && out.contains("cannot reach `ghost`"),
        "{}",
        show(&unreachable)
    );
    assert!(
        out.contains("web1.file["),
        "the other hosts are still planned"
    );
    let not_saved = ghost.infra(&["plan", "--connect-timeout", "3", "--out", "p.json"]);
    assert_code("an errored plan is not saved", &not_saved, 1);
    assert!(!ghost.path().join("p.json").exists());

    let changed_key = LabExample::clone_of(&a);
    let known = changed_key.path().join(".infra/lab/scale-test/known_hosts");
    let known_text = std::fs::read_to_string(&known).expect("known_hosts");
    let web2_keys: Vec<String> = known_text
        .lines()
        .filter(|l| l.starts_with("10.231.8.22 "))
        .map(|l| l.replacen("10.231.8.22 ", "10.231.8.21 ", 1))
        .collect();
    let swapped: Vec<String> = known_text
        .lines()
        .filter(|l| !l.starts_with("10.231.8.21 "))
        .map(str::to_owned)
        .chain(web2_keys)
        .collect();
    std::fs::write(&known, swapped.join("\n") + "\n").expect("write known_hosts");
    let changed = changed_key.infra(&["plan", "--target", "web1"]);
    assert_code("plan with a changed host key", &changed, 1);
    assert!(
        text(&changed.stdout).contains("host key of `web1` (10.231.8.21) has CHANGED")
            && text(&changed.stdout).contains("SHA256:"),
        "{}",
        show(&changed)
    );

    let wrong_key = LabExample::clone_of(&a);
    let key = wrong_key.path().join(".infra/lab/scale-test/id_ed25519");
    std::fs::remove_file(&key).expect("remove key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("keygen");
    assert!(status.success());
    let refused = wrong_key.infra(&["plan", "--target", "app1"]);
    assert_code("plan with a wrong key", &refused, 1);
    assert!(
        text(&refused.stdout).contains("refused the login"),
        "{}",
        show(&refused)
    );

    // A malicious pull request: an ssh_config in the checkout with a ProxyCommand. It is
    // never used: the lab's hosts are reached with `infra`'s own configuration.
    let pwned = std::env::temp_dir().join(format!("infra-pwned-{}", std::process::id()));
    let _ = std::fs::remove_file(&pwned);
    let hostile = LabExample::clone_of(&a);
    std::fs::write(
        hostile.path().join(".infra/lab/scale-test/ssh_config"),
        format!(
            "Host *\n    ProxyCommand sh -c 'touch {}; nc %h %p'\n",
            pwned.display()
        ),
    )
    .expect("write a hostile ssh_config");
    let planned = hostile.infra(&["plan", "--target", "web1"]);
    assert_code("plan in a hostile checkout", &planned, 0);
    assert!(
        !pwned.exists(),
        "a ProxyCommand from the checkout ran on the controller"
    );

    // Runner A applies; runner B, with no `.infra/` of A's, finds nothing to do: the hosts
    // keep the records and the edge certificate.
    // (with `-v`: every script sent is shown, its data left out; `infra` checks each output
    // of this test for the secrets' values, and this cold apply sends all of them)
    let apply = a.infra(&["-v", "apply", "--auto-approve"]);
    assert_code("apply", &apply, 0);
    assert!(
        text(&apply.stdout).contains("Apply complete! Resources: "),
        "{}",
        show(&apply)
    );
    let shown = text(&apply.stderr);
    assert!(
        shown.contains("db1: sh -s <<'SCRIPT'")
            && shown.contains("run_sql <<'INFRA_SQL'")
            && shown.contains("lines of data not shown"),
        "-v shows the scripts"
    );
    assert!(locked_hosts(&a).is_empty(), "apply gave its locks back");
    assert!(!b.path().join(".infra/tls").exists());
    let from_b = b.infra(&["plan", "--detailed-exitcode"]);
    assert_code("B plans after A applied", &from_b, 0);
    // The trixie replica of the bookworm primary replicates without TLS (10.11 offers none).
    let replica = a.ssh_ok("db2", "mariadb -e 'SHOW REPLICA STATUS\\G'");
    assert!(
        replica.contains("Master_SSL_Allowed: No") && replica.contains("Slave_IO_Running: Yes"),
        "{replica}"
    );
    assert!(
        text(&from_b.stdout).contains("No changes."),
        "{}",
        show(&from_b)
    );
    let motto = a.ssh_ok("app1", "grep MOTTO /etc/counter/environment");
    assert_eq!(motto.trim(), "COUNTER_MOTTO=\"it's <odd> & (fine) #1 ;|*\"");
    assert!(
        curl(&format!("https://{VIP}/")).is_some_and(|page| page.contains("scale-up")),
        "the site answers through the VIP"
    );
    // What `infra` left on a host: its record, private to root, and no readable secret.
    let record = a.ssh_ok("lb1", "stat -c '%a %U' /var/lib/infra /var/lib/infra/record/scale-test /etc/haproxy/haproxy.cfg /etc/keepalived/keepalived.conf");
    assert_eq!(
        record.lines().collect::<Vec<_>>(),
        ["700 root", "600 root", "600 root", "600 root"]
    );
    let listed = b.infra(&["state", "list"]);
    assert_code("state list", &listed, 0);
    assert_eq!(
        text(&listed.stdout)
            .lines()
            .filter(|l| l.contains(" no") || l.contains(" yes"))
            .count(),
        HOSTS.len(),
        "{}",
        show(&listed)
    );
    let shown = b.infra(&["state", "show", "lb1", "--json"]);
    assert_code("state show", &shown, 0);
    let record: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("JSON record");
    assert!(
        record["packages"]
            .as_array()
            .is_some_and(|p| p.contains(&serde_json::json!("haproxy")))
    );
    assert_eq!(
        record["files"]["/etc/haproxy/haproxy.cfg"]["sha256"],
        serde_json::Value::Null
    );

    // The running keepalived holds the VRRP password exactly as written (the test secret sits
    // at the edge of what keepalived takes): its own dump of the configuration it parsed says so.
    let dumped = a.ssh_ok(
        "lb1",
        "rm -f /tmp/keepalived.data; systemctl kill -s USR1 --kill-whom=main keepalived.service; \
         for i in $(seq 100); do grep -q 'Password = ' /tmp/keepalived.data 2>/dev/null && break; sleep 0.1; done; \
         grep -m1 'Password = ' /tmp/keepalived.data; rm -f /tmp/keepalived.data",
    );
    let vrrp = common::secret("INFRA_VRRP_PASSWORD");
    assert!(
        dumped.trim_end().ends_with(&format!("Password = {vrrp}")),
        "keepalived read the VRRP password differently (dump line: {:?})",
        dumped.trim_end().replace(vrrp, "(the password)")
    );

    // Both releases' exporters read what `infra` wrote: MariaDB's (0.14 on db1, Debian 12; 0.17
    // on db2, Debian 13) log in with the client file's account and hostile password, and Nginx's
    // (0.11 on web1, 1.4 on web2) read stub_status, as Prometheus on mon1 says.
    let prometheus = format!("http://{}:9090/api/v1/query?query=", a.address("mon1"));
    for (metric, hosts) in [("mysql_up", ["db1", "db2"]), ("nginx_up", ["web1", "web2"])] {
        wait_for(&format!("{metric} = 1 on {hosts:?}"), 120, || {
            let Some(answer) = curl(&format!("{prometheus}{metric}")) else {
                return false;
            };
            let answer: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
            let results = answer["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            hosts.iter().all(|host| {
                results
                    .iter()
                    .any(|r| r["metric"]["host"] == *host && r["value"][1] == "1")
            })
        });
    }

    // B changes a setting and applies; A's plan then shows only that change, reverted.
    common::edit(&b.file(), "algorithm: roundrobin", "algorithm: leastconn");
    assert_code("B applies", &b.infra(&["apply", "--auto-approve"]), 0);
    let revert = a.infra(&["plan", "--detailed-exitcode"]);
    assert_code("A sees B's change", &revert, 2);
    let out = text(&revert.stdout);
    assert!(
        out.contains("-    balance leastconn") && out.contains("+    balance roundrobin"),
        "{out}"
    );
    assert!(
        out.contains("Plan: 0 to add, 2 to change, 0 to destroy."),
        "{out}"
    );
    common::edit(&b.file(), "algorithm: leastconn", "algorithm: roundrobin");

    // Drift: a file edited by hand and a stopped service show up as changes back.
    a.ssh_ok(
        "web1",
        "echo '# edited by hand' >> /etc/nginx/sites-enabled/scale-test",
    );
    a.ssh_ok("lb2", "systemctl stop haproxy");
    let drift = a.infra(&["plan", "--detailed-exitcode"]);
    assert_code("plan after drift", &drift, 2);
    let out = text(&drift.stdout);
    assert!(
        out.contains(
            "# web1.file[\"/etc/nginx/sites-enabled/scale-test\"] will be updated in-place"
        ),
        "{out}"
    );
    assert!(out.contains("-# edited by hand"), "{out}");
    assert!(out.contains("# will reload nginx.service"), "{out}");
    assert!(
        out.contains("# lb2.service[\"haproxy.service\"] will be updated in-place"),
        "{out}"
    );

    // A saved plan is refused once a host changed since it was made ...
    let plan_file = a.path().join("drift.plan");
    let plan_path = plan_file.to_str().expect("utf-8");
    assert_code("plan --out", &a.infra(&["plan", "--out", plan_path]), 0);
    a.ssh_ok(
        "web2",
        "echo '# more' >> /etc/nginx/sites-enabled/scale-test",
    );
    let stale = a.infra(&["apply", plan_path]);
    assert_code("apply of a stale plan", &stale, 1);
    assert!(
        text(&stale.stderr).contains("the saved plan is stale: `web2` changed"),
        "{}",
        show(&stale)
    );
    let stale = a.infra(&["apply", plan_path, "--json"]);
    assert_code("apply --json of a stale plan", &stale, 1);
    assert_json_diagnostic(&stale, "the saved plan is stale");
    // ... applied exactly when it is current, from the other runner ...
    assert_code("plan --out", &a.infra(&["plan", "--out", plan_path]), 0);
    // (what a review sees of it: text, JSON, and the Markdown of a pull-request comment)
    let shown = a.infra(&["show", plan_path]);
    assert_code("show", &shown, 0);
    let as_json: serde_json::Value =
        serde_json::from_slice(&a.infra(&["show", plan_path, "--json"]).stdout).expect("JSON");
    common::check_schema("plan.schema.json", &as_json);
    assert_eq!(as_json["errored"], false);
    let changes = as_json["summary"]["change"].as_u64().unwrap_or(0);
    assert!(
        text(&shown.stdout).contains(&format!("Plan: 0 to add, {changes} to change")),
        "{}",
        show(&shown)
    );
    let markdown = text(&a.infra(&["show", plan_path, "--markdown"]).stdout);
    assert!(
        markdown.contains("### infra plan for `scale-test`")
            && markdown.contains("| `web2` | 0 | 1 | 0 | reload nginx.service |"),
        "{markdown}"
    );
    for (name, value) in common::SECRETS {
        assert!(!markdown.contains(value), "the Markdown shows {name}");
    }
    let copied = b.path().join("drift.plan");
    std::fs::copy(&plan_file, &copied).expect("copy the plan to runner B");
    assert_code(
        "B applies A's saved plan",
        &b.infra(&["apply", copied.to_str().expect("utf-8")]),
        0,
    );
    // ... and only once.
    let twice = a.infra(&["apply", plan_path]);
    assert_code("the same saved plan again", &twice, 1);
    assert!(
        text(&twice.stderr).contains("the saved plan is stale"),
        "{}",
        show(&twice)
    );
    assert_code(
        "plan after the saved apply",
        &a.infra(&["plan", "--detailed-exitcode"]),
        0,
    );

    // Without a terminal and without approval, apply refuses instead of waiting.
    a.ssh_ok(
        "web1",
        "echo '# again' >> /etc/nginx/sites-enabled/scale-test",
    );
    let unapproved = common::infra_process()
        .current_dir(a.path())
        .arg("apply")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_code("apply without approval", &unapproved, 1);
    assert!(text(&unapproved.stderr).contains("refusing to make changes without confirmation"));
    assert!(
        locked_hosts(&a).is_empty(),
        "a refused apply gave its locks back"
    );

    // A and B apply at the same moment: exactly one proceeds; the other waits for the lock,
    // then reports who holds it. The winner holds the locks while it waits for `yes`.
    let first = Prompted::start(&a, &["apply", "--lock-timeout", "4s"]);
    let second = Prompted::start(&b, &["apply", "--lock-timeout", "4s"]);
    wait_for("one run to ask for confirmation", 60, || {
        first.text().contains("Enter a value") || second.text().contains("Enter a value")
    });
    let (winner, loser) = if first.text().contains("Enter a value") {
        (first, second)
    } else {
        (second, first)
    };
    let (code, loser_text) = loser.finish();
    assert_eq!(code, Some(1), "{loser_text}");
    assert!(
        loser_text.contains("is locked by")
            && loser_text.contains("for `apply` of topology `scale-test`"),
        "{loser_text}"
    );
    let mut winner = winner;
    winner.answer("yes\n");
    let (code, winner_text) = winner.finish();
    assert_eq!(code, Some(0), "{winner_text}");
    assert!(winner_text.contains("Apply complete!"), "{winner_text}");

    // A config its checker rejects: lb1 refuses it, nothing reloads, both keep serving, no
    // half-written file remains.
    let bad = a.path().join("bad-templates");
    std::fs::create_dir(&bad).expect("dir");
    let template =
        std::fs::read_to_string(common::root().join("templates/haproxy.cfg")).expect("template");
    std::fs::write(
        bad.join("haproxy.cfg"),
        template + "\nbackend broken\n    server x 127.0.0.1:1 no_such_option\n",
    )
    .expect("write");
    common::edit(
        &a.file(),
        "name: scale-test\n",
        "name: scale-test\ntemplates: bad-templates\n",
    );
    let sums_before = [
        a.ssh_ok("lb1", "sha256sum /etc/haproxy/haproxy.cfg"),
        a.ssh_ok("lb2", "sha256sum /etc/haproxy/haproxy.cfg"),
    ];
    let invalid = a.infra(&["apply", "--auto-approve"]);
    assert_code("apply of an invalid haproxy.cfg", &invalid, 1);
    let err = text(&invalid.stderr);
    assert!(
        err.contains("`/etc/haproxy/haproxy.cfg` on `lb1` was rejected by `haproxy -c`")
            && err.contains("no_such_option"),
        "{}",
        show(&invalid)
    );
    let sums_after = [
        a.ssh_ok("lb1", "sha256sum /etc/haproxy/haproxy.cfg"),
        a.ssh_ok("lb2", "sha256sum /etc/haproxy/haproxy.cfg"),
    ];
    assert_eq!(sums_before, sums_after, "a load balancer's config changed");
    for lb in ["lb1", "lb2"] {
        assert_eq!(
            a.ssh_ok(lb, "ls -a /etc/haproxy | grep -c infra-new || true")
                .trim(),
            "0"
        );
        assert_eq!(a.ssh_ok(lb, "systemctl is-active haproxy").trim(), "active");
    }
    assert!(
        curl(&format!("https://{VIP}/")).is_some(),
        "the site still answers"
    );
    common::edit(&a.file(), "templates: bad-templates\n", "");
    assert_code(
        "plan after the bad template is gone",
        &a.infra(&["plan", "--detailed-exitcode"]),
        0,
    );

    // A host killed in the middle of an apply: reported, exit 3, the others' records say
    // what was done; once it is back, apply converges.
    common::edit(
        &a.file(),
        "  admin_sources: [10.231.8.0/24]\n",
        "  admin_sources: [10.231.8.0/24, 10.231.99.0/24]\n",
    );
    // The run holds every host's lock while it asks for `yes`; web2 dies then, before its
    // turn comes, whatever the machine's speed.
    let mut run = Prompted::start(&a, &["apply"]);
    wait_for("the apply to ask for confirmation", 60, || {
        run.text().contains("Enter a value")
    });
    let status = Command::new("docker")
        .args(["kill", "infra-scale-test-web2"])
        .stdout(Stdio::null())
        .status()
        .expect("docker kill");
    assert!(status.success());
    run.answer("yes\n");
    let (code, transcript) = run.finish();
    assert_eq!(code, Some(3), "a partial apply exits 3:\n{transcript}");
    assert!(transcript.contains("web2: FAILED"), "{transcript}");
    assert!(transcript.contains("app1: done"), "{transcript}");
    assert!(
        a.ssh_ok("db1", "cat /var/lib/infra/record/scale-test")
            .contains("serial\t")
    );
    // web2 went away holding this run's lock: the run says so, with the ID to force.
    let warning = transcript
        .lines()
        .find(|l| l.contains("could not release the lock on `web2`"))
        .unwrap_or_else(|| panic!("no warning about web2's lock:\n{transcript}"));
    let id = warning
        .rsplit("infra force-unlock ")
        .next()
        .map(|rest| rest.trim_end().trim_end_matches('`').to_owned())
        .expect("the lock ID is named");
    assert_code("lab up brings web2 back", &a.infra(&["lab", "up"]), 0);
    let held = a.infra(&["apply", "--auto-approve"]);
    assert_code("apply while web2 keeps the dead run's lock", &held, 1);
    assert!(
        text(&held.stderr).contains(&format!("lock ID {id}")),
        "{}",
        show(&held)
    );
    assert_code(
        "force-unlock web2's lock",
        &a.infra(&["force-unlock", &id]),
        0,
    );
    assert_code(
        "apply after the host is back",
        &a.infra(&["apply", "--auto-approve"]),
        0,
    );
    assert_code(
        "plan after recovery",
        &a.infra(&["plan", "--detailed-exitcode"]),
        0,
    );

    // A bastion: web1 reached through lb1 with the key the topology names, with no agent and
    // no key of the user's: the key must be offered to the jump host too.
    let keys = a.path().join("keys");
    std::fs::create_dir(&keys).expect("keys folder");
    std::fs::copy(
        a.path().join(".infra/lab/scale-test/id_ed25519"),
        keys.join("deploy"),
    )
    .expect("copy the key");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(keys.join("deploy"), std::fs::Permissions::from_mode(0o600))
            .expect("key mode");
    }
    let plain = std::fs::read_to_string(a.file()).expect("topology");
    common::edit(
        &a.file(),
        "  web1: { address: 10.231.8.21 }\n",
        "  web1: { address: 10.231.8.21, ssh: { jump: root@10.231.8.11, identity_file: keys/deploy } }\n",
    );
    let empty_home = tempfile::tempdir().expect("home");
    let jumped = common::infra()
        .current_dir(a.path())
        .env_remove("SSH_AUTH_SOCK")
        .env("HOME", empty_home.path())
        .args(["plan", "--detailed-exitcode", "--target", "web1"])
        .output()
        .expect("run infra");
    assert_code("plan of web1 through lb1", &jumped, 0);
    std::fs::write(a.file(), plain).expect("restore the topology");

    // A run killed with SIGKILL mid-apply leaves its locks behind; the other runner sees that
    // their holder is dead, forces them away by ID, and converges.
    common::edit(
        &a.file(),
        "  admin_sources: [10.231.8.0/24, 10.231.99.0/24]\n",
        "  admin_sources: [10.231.8.0/24]\n",
    );
    let mut child = common::infra_process()
        .current_dir(a.path())
        .args(["apply", "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start apply");
    let stdout = child.stdout.take().expect("stdout");
    let mut transcript = String::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        transcript.push_str(&line);
        transcript.push('\n');
        if line.contains("db1: done") {
            child.kill().expect("SIGKILL");
            break;
        }
    }
    let _ = child.wait();
    assert!(transcript.contains("db1: done"), "{transcript}");
    assert!(
        !locked_hosts(&a).is_empty(),
        "a killed run leaves its locks"
    );
    let blocked = b.infra(&["apply", "--auto-approve"]);
    assert_code("apply while a dead run holds the lock", &blocked, 1);
    let err = text(&blocked.stderr);
    assert!(
        err.contains("its holder is dead") && err.contains("infra force-unlock"),
        "{}",
        show(&blocked)
    );
    // The same for a pipeline: the event stream ends with a diagnostic naming the host.
    let blocked = b.infra(&["apply", "--auto-approve", "--json"]);
    assert_code("apply --json while a dead run holds the lock", &blocked, 1);
    assert_json_diagnostic(&blocked, "is locked by");
    let id = err
        .split("lock ID ")
        .nth(1)
        .and_then(|rest| rest.get(..16))
        .expect("the lock ID is named")
        .to_owned();
    let plan_out = b.infra(&["plan", "--out", "locked.plan"]);
    assert_code("plan --out refuses while hosts are locked", &plan_out, 1);
    assert_code(
        "force-unlock from the other runner",
        &b.infra(&["force-unlock", &id]),
        0,
    );
    assert!(locked_hosts(&a).is_empty());
    assert_code("B converges", &b.infra(&["apply", "--auto-approve"]), 0);
    assert_code(
        "plan after the dead run",
        &a.infra(&["plan", "--detailed-exitcode"]),
        0,
    );

    // Ctrl-C: the steps under way finish, the locks on the hosts are given back, exit 130;
    // the next apply converges.
    common::edit(
        &a.file(),
        "  app_path: /api/\n",
        "  app_path: /api/\n  status_port: 8081\n",
    );
    let mut child = common::infra_process()
        .current_dir(a.path())
        .args(["apply", "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start apply");
    let stdout = child.stdout.take().expect("stdout");
    let mut interrupted = false;
    let mut transcript = String::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        transcript.push_str(&line);
        transcript.push('\n');
        if !interrupted && line.contains("web1: web") {
            let status = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
            interrupted = true;
        }
    }
    let status = child.wait().expect("apply ends");
    assert!(interrupted, "never saw web1 start:\n{transcript}");
    assert_eq!(status.code(), Some(130), "Ctrl-C exits 130:\n{transcript}");
    assert!(
        !transcript.contains("lb1: load balancers"),
        "a task started after Ctrl-C:\n{transcript}"
    );
    assert!(locked_hosts(&a).is_empty(), "Ctrl-C gave the locks back");
    assert_code(
        "apply after Ctrl-C",
        &a.infra(&["apply", "--auto-approve"]),
        0,
    );
    common::edit(
        &b.file(),
        "  app_path: /api/\n",
        "  app_path: /api/\n  status_port: 8081\n",
    );
    assert_code(
        "plan after Ctrl-C recovery",
        &b.infra(&["plan", "--detailed-exitcode"]),
        0,
    );

    // `state rm`: the record forgets a resource (nothing on the host changes), so destroy
    // leaves it.
    assert_code(
        "state rm",
        &b.infra(&["state", "rm", "db1", "directory[\"/etc/infra\"]"]),
        0,
    );
    let db1 = text(&b.infra(&["state", "show", "db1"]).stdout);
    assert!(!db1.contains("+directory  /etc/infra"), "{db1}");

    // What destroy would do, shown without doing it, from the other runner.
    let destroy_plan = b.infra(&["plan", "--destroy", "--detailed-exitcode"]);
    assert_code("plan --destroy", &destroy_plan, 2);
    let out = text(&destroy_plan.stdout);
    assert!(
        out.contains("# lb1.package[\"haproxy\"] will be destroyed"),
        "{out}"
    );
    assert!(out.contains("0 to add, 0 to change,"), "{out}");

    // Ctrl-C while destroy asks for confirmation: nothing is done, the locks it held while
    // asking are given back, and no SSH connection is left behind.
    let connections = || {
        let listed = Command::new("pgrep")
            .args(["-f", "infra-ssh"])
            .output()
            .expect("pgrep");
        text(&listed.stdout)
            .lines()
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
    };
    // (A run killed earlier may have left masters that end on their own: only new ones count.)
    let before_prompt = connections();
    let mut asking = Prompted::start(&b, &["destroy"]);
    wait_for("destroy to ask for confirmation", 60, || {
        asking.text().contains("Enter a value")
    });
    assert!(
        !locked_hosts(&a).is_empty(),
        "destroy holds the locks while it asks"
    );
    asking.answer("\x03");
    let (code, asked) = asking.finish();
    assert_eq!(code, Some(130), "{asked}");
    assert!(asked.contains("nothing was done"), "{asked}");
    assert!(
        locked_hosts(&a).is_empty(),
        "Ctrl-C at the prompt gave the locks back"
    );
    let left: Vec<String> = connections().difference(&before_prompt).cloned().collect();
    assert!(left.is_empty(), "SSH connections left running: {left:?}");

    // Destroy from B: every host's packages and /etc as before the first apply; a second
    // destroy does nothing.
    let destroy = b.infra(&["destroy", "--auto-approve"]);
    assert_code("destroy", &destroy, 0);
    assert!(
        text(&destroy.stdout).contains("Destroy complete!"),
        "{}",
        show(&destroy)
    );
    for (host, before) in HOSTS.iter().zip(&before) {
        let after = a.snapshot(host);
        assert!(
            before == &after,
            "{host} differs after destroy:\n{}",
            diff(before, &after)
        );
    }
    assert!(
        a.ssh_ok("db1", "[ -d /etc/infra ] && echo kept")
            .contains("kept"),
        "a forgotten folder stays"
    );
    let again = a.infra(&["destroy", "--auto-approve"]);
    assert_code("second destroy", &again, 0);
    assert!(
        text(&again.stdout).contains("No changes."),
        "{}",
        show(&again)
    );
    assert_code("lab down", &a.infra(&["lab", "down"]), 0);
}

fn diff(before: &str, after: &str) -> String {
    let before: Vec<&str> = before.lines().collect();
    let after: Vec<&str> = after.lines().collect();
    let gone: Vec<&&str> = before.iter().filter(|l| !after.contains(l)).collect();
    let new: Vec<&&str> = after.iter().filter(|l| !before.contains(l)).collect();
    format!("gone: {gone:#?}\nnew: {new:#?}")
}
