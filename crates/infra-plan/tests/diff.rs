//! The planning rules, with facts made up in the test (no hosts): fresh hosts, converged
//! hosts, drift, owed reloads, and secrets kept out of diffs.

use std::collections::BTreeMap;
use std::path::Path;

use infra_plan::facts::{
    DatabaseFacts, FileFact, FirewallFact, HostFacts, Ownership, ReplicationFact, ServiceFact,
};
use infra_plan::plan::{self, Action, ResourceKind, mysql_native_password};
use infra_plan::{DesiredState, EdgeCertificate, HostState, Templates, Trigger, desired_state};
use infra_topology::{Secret, SecretSource};

fn env(name: &str) -> Option<String> {
    Some(format!("{}-pw-1", name.to_lowercase().replace('_', "")))
}

fn desired() -> DesiredState {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scale-up/infra.yaml");
    let loaded = infra_topology::load(&file, &env).expect("the example is valid");
    let templates = Templates::load(None).expect("templates");
    let certificate = EdgeCertificate {
        chain_pem: "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n".to_owned(),
        key_pem: Secret::new(
            SecretSource::Env("K".to_owned()),
            "-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n".to_owned(),
        ),
    };
    desired_state(&loaded.topology, &templates, Some(&certificate)).expect("renders")
}

/// The facts of a host that already is exactly as desired.
fn converged(state: &HostState) -> HostFacts {
    let mut facts = HostFacts {
        os: Some("debian 12".to_owned()),
        ..HostFacts::default()
    };
    for package in &state.packages {
        facts
            .packages
            .insert(package.clone(), Some("1.0".to_owned()));
    }
    for directory in &state.directories {
        facts.directories.insert(
            directory.path.clone(),
            Some(Ownership {
                owner: directory.owner.clone(),
                group: directory.group.clone(),
                mode: directory.mode.0,
            }),
        );
    }
    for file in &state.files {
        facts.files.insert(
            file.path.clone(),
            FileFact::File {
                ownership: Ownership {
                    owner: file.owner.clone(),
                    group: file.group.clone(),
                    mode: file.mode.0,
                },
                sha256: file.sha256.clone(),
                content: None,
            },
        );
    }
    for path in &state.absent_files {
        facts.files.insert(path.clone(), FileFact::Absent);
    }
    for service in &state.services {
        facts.services.insert(
            service.unit.clone(),
            ServiceFact {
                enabled: "enabled".to_owned(),
                active: "active".to_owned(),
            },
        );
    }
    let rules = state
        .files
        .iter()
        .find(|f| f.path == infra_plan::paths::FIREWALL_NFT)
        .map(|f| f.sha256.clone());
    facts.firewall = FirewallFact {
        nft_installed: true,
        loaded_sha256: Some("table".to_owned()),
        recorded_sha256: Some("table".to_owned()),
        recorded_file_sha256: rules,
    };
    if let Some(objects) = &state.database {
        let mut db = DatabaseFacts {
            reachable: true,
            databases: vec![objects.database.clone()],
            ..DatabaseFacts::default()
        };
        for account in &objects.users {
            for host in &account.hosts {
                let name = format!("{}@{host}", account.name);
                db.users.insert(
                    name.clone(),
                    mysql_native_password(account.password.expose()),
                );
                if account.on == "*.*" {
                    db.replication_grants.push(name);
                } else {
                    db.database_grants.push(name);
                }
            }
        }
        if let Some(source) = &objects.replication_source {
            db.replication = Some(ReplicationFact {
                source_host: source.host.clone(),
                source_port: source.port.to_string(),
                user: source.user.clone(),
                io_running: "Yes".to_owned(),
                sql_running: "Yes".to_owned(),
                using_gtid: "Slave_Pos".to_owned(),
            });
        }
        facts.database = Some(db);
    }
    facts
}

fn host<'a>(desired: &'a DesiredState, name: &str) -> &'a HostState {
    desired.host(name).expect("host")
}

#[test]
fn fresh_hosts_get_everything_created() {
    let desired = desired();
    let facts: Vec<(String, HostFacts)> = desired
        .hosts
        .iter()
        .map(|h| (h.name.to_string(), HostFacts::default()))
        .collect();
    let plan = plan::diff(&desired, &facts, &BTreeMap::new(), Vec::new());
    let summary = plan.summary();
    assert!(
        summary.add > 90 && summary.change == 0 && summary.destroy == 0,
        "{summary:?}"
    );
    for change in plan.hosts.iter().flat_map(|h| &h.changes) {
        let expected = if change.kind == ResourceKind::AbsentFile {
            Action::NoOp
        } else {
            Action::Create
        };
        assert_eq!(change.action(), expected, "{}", change.address);
    }
}

#[test]
fn converged_hosts_have_nothing_to_do() {
    let desired = desired();
    let facts: Vec<(String, HostFacts)> = desired
        .hosts
        .iter()
        .map(|h| (h.name.to_string(), converged(h)))
        .collect();
    let plan = plan::diff(&desired, &facts, &BTreeMap::new(), Vec::new());
    let changing: Vec<&str> = plan
        .hosts
        .iter()
        .flat_map(|h| &h.changes)
        .filter(|c| c.action() != Action::NoOp)
        .map(|c| c.address.as_str())
        .collect();
    assert!(changing.is_empty(), "{changing:?}");
    assert!(!plan.has_changes());
}

#[test]
fn a_hand_edit_shows_its_diff_and_the_reload_once() {
    let desired = desired();
    let web1 = host(&desired, "web1");
    let mut facts = converged(web1);
    let site = web1
        .files
        .iter()
        .find(|f| f.path.starts_with("/etc/nginx/sites-enabled/"))
        .expect("site");
    let mut edited = site.content.clone();
    edited.extend_from_slice(b"# edited by hand\n");
    facts.files.insert(
        site.path.clone(),
        FileFact::File {
            ownership: Ownership {
                owner: "root".to_owned(),
                group: "root".to_owned(),
                mode: 0o644,
            },
            sha256: "different".to_owned(),
            content: Some(edited),
        },
    );
    let plan = plan::diff_host(web1, &facts, &[]);
    let changes: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action() != Action::NoOp)
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].address, format!("web1.file[\"{}\"]", site.path));
    let diff = changes[0].diff.as_deref().expect("a diff");
    assert!(diff.contains("-# edited by hand"), "{diff}");
    assert_eq!(plan.triggered.len(), 1);
    assert_eq!(plan.triggered[0].unit, "nginx.service");
    assert_eq!(plan.triggered[0].trigger, Trigger::Reload);
}

#[test]
fn an_old_secret_never_shows_in_a_sensitive_files_diff() {
    let desired = desired();
    let lb1 = host(&desired, "lb1");
    let mut facts = converged(lb1);
    let config = lb1
        .files
        .iter()
        .find(|f| f.path == "/etc/haproxy/haproxy.cfg")
        .expect("haproxy.cfg");
    assert!(config.sensitive);
    let current = String::from_utf8(config.content.clone()).expect("text");
    let password = env("INFRA_STATS_PASSWORD").expect("password");
    let old = current.replace(&password, "0ld-Passw0rd") + "# and an edit\n";
    facts.files.insert(
        config.path.clone(),
        FileFact::File {
            ownership: Ownership {
                owner: "root".to_owned(),
                group: "root".to_owned(),
                mode: 0o600,
            },
            sha256: "different".to_owned(),
            content: Some(old.into_bytes()),
        },
    );
    let plan = plan::diff_host(lb1, &facts, &[]);
    let change = plan
        .changes
        .iter()
        .find(|c| c.name == config.path)
        .expect("change");
    assert_eq!(change.action(), Action::Update);
    let diff = change.diff.as_deref().expect("a diff");
    assert!(
        !diff.contains("0ld-Passw0rd") && !diff.contains(&password),
        "a secret in the diff:\n{diff}"
    );
    assert!(diff.contains("-# and an edit"), "{diff}");
    assert_eq!(change.after_sensitive["content"], true);
}

#[test]
fn drift_in_services_packages_firewall_and_database_is_seen() {
    let desired = desired();
    let db2 = host(&desired, "db2");
    let mut facts = converged(db2);
    facts.services.insert(
        "mariadb.service".to_owned(),
        ServiceFact {
            enabled: "enabled".to_owned(),
            active: "failed".to_owned(),
        },
    );
    facts.packages.insert("nftables".to_owned(), None);
    facts.firewall.loaded_sha256 = Some("flushed-by-someone".to_owned());
    if let Some(db) = &mut facts.database
        && let Some(replication) = &mut db.replication
    {
        replication.io_running = "No".to_owned();
    }
    let plan = plan::diff_host(db2, &facts, &[]);
    let changed: Vec<(ResourceKind, Action)> = plan
        .changes
        .iter()
        .filter(|c| c.action() != Action::NoOp)
        .map(|c| (c.kind, c.action()))
        .collect();
    assert!(
        changed.contains(&(ResourceKind::Service, Action::Update)),
        "{changed:?}"
    );
    assert!(
        changed.contains(&(ResourceKind::Package, Action::Create)),
        "{changed:?}"
    );
    assert!(
        changed.contains(&(ResourceKind::Firewall, Action::Update)),
        "{changed:?}"
    );
    assert!(
        changed.contains(&(ResourceKind::Replication, Action::Update)),
        "{changed:?}"
    );
}

#[test]
fn a_changed_password_is_an_update_that_does_not_show_it() {
    let desired = desired();
    let db1 = host(&desired, "db1");
    let mut facts = converged(db1);
    if let Some(db) = &mut facts.database {
        db.users.insert(
            "counter@10.231.7.31".to_owned(),
            mysql_native_password("old"),
        );
    }
    let plan = plan::diff_host(db1, &facts, &[]);
    let change = plan
        .changes
        .iter()
        .find(|c| c.kind == ResourceKind::DatabaseUser && c.action() != Action::NoOp)
        .expect("user change");
    assert_eq!(change.name, "counter@10.231.7.31");
    assert_eq!(change.action(), Action::Update);
    assert_eq!(change.after["password"], infra_plan::PLACEHOLDER);
}

#[test]
fn a_reload_owed_by_a_stopped_run_is_planned() {
    let desired = desired();
    let lb2 = host(&desired, "lb2");
    let plan = plan::diff_host(
        lb2,
        &converged(lb2),
        &[("haproxy.service".to_owned(), Trigger::Reload)],
    );
    assert_eq!(plan.triggered.len(), 1);
    assert_eq!(plan.triggered[0].unit, "haproxy.service");
}
