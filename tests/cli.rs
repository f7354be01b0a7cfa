//! The `infra` binary on the example and on fixtures: exit codes, output, files written.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use predicates::prelude::*;

#[test]
fn the_example_is_valid() {
    common::infra()
        .args(["validate", "-f"])
        .arg(common::example())
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "is valid: topology `scale-up`, 9 hosts",
        ));
}

#[test]
fn a_topology_of_one_host_says_host() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("site")).expect("site");
    let file = dir.path().join("infra.yaml");
    std::fs::write(
        &file,
        "name: one\nhosts:\n  web1: { address: 10.0.0.2 }\nweb:\n  hosts: [web1]\n  server_name: one.test\n  static_dir: site\n",
    )
    .expect("topology");
    common::infra()
        .args(["validate", "-f"])
        .arg(&file)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "is valid: topology `one`, 1 host (1 web)",
        ));
}

#[test]
fn validate_writes_nothing() {
    let dir = common::example_copy();
    common::infra()
        .args(["validate", "-f"])
        .arg(dir.path().join("infra.yaml"))
        .assert()
        .code(0);
    assert!(
        !dir.path().join(".infra").exists(),
        "validate created .infra/"
    );
}

#[test]
fn missing_secrets_are_all_reported_with_positions() {
    let output = common::infra()
        .env_remove("INFRA_STATS_PASSWORD")
        .env_remove("INFRA_DB_APP_PASSWORD")
        .args(["validate", "-f", "examples/scale-up/infra.yaml"])
        .current_dir(common::root())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "environment variable `INFRA_STATS_PASSWORD` for `stats.password` is not set"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "environment variable `INFRA_DB_APP_PASSWORD` for `app_user.password` is not set"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("--> examples/scale-up/infra.yaml:"),
        "{stderr}"
    );
    assert!(stderr.contains("is not valid: 2 errors"), "{stderr}");
}

#[test]
fn a_missing_topology_file_says_how_to_fix_it() {
    let dir = tempfile::tempdir().expect("dir");
    common::infra()
        .current_dir(dir.path())
        .arg("validate")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: cannot read the topology `infra.yaml`",
        ))
        .stderr(predicate::str::contains("hint: create `infra.yaml`"));
}

#[test]
fn usage_errors_never_exit_2() {
    for args in [
        &["--bogus"][..],
        &["validate", "--bogus"],
        &["render", "--out"],
        &["graph", "--format", "png"],
        &["nosuchcommand"],
    ] {
        let output = common::infra().args(args).output().expect("run");
        assert_eq!(
            output.status.code(),
            Some(64),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn help_lists_the_exit_codes() {
    let output = common::infra().arg("--help").output().expect("run");
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!("help", String::from_utf8_lossy(&output.stdout));
}

#[test]
fn render_hides_secrets_unless_asked() {
    let dir = common::example_copy();
    let file = dir.path().join("infra.yaml");
    let hidden = common::infra()
        .args(["render", "--host", "lb1", "--host", "app1", "-f"])
        .arg(&file)
        .output()
        .expect("run");
    assert!(hidden.status.success());
    let text = String::from_utf8_lossy(&hidden.stdout);
    for (_, secret) in common::example_secrets() {
        assert!(!text.contains(secret), "secret leaked:\n{text}");
    }
    assert!(
        text.contains("insecure-password (sensitive value)"),
        "{text}"
    );
    assert!(text.contains("DB_PASSWORD=\"(sensitive value)\""), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "private key leaked");
    assert!(text.contains("### file lb1:/etc/haproxy/haproxy.cfg (0600 root:root, template haproxy.cfg, sensitive)"), "{text}");

    let shown = common::infra()
        .args(["render", "--show-sensitive", "--host", "lb1", "-f"])
        .arg(&file)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains(&format!(
            "insecure-password {}",
            common::secret("INFRA_STATS_PASSWORD")
        )),
        "{text}"
    );
    assert!(
        text.contains("PRIVATE KEY"),
        "the key should show with --show-sensitive"
    );
}

#[test]
fn render_out_writes_every_file_with_its_mode() {
    let dir = common::example_copy();
    let out = tempfile::tempdir().expect("out");
    common::infra()
        .args(["render", "-f"])
        .arg(dir.path().join("infra.yaml"))
        .arg("--out")
        .arg(out.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("for 9 hosts"));
    let mode = |p: &str| {
        std::fs::metadata(out.path().join(p))
            .expect(p)
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("web1/etc/nginx/sites-enabled/scale-up"), 0o644);
    assert_eq!(mode("app1/etc/counter/environment"), 0o600);
    assert_eq!(mode("lb1/etc/haproxy/certs/scale-up.pem"), 0o600);
    assert_eq!(mode("db2/etc/infra/firewall.nft"), 0o600);
    let app =
        std::fs::read_to_string(out.path().join("app2/opt/counter/app.py")).expect("app uploaded");
    assert_eq!(
        app,
        std::fs::read_to_string(common::root().join("examples/scale-up/app/app.py"))
            .expect("source")
    );
    let pem = std::fs::read_to_string(out.path().join("lb1/etc/haproxy/certs/scale-up.pem"))
        .expect("pem");
    assert!(
        pem.contains("BEGIN CERTIFICATE")
            && pem.contains("(sensitive value)")
            && !pem.contains("PRIVATE KEY")
    );
}

#[test]
fn the_generated_certificate_is_kept_and_reused() {
    let dir = common::example_copy();
    let file = dir.path().join("infra.yaml");
    let render = || {
        let output = common::infra()
            .args(["render", "--host", "lb1", "-f"])
            .arg(&file)
            .output()
            .expect("run");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = render();
    let key = dir.path().join(".infra/tls/scale-up.key");
    assert_eq!(
        std::fs::metadata(&key)
            .expect("key kept")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(first, render(), "the certificate changed between runs");
}

#[test]
fn render_of_an_unknown_host_fails_with_the_host_list() {
    common::infra()
        .args(["render", "--host", "web9", "-f"])
        .arg(common::example())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no host `web9` in the topology"))
        .stderr(predicate::str::contains("hint: the hosts are: "));
}

#[test]
fn a_template_override_replaces_the_built_in_one() {
    let dir = common::example_copy();
    let templates = dir.path().join("my-templates");
    std::fs::create_dir(&templates).expect("dir");
    std::fs::write(templates.join("app.env"), "ONLY={{ app.port }}\n").expect("write");
    let file = dir.path().join("infra.yaml");
    common::edit(
        &file,
        "name: scale-up\n",
        "name: scale-up\ntemplates: my-templates\n",
    );
    common::infra()
        .args(["render", "--host", "app1", "-f"])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains("### file app1:/etc/counter/environment (0600 root:root, template app.env)\nONLY=8000\n"));
}

#[test]
fn a_broken_template_override_fails_validate_naming_template_and_line() {
    let dir = common::example_copy();
    let templates = dir.path().join("my-templates");
    std::fs::create_dir(&templates).expect("dir");
    std::fs::write(
        templates.join("nginx-site.conf"),
        "server {\n    listen {{ web.prot }};\n}\n",
    )
    .expect("write");
    let file = dir.path().join("infra.yaml");
    common::edit(
        &file,
        "name: scale-up\n",
        "name: scale-up\ntemplates: my-templates\n",
    );
    common::infra()
        .args(["validate", "-f"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "template `nginx-site.conf` failed",
        ))
        .stderr(predicate::str::contains("nginx-site.conf:2:"))
        .stderr(predicate::str::contains("prot"));
}

#[test]
fn graph_draws_the_example_without_needing_secrets() {
    let mut command = common::infra();
    for (name, _) in common::SECRETS {
        command.env_remove(name);
    }
    let mermaid = command
        .args(["graph", "-f"])
        .arg(common::example())
        .output()
        .expect("run");
    assert!(mermaid.status.success());
    insta::assert_snapshot!("graph_mermaid", String::from_utf8_lossy(&mermaid.stdout));
    let dot = common::infra()
        .args(["graph", "--format", "dot", "-f"])
        .arg(common::example())
        .output()
        .expect("run");
    assert!(dot.status.success());
    insta::assert_snapshot!("graph_dot", String::from_utf8_lossy(&dot.stdout));
}

#[test]
fn the_readme_shows_the_current_diagram() {
    let mermaid = common::infra()
        .args(["graph", "-f"])
        .arg(common::example())
        .output()
        .expect("run");
    let readme = std::fs::read_to_string(common::root().join("README.md")).expect("README");
    let diagram = String::from_utf8_lossy(&mermaid.stdout);
    assert!(
        readme.contains(&format!("```mermaid\n{diagram}```")),
        "README.md's diagram is stale: run `infra graph -f examples/scale-up/infra.yaml`"
    );
}

#[test]
fn the_committed_schema_is_current_and_describes_the_topology() {
    let output = common::infra().arg("schema").output().expect("run");
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("schema is JSON");
    let properties = schema["properties"]
        .as_object()
        .expect("top-level properties");
    for key in [
        "name",
        "hosts",
        "load_balancer",
        "web",
        "app",
        "database",
        "firewall",
        "templates",
        "defaults",
        "lab",
    ] {
        assert!(properties.contains_key(key), "schema lacks `{key}`");
    }
    assert_eq!(
        schema["additionalProperties"],
        serde_json::Value::Bool(false),
        "unknown keys must be refused"
    );
    let committed = std::fs::read_to_string(common::root().join("docs/infra.schema.json"))
        .expect("docs/infra.schema.json");
    assert_eq!(
        committed,
        String::from_utf8_lossy(&output.stdout),
        "docs/infra.schema.json is stale: run `infra schema > docs/infra.schema.json`"
    );
}

#[test]
fn the_topology_reference_documents_every_key() {
    let output = common::infra().arg("schema").output().expect("run");
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let reference =
        std::fs::read_to_string(common::root().join("docs/topology.md")).expect("docs/topology.md");
    let mut missing = Vec::new();
    let mut check = |props: &serde_json::Map<String, serde_json::Value>| {
        for key in props.keys() {
            if !reference.contains(&format!("`{key}`")) && !reference.contains(&format!(".{key}`"))
            {
                missing.push(key.clone());
            }
        }
    };
    check(schema["properties"].as_object().expect("props"));
    for definition in schema["$defs"].as_object().expect("defs").values() {
        if let Some(props) = definition["properties"].as_object() {
            check(props);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/topology.md does not document: {missing:?}"
    );
}

#[test]
fn a_rollout_must_leave_a_host_of_the_tier_serving() {
    for (rollout, message) in [
        (
            "{ max_unavailable: 2 }",
            "`max_unavailable: 2` would let all 2 app hosts be out of service at once",
        ),
        (
            "{ batch: \"100%\" }",
            "a batch of 2 would restart every app host at once",
        ),
        (
            "{ batch: 1, max_unavailable: 0 }",
            "`max_unavailable: 0` is smaller than the batch of 1",
        ),
    ] {
        let dir = common::example_copy();
        let file = dir.path().join("infra.yaml");
        common::edit(
            &file,
            "  health_path: /health\n",
            &format!("  health_path: /health\n  rollout: {rollout}\n"),
        );
        let output = common::infra()
            .arg("validate")
            .arg("-f")
            .arg(&file)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{rollout}: {err}");
        assert!(err.contains(message), "{rollout}: {err}");
    }
}

#[test]
fn the_man_page_in_docs_is_current() {
    let output = common::infra().arg("man").output().expect("run");
    assert_eq!(output.status.code(), Some(0));
    let committed =
        std::fs::read_to_string(common::root().join("docs/infra.1")).expect("docs/infra.1");
    assert!(
        String::from_utf8_lossy(&output.stdout) == committed,
        "docs/infra.1 is stale: run `infra man > docs/infra.1`"
    );
    for command in [
        "plan",
        "apply",
        "destroy",
        "show",
        "status",
        "force-unlock",
        "completions",
    ] {
        assert!(
            committed.contains(&format!(".SH \"INFRA {}\"", command.to_uppercase())),
            "{command}"
        );
    }
}

#[test]
fn completions_cover_every_command_in_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = common::infra()
            .args(["completions", shell])
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        for command in [
            "validate",
            "plan",
            "show",
            "apply",
            "destroy",
            "force-unlock",
            "state",
        ] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
        assert!(script.contains("lock-timeout"), "{shell} lacks the flags");
    }
    let output = common::infra()
        .args(["completions", "tcsh"])
        .output()
        .expect("run");
    assert_eq!(
        output.status.code(),
        Some(64),
        "an unknown shell is a usage error"
    );
}

#[test]
fn flags_a_pipeline_sets_can_come_from_the_environment() {
    let dir = common::example_copy();
    // INFRA_FILE names the topology; a bad INFRA_PARALLELISM is a usage error like the flag.
    let output = common::infra()
        .env("INFRA_FILE", dir.path().join("infra.yaml"))
        .arg("validate")
        .output()
        .expect("run");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = common::infra()
        .env("INFRA_PARALLELISM", "0")
        .args(["plan", "-f"])
        .arg(dir.path().join("infra.yaml"))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("parallelism"));
    let help = common::infra()
        .args(["apply", "--help"])
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&help.stdout);
    for variable in [
        "INFRA_FILE",
        "INFRA_LOCK_TIMEOUT",
        "INFRA_PARALLELISM",
        "INFRA_MAX_FAIL",
        "INFRA_NO_COLOR",
    ] {
        assert!(help.contains(variable), "{variable} not in apply --help");
    }
    assert!(
        !help.contains("INFRA_AUTO_APPROVE"),
        "approval stays explicit"
    );
}

/// Runs `infra ARGS` on `file` and returns (exit code, stdout parsed as JSON lines, stderr).
fn json_run(
    file: &std::path::Path,
    args: &[&str],
) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let output = common::infra()
        .args(args)
        .arg("-f")
        .arg(file)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let documents = if stdout.trim_start().starts_with('{') && !stdout.trim().contains("\n{") {
        vec![serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))]
    } else {
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    };
    (
        output.status.code(),
        documents,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A copy of the example with one mistake (`adress` at 21:11); the folder goes when dropped.
fn example_with_a_typo() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = common::example_copy();
    let file = dir.path().join("infra.yaml");
    common::edit(
        &file,
        "  web1: { address: 10.231.7.21 }",
        "  web1: { adress: 10.231.7.21 }",
    );
    (dir, file)
}

#[test]
fn json_output_never_goes_silent_on_an_invalid_topology() {
    let (_dir, file) = example_with_a_typo();
    for args in [
        &["validate", "--json"][..],
        &["plan", "--json"],
        &["status", "--json"],
    ] {
        let (code, documents, stderr) = json_run(&file, args);
        assert_eq!(code, Some(1), "{args:?}");
        assert_eq!(documents.len(), 1, "{args:?}: one document");
        let diagnostic = &documents[0]["diagnostics"][0];
        assert_eq!(diagnostic["severity"], "error", "{args:?}: {documents:?}");
        assert_eq!(
            diagnostic["summary"],
            "unknown key `adress` in `hosts.web1`"
        );
        assert_eq!(diagnostic["range"]["start"]["line"], 23, "{diagnostic}");
        assert_eq!(diagnostic["range"]["start"]["column"], 11, "{diagnostic}");
        assert!(
            diagnostic["detail"]
                .as_str()
                .unwrap_or("")
                .contains("did you mean `address`?")
        );
        assert!(
            stderr.contains("error: unknown key `adress`"),
            "errors go to stderr too"
        );
        if args[0] == "plan" {
            common::check_schema("plan.schema.json", &documents[0]);
        }
    }
    // apply and destroy stream events: the failure is a `diagnostic` event.
    let (code, events, _) = json_run(&file, &["apply", "--auto-approve", "--json"]);
    assert_eq!(code, Some(1));
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "diagnostic" && e["severity"] == "error"),
        "{events:?}"
    );
    for event in &events {
        common::check_schema("events.schema.json", event);
    }
    // Valid: one document saying so.
    let (code, documents, _) = json_run(&common::example(), &["validate", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(documents[0]["valid"], true);
}

#[test]
fn a_plan_with_an_unreachable_host_is_marked_errored_and_never_saved() {
    let dir = common::example_copy();
    let file = dir.path().join("infra.yaml");
    // Every host on loopback with SSH on a closed port: refused at once, no traffic leaves.
    let text = std::fs::read_to_string(&file).expect("read");
    let text = text
        .replace(
            "  ssh:\n    user: root\n",
            "  ssh:\n    user: root\n    port: 1\n",
        )
        .replace("10.231.7.", "127.0.0.");
    std::fs::write(&file, text).expect("write");
    let saved = dir.path().join("saved.plan");
    let (code, documents, stderr) = json_run(
        &file,
        &[
            "plan",
            "--json",
            "--connect-timeout",
            "3",
            "--out",
            saved.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!saved.exists(), "an errored plan is never saved");
    let document = &documents[0];
    common::check_schema("plan.schema.json", document);
    assert_eq!(
        document["diagnostics"][0]["severity"], "error",
        "{document}"
    );
    assert!(
        document["diagnostics"][0]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("not saved")
    );
    // Without --out, the plan itself is the document, marked errored, one diagnostic per host.
    let (code, documents, _) = json_run(&file, &["plan", "--json", "--connect-timeout", "3"]);
    assert_eq!(code, Some(1));
    let plan = &documents[0];
    common::check_schema("plan.schema.json", plan);
    assert_eq!(plan["errored"], true, "{plan}");
    let hosts: Vec<&str> = plan["diagnostics"]
        .as_array()
        .map(|d| d.iter().filter_map(|x| x["host"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(hosts.len(), 9, "{plan}");
}

/// The minimum Rust version in Cargo.toml is true: no dependency needs a newer one.
#[test]
fn the_stated_rust_version_covers_every_dependency() {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .current_dir(common::root())
        .output()
        .expect("cargo metadata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let version = |text: &str| -> [u64; 3] {
        let mut parts = text.split('.').map(|part| part.parse().unwrap_or(0));
        [0; 3].map(|_| parts.next().unwrap_or(0))
    };
    let ours = metadata["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == "infra"))
        .and_then(|p| p["rust_version"].as_str())
        .map(version)
        .expect("infra states a rust-version");
    let resolved: std::collections::BTreeSet<&str> = metadata["resolve"]["nodes"]
        .as_array()
        .map(|nodes| nodes.iter().filter_map(|n| n["id"].as_str()).collect())
        .unwrap_or_default();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let Some(needs) = package["rust_version"].as_str() else {
            continue;
        };
        if resolved.contains(package["id"].as_str().unwrap_or("")) {
            assert!(
                version(needs) <= ours,
                "{} needs Rust {needs}, more than Cargo.toml's rust-version {ours:?}",
                package["name"]
            );
        }
    }
}

/// The plan JSON of every kind of plan (the fake fleet's snapshots: drifted, destroy) matches
/// the published schema, and the schema is strict enough to refuse a plan that lost a key.
#[test]
fn plan_json_matches_its_published_schema() {
    let dir = common::root().join("crates/infra-exec/tests/snapshots");
    let mut checked = 0;
    for name in ["pipeline__drift_json.snap", "pipeline__destroy_json.snap"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("snapshot");
        let json = text.splitn(3, "---\n").nth(2).expect("a snapshot body");
        let plan: serde_json::Value = serde_json::from_str(json).expect("JSON");
        common::check_schema("plan.schema.json", &plan);
        checked += 1;
        let mut broken = plan.clone();
        if let Some(map) = broken.as_object_mut() {
            map.remove("summary");
        }
        let refused =
            std::panic::catch_unwind(|| common::check_schema("plan.schema.json", &broken));
        assert!(
            refused.is_err(),
            "a plan without its summary passed the schema"
        );
    }
    assert_eq!(checked, 2);
}

/// `--color always` colours even into a pipe (CI logs that show colour); `never`,
/// `INFRA_NO_COLOR` and `NO_COLOR` do not; errors look the same otherwise.
#[test]
fn colour_is_chosen_by_flag_or_environment() {
    let (_dir, file) = example_with_a_typo();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = common::infra();
        command.env_remove("NO_COLOR");
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command
            .args(args)
            .arg("validate")
            .arg("-f")
            .arg(&file)
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(
        run(&["--color", "always"], &[]).contains("\u{1b}["),
        "always colours"
    );
    assert!(
        run(&[], &[("INFRA_COLOR", "always")]).contains("\u{1b}["),
        "INFRA_COLOR"
    );
    for (args, env) in [
        (&["--color", "never"][..], &[][..]),
        (
            &[],
            &[("INFRA_COLOR", "always"), ("INFRA_NO_COLOR", "1")][..],
        ),
        (&["--color", "auto"], &[][..]),
        (&["--color", "auto"], &[("TERM", "dumb")][..]),
    ] {
        let err = run(args, env);
        assert!(!err.contains('\u{1b}'), "{args:?} {env:?}: {err:?}");
        assert!(err.contains("error: unknown key `adress`"));
    }
}
