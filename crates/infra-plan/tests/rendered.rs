//! Snapshots of every file rendered for the example topology, host by host, in the three
//! TLS modes: the exact bytes `apply` would write (with test secrets).

use std::path::Path;

use infra_plan::{Display, EdgeCertificate, Sensitivity, Templates, desired_state};
use infra_topology::{Secret, SecretSource};

fn env(name: &str) -> Option<String> {
    Some(
        format!("test-{}", name.to_lowercase().replace('_', "-"))
            .chars()
            .take(8)
            .collect(),
    )
}

fn certificate() -> EdgeCertificate {
    EdgeCertificate {
        chain_pem: "-----BEGIN CERTIFICATE-----\nTEST CHAIN\n-----END CERTIFICATE-----\n"
            .to_owned(),
        key_pem: Secret::new(
            SecretSource::Env("TEST".to_owned()),
            "-----BEGIN PRIVATE KEY-----\nTEST KEY\n-----END PRIVATE KEY-----\n".to_owned(),
        ),
        renewal: None,
    }
}

fn example_with_mode(mode: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scale-up");
    let dir = tempfile::tempdir().expect("temporary folder");
    for sub in ["site", "app"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("create");
        for entry in std::fs::read_dir(root.join(sub)).expect("read") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name()))
                .expect("copy");
        }
    }
    let text = std::fs::read_to_string(root.join("infra.yaml")).expect("read example");
    let file = dir.path().join("infra.yaml");
    std::fs::write(
        &file,
        text.replace("    mode: terminate", &format!("    mode: {mode}")),
    )
    .expect("write");
    (dir, file)
}

fn snapshot_mode(mode: &str) {
    let (_dir, file) = example_with_mode(mode);
    let loaded = infra_topology::load(&file, &env).expect("the example is valid");
    let templates = Templates::load(None).expect("built-in templates load");
    let desired =
        desired_state(&loaded.topology, &templates, Some(&certificate())).expect("renders");
    for host in &desired.hosts {
        let mut text = format!(
            "packages: {}\nservices: {}\nabsent: {}\n",
            host.packages
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            host.services
                .iter()
                .map(|s| format!("{} ({:?})", s.unit, s.on_change))
                .collect::<Vec<_>>()
                .join(" "),
            host.absent_files
                .iter()
                .map(|a| a.path.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        for directory in &host.directories {
            text.push_str(&format!(
                "dir {} {} {}:{}\n",
                directory.path, directory.mode, directory.owner, directory.group
            ));
        }
        for file in &host.files {
            text.push_str(&format!(
                "\n=== {} {} {}:{} sensitive={} check={:?} notify={:?} origin={:?}\n",
                file.path,
                file.mode,
                file.owner,
                file.group,
                file.sensitivity == Sensitivity::Sensitive,
                file.check,
                file.notify.as_ref().map(|n| (n.unit.as_str(), n.trigger)),
                file.origin
            ));
            text.push_str(&String::from_utf8_lossy(&file.content));
        }
        insta::assert_snapshot!(format!("{mode}_{}", host.name), text);
    }
}

#[test]
fn example_renders_with_tls_terminate() {
    snapshot_mode("terminate");
}

#[test]
fn example_renders_with_tls_passthrough() {
    snapshot_mode("passthrough");
}

#[test]
fn example_renders_with_tls_off() {
    snapshot_mode("off");
}

#[test]
fn secrets_are_marked_and_redacted() {
    let (_dir, file) = example_with_mode("terminate");
    let loaded = infra_topology::load(&file, &env).expect("valid");
    let templates = Templates::load(None).expect("templates");
    let desired =
        desired_state(&loaded.topology, &templates, Some(&certificate())).expect("renders");
    let secret_values: Vec<String> = [
        "INFRA_STATS_PASSWORD",
        "INFRA_DB_APP_PASSWORD",
        "INFRA_VRRP_PASSWORD",
    ]
    .iter()
    .filter_map(|n| env(n))
    .collect();
    let mut sensitive_files = 0;
    for host in &desired.hosts {
        for file in &host.files {
            let content = String::from_utf8_lossy(&file.content);
            let holds_secret = secret_values.iter().any(|s| content.contains(s.as_str()))
                || content.contains("TEST KEY");
            let sensitive = file.sensitivity == Sensitivity::Sensitive;
            assert_eq!(
                sensitive, holds_secret,
                "{}:{} sensitivity",
                host.name, file.path
            );
            if sensitive {
                sensitive_files += 1;
                let Display::Text(shown) = &file.display else {
                    panic!("{} has no text form", file.path);
                };
                assert!(
                    shown.contains(infra_plan::PLACEHOLDER),
                    "{} shows no placeholder",
                    file.path
                );
                assert!(
                    !secret_values.iter().any(|s| shown.contains(s.as_str())),
                    "{} leaks",
                    file.path
                );
                assert_eq!(
                    file.mode.0 & 0o007,
                    0,
                    "{} is readable by others",
                    file.path
                );
                // Its group may read it only when that is the daemon's own group.
                if file.mode.0 & 0o070 != 0 {
                    assert_ne!(
                        file.group.as_str(),
                        "root",
                        "{} is readable by root's group",
                        file.path
                    );
                    assert_eq!(
                        file.mode.0 & 0o020,
                        0,
                        "{} is writable by its group",
                        file.path
                    );
                }
            }
        }
    }
    // haproxy.cfg + pem on 2 LBs, keepalived.conf on 2 LBs, app env on 2 app hosts, the
    // MariaDB exporter's environment on 2 database hosts.
    assert_eq!(sensitive_files, 10);
}

#[test]
fn an_override_with_an_undefined_variable_names_template_and_line() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("haproxy.cfg"),
        "global\n    maxconn {{ lb.max_connections }}\n",
    )
    .expect("write");
    let (_example, file) = example_with_mode("off");
    let loaded = infra_topology::load(&file, &env).expect("valid");
    let templates = Templates::load(Some(dir.path())).expect("override loads");
    let error = desired_state(&loaded.topology, &templates, None).expect_err("undefined variable");
    let report = format!(
        "{error}: {}",
        std::error::Error::source(&error)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(report.contains("template `haproxy.cfg` failed"), "{report}");
    assert!(report.contains("haproxy.cfg:2:"), "{report}");
    assert!(report.contains("max_connections"), "{report}");
}

#[test]
fn an_override_that_matches_no_template_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("haproxy.conf"), "x").expect("write");
    let error = Templates::load(Some(dir.path()))
        .err()
        .expect("unknown name refused");
    assert!(
        error
            .to_string()
            .contains("does not override any built-in template"),
        "{error}"
    );
}
