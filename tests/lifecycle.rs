//! The example topology's whole life on real lab hosts: plan on fresh hosts, connection
//! errors, apply, drift, saved and stale plans, the lock, a config rejected by its validator,
//! a host killed mid-apply, and destroy back to the hosts as they were.
//!
//! One test, so the eight hosts are brought up once. It uses a copy of `examples/scale-up`
//! renamed `scale-test` on 10.231.8.0/24, so a running quickstart lab is left alone.

mod common;

use common::LabExample;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Output, Stdio};

const VIP: &str = "10.231.8.10";

/// The example on 10.231.8.0/24 as `scale-test`, with a value full of shell and config
/// punctuation that validation allows, which must arrive verbatim.
fn scale_test() -> LabExample {
    LabExample::new("scale-test", 8, |text| {
        text.replace(
            "    COUNTER_GREETING: hello from the scale-up example",
            "    COUNTER_GREETING: hello from the scale-up example\n    COUNTER_MOTTO: \"it's <odd> & (fine) #1 ;|*\"",
        )
    })
}

/// Runs `infra`, checking that no secret value appears in anything it printed.
trait Infra {
    fn infra(&self, args: &[&str]) -> Output;
}

impl Infra for LabExample {
    fn infra(&self, args: &[&str]) -> Output {
        let output = self.run(args);
        for (name, value) in &common::SECRETS[..4] {
            assert!(
                !text(&output.stdout).contains(value) && !text(&output.stderr).contains(value),
                "`infra {}` printed the value of {name}:\n{}",
                args.join(" "),
                show(&output)
            );
        }
        output
    }
}

const HOSTS: [&str; 8] = ["lb1", "lb2", "web1", "web2", "app1", "app2", "db1", "db2"];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn show(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
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

#[test]
fn the_example_is_planned_applied_kept_safe_and_destroyed_on_real_hosts() {
    let example = scale_test();
    let _ = example.infra(&["lab", "down"]);
    assert_code("lab up", &example.infra(&["lab", "up", "--recreate"]), 0);
    let before: Vec<String> = HOSTS.iter().map(|h| example.snapshot(h)).collect();

    // Fresh hosts: every resource is to be created; --detailed-exitcode says 2.
    let plan = example.infra(&["plan", "--json", "--detailed-exitcode"]);
    assert_code("plan on fresh hosts", &plan, 2);
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("JSON plan");
    assert_eq!(json["format_version"], "1.0");
    let changes = json["resource_changes"]
        .as_array()
        .expect("resource_changes");
    assert!(changes.len() > 90, "{} resources", changes.len());
    for change in changes {
        let actions = &change["actions"];
        let absent_file = change["kind"] == "absent_file";
        assert!(
            *actions == serde_json::json!(["create"])
                || (absent_file && *actions == serde_json::json!(["no-op"])),
            "{change}"
        );
    }
    assert_eq!(json["summary"]["change"], 0);
    assert_eq!(json["summary"]["destroy"], 0);
    let text_plan = example.infra(&["plan"]);
    assert!(text(&text_plan.stdout).contains(&format!(
        "Plan: {} to add, 0 to change, 0 to destroy.",
        json["summary"]["add"]
    )));
    for line in text(&text_plan.stdout).lines() {
        assert!(
            !line.contains("stats-Secret-1") && !line.contains("app-Secret-2"),
            "a secret in the plan: {line}"
        );
    }
    // Planning changed nothing on any host.
    let after_plan: Vec<String> = HOSTS.iter().map(|h| example.snapshot(h)).collect();
    assert!(before == after_plan, "plan changed a host");

    // Connection errors: each has its own message, names the host, and the others are planned.
    let ghost = scale_test();
    copy_lab_files(&example, &ghost);
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

    let changed_key = scale_test();
    copy_lab_files(&example, &changed_key);
    let known = changed_key.path().join(".infra/lab/scale-test/known_hosts");
    let known_text = std::fs::read_to_string(&known).expect("known_hosts");
    let web2_key: Vec<&str> = known_text
        .lines()
        .filter(|l| l.starts_with("10.231.8.22 "))
        .collect();
    let swapped: String = known_text
        .lines()
        .filter(|l| !l.starts_with("10.231.8.21 "))
        .chain(web2_key.iter().map(|l| &**l))
        .map(|l| {
            l.replacen(
                "10.231.8.22 ",
                "10.231.8.21 ",
                usize::from(web2_key.contains(&l)),
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&known, swapped + "\n").expect("write known_hosts");
    let changed = changed_key.infra(&["plan", "--target", "web1"]);
    assert_code("plan with a changed host key", &changed, 1);
    let out = text(&changed.stdout);
    assert!(
        out.contains("host key of `web1` (10.231.8.21) has CHANGED") && out.contains("SHA256:"),
        "{}",
        show(&changed)
    );

    let wrong_key = scale_test();
    copy_lab_files(&example, &wrong_key);
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

    // Apply converges; the next plan has nothing to do.
    let apply = example.infra(&["apply", "--auto-approve"]);
    assert_code("apply", &apply, 0);
    assert!(
        text(&apply.stdout).contains("Apply complete! Resources: "),
        "{}",
        show(&apply)
    );
    let converged = example.infra(&["plan", "--detailed-exitcode"]);
    assert_code("plan after apply", &converged, 0);
    assert!(
        text(&converged.stdout).contains("No changes. Your infrastructure matches the topology.")
    );
    let motto = example.ssh_ok("app1", "grep MOTTO /etc/counter/environment");
    assert_eq!(motto.trim(), "COUNTER_MOTTO=\"it's <odd> & (fine) #1 ;|*\"");
    assert!(
        curl(&format!("https://{VIP}/")).is_some_and(|page| page.contains("scale-up")),
        "the site answers through the VIP"
    );

    // Drift: a file edited by hand and a stopped service show up as changes back.
    example.ssh_ok(
        "web1",
        "echo '# edited by hand' >> /etc/nginx/sites-enabled/scale-test",
    );
    example.ssh_ok("lb2", "systemctl stop haproxy");
    let drift = example.infra(&["plan", "--detailed-exitcode"]);
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
    assert!(
        out.contains("Plan: 0 to add, 2 to change, 0 to destroy."),
        "{out}"
    );

    // A saved plan is refused once a host changed since it was made ...
    let plan_file = example.path().join("drift.plan");
    assert_code(
        "plan --out",
        &example.infra(&["plan", "--out", plan_file.to_str().expect("utf-8")]),
        0,
    );
    example.ssh_ok(
        "web2",
        "echo '# more' >> /etc/nginx/sites-enabled/scale-test",
    );
    let stale = example.infra(&["apply", plan_file.to_str().expect("utf-8")]);
    assert_code("apply of a stale plan", &stale, 1);
    assert!(
        text(&stale.stderr).contains("the saved plan is stale: host `web2` changed"),
        "{}",
        show(&stale)
    );
    // ... and applied exactly, without a prompt, when it is current.
    assert_code(
        "plan --out",
        &example.infra(&["plan", "--out", plan_file.to_str().expect("utf-8")]),
        0,
    );
    assert_code(
        "apply saved plan",
        &example.infra(&["apply", plan_file.to_str().expect("utf-8")]),
        0,
    );
    assert_code(
        "plan after saved apply",
        &example.infra(&["plan", "--detailed-exitcode"]),
        0,
    );

    // Without a terminal and without approval, apply refuses instead of waiting.
    example.ssh_ok(
        "web1",
        "echo '# again' >> /etc/nginx/sites-enabled/scale-test",
    );
    let unapproved = common::infra_process()
        .current_dir(example.path())
        .arg("apply")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_code("apply without approval", &unapproved, 1);
    assert!(text(&unapproved.stderr).contains("refusing to make changes without confirmation"));

    // A second run fails at once on the lock, naming its holder.
    let held = infra_exec::lock::Lock::acquire(example.path(), "apply", std::time::Duration::ZERO)
        .expect("take the lock");
    let locked = example.infra(&["apply", "--auto-approve"]);
    assert_code("apply while locked", &locked, 1);
    assert!(
        text(&locked.stderr).contains(&format!("lock ID {}", held.info().id)),
        "{}",
        show(&locked)
    );
    let wrong = example.infra(&["force-unlock", "not-the-id"]);
    assert_code("force-unlock with a wrong ID", &wrong, 1);
    let id = held.info().id.clone();
    assert_code("force-unlock", &example.infra(&["force-unlock", &id]), 0);
    drop(held);
    // In CI form: one JSON event per line, the version first and the summary last.
    let json_apply = example.infra(&["apply", "--auto-approve", "--json"]);
    assert_code("apply --json", &json_apply, 0);
    let events: Vec<serde_json::Value> = text(&json_apply.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(
        events.first().map(|e| e["type"].clone()),
        Some(serde_json::json!("version"))
    );
    assert!(events.iter().any(|e| e["type"] == "planned_changes"));
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "apply_complete" && e["host"] == "web1"),
        "{events:?}"
    );
    let last = events.last().expect("events");
    assert_eq!(last["type"], "summary");
    assert_eq!(last["changed"], 1);

    // A template that renders an invalid haproxy.cfg: lb1 rejects it, nothing is reloaded,
    // the old config keeps serving on both load balancers, no half-written file remains.
    let bad = example.path().join("bad-templates");
    std::fs::create_dir(&bad).expect("dir");
    let template =
        std::fs::read_to_string(common::root().join("templates/haproxy.cfg")).expect("template");
    std::fs::write(
        bad.join("haproxy.cfg"),
        template + "\nbackend broken\n    server x 127.0.0.1:1 no_such_option\n",
    )
    .expect("write");
    common::edit(
        &example.file(),
        "name: scale-test\n",
        "name: scale-test\ntemplates: bad-templates\n",
    );
    let sums_before = [
        example.ssh_ok("lb1", "sha256sum /etc/haproxy/haproxy.cfg"),
        example.ssh_ok("lb2", "sha256sum /etc/haproxy/haproxy.cfg"),
    ];
    let invalid = example.infra(&["apply", "--auto-approve"]);
    assert_code("apply of an invalid haproxy.cfg", &invalid, 1);
    let err = text(&invalid.stderr);
    assert!(
        err.contains("`/etc/haproxy/haproxy.cfg` on `lb1` was rejected by its check")
            && err.contains("haproxy -c"),
        "{}",
        show(&invalid)
    );
    assert!(
        err.contains("no_such_option"),
        "the validator's message is shown: {err}"
    );
    let sums_after = [
        example.ssh_ok("lb1", "sha256sum /etc/haproxy/haproxy.cfg"),
        example.ssh_ok("lb2", "sha256sum /etc/haproxy/haproxy.cfg"),
    ];
    assert_eq!(sums_before, sums_after, "a load balancer's config changed");
    for lb in ["lb1", "lb2"] {
        assert_eq!(
            example
                .ssh_ok(lb, "ls -a /etc/haproxy | grep -c infra- || true")
                .trim(),
            "0",
            "a temporary file remains on {lb}"
        );
        assert_eq!(
            example.ssh_ok(lb, "systemctl is-active haproxy").trim(),
            "active"
        );
    }
    assert!(
        curl(&format!("https://{VIP}/")).is_some(),
        "the site still answers"
    );
    common::edit(&example.file(), "templates: bad-templates\n", "");
    assert_code(
        "plan after the bad template is gone",
        &example.infra(&["plan", "--detailed-exitcode"]),
        0,
    );

    // A host killed in the middle of an apply: reported, exit 3, the state lists what was done;
    // once it is back, apply converges.
    common::edit(
        &example.file(),
        "firewall:\n  enabled: true\n",
        "firewall:\n  enabled: true\n  admin_sources: [10.231.8.0/24]\n",
    );
    let mut child = common::infra_process()
        .current_dir(example.path())
        .args(["apply", "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start apply");
    let stdout = child.stdout.take().expect("stdout");
    let mut killed = false;
    let mut transcript = String::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        transcript.push_str(&line);
        transcript.push('\n');
        if !killed && (line.contains("app1: done") || line.contains("app2: done")) {
            let status = Command::new("docker")
                .args(["kill", "infra-scale-test-web2"])
                .stdout(Stdio::null())
                .status()
                .expect("docker kill");
            assert!(status.success());
            killed = true;
        }
    }
    let status = child.wait().expect("apply ends");
    assert!(killed, "never saw the app tier finish:\n{transcript}");
    assert_eq!(
        status.code(),
        Some(3),
        "a partial apply exits 3:\n{transcript}"
    );
    assert!(transcript.contains("web2: FAILED"), "{transcript}");
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(example.path().join(".infra/state.json")).expect("state"),
    )
    .expect("state JSON");
    assert_eq!(state["hosts"]["db1"]["complete"], true, "{state}");
    assert_eq!(state["hosts"]["app2"]["complete"], true, "{state}");
    assert_code("lab up brings web2 back", &example.infra(&["lab", "up"]), 0);
    assert_code(
        "apply after the host is back",
        &example.infra(&["apply", "--auto-approve"]),
        0,
    );
    assert_code(
        "plan after recovery",
        &example.infra(&["plan", "--detailed-exitcode"]),
        0,
    );

    // Ctrl-C: the steps under way finish, the state is saved, the lock released, exit 130;
    // the next apply converges.
    common::edit(&example.file(), "  admin_sources: [10.231.8.0/24]\n", "");
    let mut child = common::infra_process()
        .current_dir(example.path())
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
        if !interrupted && line.contains("db1: done") {
            let status = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
            interrupted = true;
        }
    }
    let status = child.wait().expect("apply ends");
    assert!(interrupted, "never saw db1 finish:\n{transcript}");
    assert_eq!(status.code(), Some(130), "Ctrl-C exits 130:\n{transcript}");
    assert!(
        !example.path().join(".infra/state.lock").exists(),
        "the lock was not released"
    );
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(example.path().join(".infra/state.json")).expect("state"),
    )
    .expect("state JSON");
    assert_eq!(state["hosts"]["db1"]["complete"], true, "{state}");
    assert_code(
        "apply after Ctrl-C",
        &example.infra(&["apply", "--auto-approve"]),
        0,
    );
    assert_code(
        "plan after Ctrl-C recovery",
        &example.infra(&["plan", "--detailed-exitcode"]),
        0,
    );

    // What destroy would do, shown without doing it.
    let destroy_plan = example.infra(&["plan", "--destroy", "--detailed-exitcode"]);
    assert_code("plan --destroy", &destroy_plan, 2);
    let out = text(&destroy_plan.stdout);
    assert!(
        out.contains("# lb1.package[\"haproxy\"] will be destroyed"),
        "{out}"
    );
    assert!(out.contains("0 to add, 0 to change,"), "{out}");

    // Destroy returns every host to what it was (packages and /etc), and a second does nothing.
    let destroy = example.infra(&["destroy", "--auto-approve"]);
    assert_code("destroy", &destroy, 0);
    assert!(
        text(&destroy.stdout).contains("Destroy complete!"),
        "{}",
        show(&destroy)
    );
    for (host, before) in HOSTS.iter().zip(&before) {
        let after = example.snapshot(host);
        assert!(
            before == &after,
            "{host} differs after destroy:\n{}",
            diff(before, &after)
        );
    }
    let again = example.infra(&["destroy", "--auto-approve"]);
    assert_code("second destroy", &again, 0);
    assert!(
        text(&again.stdout).contains("No changes."),
        "{}",
        show(&again)
    );
    assert_code("lab down", &example.infra(&["lab", "down"]), 0);
}

/// Lets another copy of the topology use the same lab (same key, known_hosts, config).
fn copy_lab_files(from: &LabExample, to: &LabExample) {
    let source = from.path().join(".infra/lab/scale-test");
    let target = to.path().join(".infra/lab/scale-test");
    std::fs::create_dir_all(&target).expect("dir");
    for name in ["id_ed25519", "id_ed25519.pub", "known_hosts"] {
        std::fs::copy(source.join(name), target.join(name)).expect("copy lab file");
    }
    let config = std::fs::read_to_string(source.join("ssh_config")).expect("ssh_config");
    let config = config.replace(&source.display().to_string(), &target.display().to_string());
    std::fs::write(target.join("ssh_config"), config).expect("write ssh_config");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(
        target.join("id_ed25519"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("mode");
}

fn diff(before: &str, after: &str) -> String {
    let before: Vec<&str> = before.lines().collect();
    let after: Vec<&str> = after.lines().collect();
    let gone: Vec<&&str> = before.iter().filter(|l| !after.contains(l)).collect();
    let new: Vec<&&str> = after.iter().filter(|l| !before.contains(l)).collect();
    format!("gone: {gone:#?}\nnew: {new:#?}")
}
