//! The one pipeline on fake hosts: the plan is the program the executor runs. Tier order for
//! apply and destroy, load balancers one at a time, `--max-fail`, an owed reload carried to the
//! next run, a checker's rejection undone, Ctrl-C between tasks, stale plans refused, a saved
//! destroy plan applied, and what the plan says in text and JSON.

mod harness;

use std::sync::Arc;

use harness::{Lab, Recorder, RunSettings};
use infra_exec::executor::{Cancel, Changed, Event, HostOutcome, MaxFail, TaskError};
use infra_exec::locks::AcquireError;
use infra_plan::plan::{DataPolicy, Plan, PlanMode};
use infra_plan::view;

/// The hosts in the order their first step after the packages wave ran.
fn task_order(log: &[String]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for line in log {
        let host = line.split(':').next().unwrap_or_default().to_owned();
        if line.contains("install ") {
            continue;
        }
        if order.last() != Some(&host) && !order.contains(&host) {
            order.push(host);
        }
    }
    order
}

#[tokio::test]
async fn apply_goes_packages_then_database_app_web_and_one_load_balancer_at_a_time() {
    let lab = Lab::example();
    let report = lab.converge(PlanMode::Apply).await;
    assert!(!report.failed(), "{:?}", report.errors());
    let log = lab.fleet.log();
    // Every package install (the packages wave) comes before any host's other work.
    let last_install = log
        .iter()
        .rposition(|l| l.contains(": install "))
        .expect("installs");
    let first_file = log
        .iter()
        .position(|l| l.contains(": write "))
        .expect("writes");
    assert!(last_install < first_file, "{log:#?}");
    assert_eq!(
        task_order(&log[first_file.saturating_sub(0)..]),
        [
            "db1", "db2", "app1", "app2", "web1", "web2", "lb1", "lb2", "mon1"
        ]
        .map(str::to_owned)
        .to_vec(),
        "{log:#?}"
    );
    let overlaps = lab.fleet.overlaps();
    let lbs = [lab.host("lb1"), lab.host("lb2")];
    assert!(
        !overlaps
            .iter()
            .any(|set| lbs.iter().all(|lb| set.contains(lb))),
        "the load balancers ran at the same time: {overlaps:?}"
    );
    // The app restarts: it rolls, one host at a time. Nginx only reloads: in parallel.
    let apps = [lab.host("app1"), lab.host("app2")];
    assert!(
        !overlaps
            .iter()
            .any(|set| apps.iter().all(|a| set.contains(a))),
        "the app hosts restarted at the same time: {overlaps:?}"
    );
    let webs = [lab.host("web1"), lab.host("web2")];
    assert!(
        overlaps
            .iter()
            .any(|set| webs.iter().all(|w| set.contains(w))),
        "the web hosts never ran in parallel: {overlaps:?}"
    );
    // Converged: the next plan has nothing to do.
    let (_, _, plan) = lab.plan(PlanMode::Apply).await;
    assert!(
        !plan.has_changes(),
        "{}",
        view::text::text(&plan, view::text::Colour::Off)
    );
}

#[tokio::test]
async fn destroy_goes_the_other_way_and_leaves_the_hosts_as_they_were() {
    let lab = Lab::example();
    let before = lab.on("web1", |h| h.clone());
    lab.converge(PlanMode::Apply).await;
    lab.fleet.clear_log();
    let report = lab.converge(PlanMode::Destroy(DataPolicy::Delete)).await;
    assert!(!report.failed(), "{:?}", report.errors());
    let log = lab.fleet.log();
    assert_eq!(
        task_order(&log),
        [
            "mon1", "lb1", "lb2", "web1", "web2", "app1", "app2", "db2", "db1"
        ]
        .map(str::to_owned)
        .to_vec(),
        "{log:#?}"
    );
    let after = lab.on("web1", |h| h.clone());
    assert_eq!(after.packages, before.packages);
    assert_eq!(after.files, before.files, "files differ after destroy");
    assert!(
        after.journal.is_empty(),
        "the record is forgotten: {}",
        after.journal
    );
    let (_, _, again) = lab.plan(PlanMode::Destroy(DataPolicy::Delete)).await;
    assert!(!again.has_changes(), "a second destroy has nothing to do");
}

#[tokio::test]
async fn max_fail_stops_the_run_after_the_wave_that_failed_too_often() {
    for (max_fail, lbs_run) in [(MaxFail::Count(0), false), (MaxFail::Count(1), true)] {
        let lab = Lab::example();
        lab.on("web1", |h| {
            h.faults.fail_step = Some("reload nginx".to_owned())
        });
        let (loaded, gathered, plan) = lab.plan(PlanMode::Apply).await;
        let settings = RunSettings {
            max_fail,
            ..RunSettings::default()
        };
        let report = lab
            .run(&loaded, &gathered, &plan, settings)
            .await
            .expect("locked");
        let outcome = |host: &str| {
            report
                .hosts
                .iter()
                .find(|(h, _)| h.as_str() == host)
                .map(|(_, o)| o.clone())
                .expect("every host has an outcome")
        };
        assert!(matches!(
            outcome("web1"),
            HostOutcome::Failed(TaskError::Step { .. }, Changed::Yes)
        ));
        assert!(
            matches!(outcome("web2"), HostOutcome::Done(_)),
            "the rest of the wave finishes"
        );
        match (lbs_run, outcome("lb1")) {
            (true, HostOutcome::Done(_)) | (false, HostOutcome::Skipped(_)) => {}
            (_, other) => panic!("with {max_fail:?}, lb1 ended {other:?}"),
        }
        assert!(report.changed_anything());
    }
}

#[tokio::test]
async fn a_reload_owed_by_a_run_that_died_is_done_by_the_next() {
    let lab = Lab::example();
    lab.converge(PlanMode::Apply).await;
    lab.edit("algorithm: roundrobin", "algorithm: leastconn");
    // lb1 dies right after its new haproxy.cfg is in place, before the reload.
    let (loaded, gathered, plan) = lab.plan(PlanMode::Apply).await;
    let steps: Vec<String> = plan
        .steps_of(&lab.host("lb1"))
        .map(|s| s.kind.describe())
        .collect();
    let commit = steps
        .iter()
        .position(|s| s == "write /etc/haproxy/haproxy.cfg")
        .expect("haproxy.cfg is written");
    lab.on("lb1", |h| h.faults.die_after_steps = Some(commit + 1));
    let report = lab
        .run(&loaded, &gathered, &plan, RunSettings::default())
        .await
        .expect("locked");
    assert!(report.failed());
    assert!(lab.on("lb1", |h| {
        h.journal.contains("+owed\thaproxy.service\treload")
    }));
    // The host comes back: its config is already the new one, and the reload is still owed.
    lab.on("lb1", |h| {
        h.faults = infra_exec::fake::Faults::default();
        // The dead run's lock stays behind; the next run finds it and it is forced away.
        h.lock = None;
    });
    let (_, _, next) = lab.plan(PlanMode::Apply).await;
    let reload = next
        .triggered()
        .into_iter()
        .find(|t| t.host.as_str() == "lb1")
        .expect("lb1 still owes its reload");
    assert_eq!(reload.unit.as_str(), "haproxy.service");
    assert_eq!(reload.because, "owed by an earlier run that stopped");
    assert!(
        !next
            .host(&lab.host("lb1"))
            .expect("lb1")
            .changes
            .iter()
            .any(|c| c.name == "/etc/haproxy/haproxy.cfg"
                && c.action() != infra_plan::plan::Action::NoOp),
        "the file itself is already right"
    );
    let settled = lab.converge(PlanMode::Apply).await;
    assert!(!settled.failed(), "{:?}", settled.errors());
    let log = lab.fleet.log();
    assert!(
        log.iter().any(|l| l == "lb1: reload haproxy.service"),
        "{log:#?}"
    );
    let (_, _, last) = lab.plan(PlanMode::Apply).await;
    assert!(!last.has_changes(), "the owed reload is settled");
}

#[tokio::test]
async fn a_rejected_config_is_undone_and_no_other_load_balancer_is_touched() {
    let mut lab = Lab::example();
    lab.converge(PlanMode::Apply).await;
    let before = [
        lab.on("lb1", |h| h.files.clone()),
        lab.on("lb2", |h| h.files.clone()),
    ];
    let templates = lab.dir.path().join("bad-templates");
    std::fs::create_dir(&templates).expect("dir");
    let template =
        std::fs::read_to_string(harness::example_dir().join("../../templates/haproxy.cfg"))
            .expect("template");
    std::fs::write(
        templates.join("haproxy.cfg"),
        template + "\nbackend broken\n    server x 127.0.0.1:1 no_such_option\n",
    )
    .expect("write");
    lab.edit(
        "name: scale-up\n",
        "name: scale-up\ntemplates: bad-templates\n",
    );
    lab.certificate =
        "-----BEGIN CERTIFICATE-----\nRENEWED\n-----END CERTIFICATE-----\n".to_owned();
    lab.fleet.clear_log();
    let report = lab.converge(PlanMode::Apply).await;
    let errors = report.errors();
    assert!(
        matches!(errors.as_slice(), [TaskError::Rejected { host, path, .. }] if host.as_str() == "lb1" && path.as_str() == "/etc/haproxy/haproxy.cfg"),
        "{errors:?}"
    );
    assert_eq!(
        [
            lab.on("lb1", |h| h.files.clone()),
            lab.on("lb2", |h| h.files.clone())
        ],
        before,
        "lb1's new certificate was put back and lb2 was not touched"
    );
    assert!(
        !report.changed_anything(),
        "everything done was put back, so the run is an error, not a partial apply"
    );
    let log = lab.fleet.log();
    assert!(!log.iter().any(|l| l.starts_with("lb2:")), "{log:#?}");
    assert!(
        !log.iter().any(|l| l.contains("reload haproxy")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l == "lb1: put back the previous /etc/haproxy/certs/scale-up.pem"),
        "{log:#?}"
    );
}

#[tokio::test]
async fn a_broken_release_stops_the_rollout_at_its_first_host_which_is_put_back() {
    let lab = Lab::example();
    lab.converge(PlanMode::Apply).await;
    let env = infra_topology::RemotePath::new("/etc/counter/environment").expect("path");
    let before = [
        lab.on("app1", |h| h.files[&env].content.clone()),
        lab.on("app2", |h| h.files[&env].content.clone()),
    ];
    // The new release cannot pass its health check on any host.
    for host in ["app1", "app2"] {
        lab.on(host, |h| {
            h.faults.unhealthy_when = Some("release-that-crashes".to_owned());
        });
    }
    lab.edit(
        "COUNTER_GREETING: hello from the scale-up example",
        "COUNTER_GREETING: release-that-crashes",
    );
    lab.fleet.clear_log();
    let report = lab.converge(PlanMode::Apply).await;
    let errors = report.errors();
    assert!(
        matches!(errors.as_slice(), [TaskError::Step { host, message, .. }]
            if host.as_str() == "app1" && message.contains("did not become healthy")),
        "{errors:?}"
    );
    assert_eq!(
        [
            lab.on("app1", |h| h.files[&env].content.clone()),
            lab.on("app2", |h| h.files[&env].content.clone()),
        ],
        before,
        "app1 got its previous release back and app2 never got the new one"
    );
    let log = lab.fleet.log();
    let app1: Vec<&String> = log.iter().filter(|l| l.starts_with("app1:")).collect();
    let restarts = app1
        .iter()
        .filter(|l| l.contains("restart counter.service"))
        .count();
    assert_eq!(
        restarts, 2,
        "restarted on the new files, then on the old: {app1:#?}"
    );
    assert!(
        app1.last()
            .is_some_and(|l| l.contains("wait until counter.service is healthy")),
        "the rolled-back host was seen healthy again: {app1:#?}"
    );
    assert!(lab.on("app1", |h| {
        h.units[&infra_plan::paths::unit("counter.service")].active
    }));
    assert!(!log.iter().any(|l| l.starts_with("app2:")), "{log:#?}");
    assert!(!log.iter().any(|l| l.starts_with("web1:")), "{log:#?}");
}

#[tokio::test]
async fn a_rollout_never_takes_more_hosts_out_than_it_may() {
    let lab = Lab::example();
    lab.converge(PlanMode::Apply).await;
    lab.on("app2", |h| h.faults.unreachable = true);
    lab.edit(
        "COUNTER_GREETING: hello from the scale-up example",
        "COUNTER_GREETING: a new greeting",
    );
    lab.fleet.clear_log();
    let (loaded, gathered, plan) = lab.plan(PlanMode::Apply).await;
    let shown = text(&plan);
    assert!(
        shown.contains(
            "Rollout of app (migration): one host at a time (at most 1 out of service): app1"
        ),
        "{shown}"
    );
    insta::assert_snapshot!("errored_markdown", view::markdown::markdown(&plan));
    let report = lab
        .run(&loaded, &gathered, &plan, RunSettings::default())
        .await
        .expect("locked");
    assert!(report.failed());
    let log = lab.fleet.log();
    assert!(
        !log.iter().any(|l| l.starts_with("app1:")),
        "app1 restarted while app2 was down: {log:#?}"
    );
    assert!(
        report.hosts.iter().any(|(host, outcome)| host.as_str() == "app1"
            && matches!(outcome, HostOutcome::Skipped(reason) if reason.contains("hosts out of service"))),
        "{:?}",
        report.hosts
    );
}

#[tokio::test]
async fn a_new_database_password_works_beside_the_old_one_until_every_app_host_uses_it() {
    let mut lab = Lab::example();
    lab.converge(PlanMode::Apply).await;
    lab.secrets.insert(
        "INFRA_DB_APP_PASSWORD".to_owned(),
        "a-rotated-app-password-4".to_owned(),
    );
    lab.fleet.clear_log();
    let report = lab.converge(PlanMode::Apply).await;
    assert!(!report.failed(), "{:?}", report.errors());
    let log = lab.fleet.log();
    let at = |needle: &str| {
        log.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {log:#?}"))
    };
    let last_at = |needle: &str| {
        log.iter()
            .rposition(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {log:#?}"))
    };
    let added = at("db1: add the new password of counter@");
    let first_restart = at("app1: restart counter.service");
    let last_healthy = last_at("app2: wait until counter.service is healthy");
    let retired = at("db1: set the password of counter@");
    assert!(
        added < first_restart && last_healthy < retired,
        "add, roll the app hosts, then retire: {log:#?}"
    );
    assert!(lab.on("db1", |h| h.retained_passwords.is_empty()));
    let (_, _, plan) = lab.plan(PlanMode::Apply).await;
    assert!(!plan.has_changes(), "{}", text(&plan));
}

#[tokio::test]
async fn a_rotation_stopped_by_a_broken_app_host_keeps_the_old_password_working() {
    let mut lab = Lab::example();
    lab.converge(PlanMode::Apply).await;
    lab.secrets.insert(
        "INFRA_DB_APP_PASSWORD".to_owned(),
        "a-rotated-app-password-5".to_owned(),
    );
    lab.on("app1", |h| {
        h.faults.unhealthy_when = Some("a-rotated-app-password-5".to_owned());
    });
    let report = lab.converge(PlanMode::Apply).await;
    assert!(report.failed());
    assert!(
        lab.on("db1", |h| !h.retained_passwords.is_empty()),
        "the old password is still accepted: app2 (and app1, rolled back) use it"
    );
    // Once the app hosts are fine, the next apply finishes the rotation.
    lab.on("app1", |h| h.faults.unhealthy_when = None);
    let report = lab.converge(PlanMode::Apply).await;
    assert!(!report.failed(), "{:?}", report.errors());
    assert!(lab.on("db1", |h| h.retained_passwords.is_empty()));
}

#[tokio::test]
async fn ctrl_c_between_tasks_starts_nothing_more() {
    let lab = Lab::example();
    let cancel = Cancel::default();
    let hook_cancel = cancel.clone();
    let recorder = Recorder {
        on_event: Some(Box::new(move |event| {
            if let Event::HostDone { host, .. } = event
                && host.as_str() == "db1"
            {
                hook_cancel.request();
            }
        })),
        ..Recorder::default()
    };
    let (loaded, gathered, plan) = lab.plan(PlanMode::Apply).await;
    let settings = RunSettings {
        cancel,
        reporter: Arc::new(recorder),
        ..RunSettings::default()
    };
    let report = lab
        .run(&loaded, &gathered, &plan, settings)
        .await
        .expect("locked");
    assert!(report.interrupted);
    let log = lab.fleet.log();
    for host in ["db2", "app1", "web1", "lb1"] {
        assert!(
            !log.iter().any(|l| l.starts_with(&format!("{host}:"))
                && !l.contains(": install ")
                && !l.contains(": open the record")),
            "{host} was started after Ctrl-C: {log:#?}"
        );
    }
    assert!(matches!(
        report
            .hosts
            .iter()
            .find(|(h, _)| h.as_str() == "db1")
            .map(|(_, o)| o),
        Some(HostOutcome::Done(_))
    ));
    // The next run picks up where this one stopped.
    lab.converge(PlanMode::Apply).await;
    let (_, _, plan) = lab.plan(PlanMode::Apply).await;
    assert!(!plan.has_changes());
}

#[tokio::test]
async fn a_plan_made_before_another_run_is_refused() {
    let lab = Lab::example();
    lab.converge(PlanMode::Apply).await;
    lab.edit("algorithm: roundrobin", "algorithm: leastconn");
    let (loaded, gathered, old_plan) = lab.plan(PlanMode::Apply).await;
    // The saved plan goes through a file, as `plan --out` and `apply FILE` do.
    let saved: Plan = serde_json::from_str(&serde_json::to_string(&old_plan).expect("saves"))
        .expect("reads back");
    assert_eq!(saved, old_plan);
    lab.converge(PlanMode::Apply).await;
    match lab
        .run(&loaded, &gathered, &saved, RunSettings::default())
        .await
    {
        Err(AcquireError::Moved { host }) => assert_eq!(host.as_str(), "lb1"),
        other => panic!(
            "the stale plan was not refused: {:?}",
            other.map(|r| r.hosts)
        ),
    }
}

#[tokio::test]
async fn a_file_changed_by_hand_after_the_plan_stops_its_host_before_any_change() {
    let lab = Lab::example();
    lab.converge(PlanMode::Apply).await;
    lab.edit("algorithm: roundrobin", "algorithm: leastconn");
    let (loaded, gathered, plan) = lab.plan(PlanMode::Apply).await;
    let cfg = infra_topology::RemotePath::new("/etc/haproxy/haproxy.cfg").expect("path");
    lab.on("lb1", |h| {
        if let Some(file) = h.files.get_mut(&cfg) {
            file.content.extend_from_slice(b"# edited by hand\n");
        }
    });
    let report = lab
        .run(&loaded, &gathered, &plan, RunSettings::default())
        .await
        .expect("locked");
    let errors = report.errors();
    assert!(
        matches!(errors.as_slice(), [TaskError::Stale { host, .. }] if host.as_str() == "lb1"),
        "{errors:?}"
    );
    assert!(
        lab.on("lb1", |h| String::from_utf8_lossy(&h.files[&cfg].content)
            .contains("edited by hand")),
        "the hand edit is kept"
    );
}

#[tokio::test]
async fn a_saved_destroy_plan_is_applied_exactly_and_only_once() {
    let lab = Lab::example();
    lab.converge(PlanMode::Apply).await;
    let (loaded, gathered, plan) = lab.plan(PlanMode::Destroy(DataPolicy::Keep)).await;
    let text = serde_json::to_string(&plan).expect("saves");
    let saved: Plan = serde_json::from_str(&text).expect("reads back");
    let report = lab
        .run(&loaded, &gathered, &saved, RunSettings::default())
        .await
        .expect("locked");
    assert!(!report.failed(), "{:?}", report.errors());
    assert!(lab.on("lb1", |h| h.packages.is_empty()));
    assert!(
        lab.on("db1", |h| !h.databases.is_empty()),
        "the data is kept"
    );
    // The app's accounts stay with the data; the monitoring exporter's goes with its tier.
    let accounts = lab.on("db1", |h| {
        h.sql_accounts
            .keys()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    });
    assert!(
        accounts.iter().any(|a| a.starts_with("counter@")),
        "{accounts:?}"
    );
    assert!(
        !accounts.iter().any(|a| a.starts_with("exporter@")),
        "{accounts:?}"
    );
    // The same plan again: the hosts' records moved on, so it is refused.
    let again = lab
        .run(&loaded, &gathered, &saved, RunSettings::default())
        .await;
    assert!(
        matches!(again, Err(AcquireError::Moved { .. })),
        "{:?}",
        again.map(|r| r.hosts)
    );
}

#[tokio::test]
async fn a_held_lock_is_reported_with_its_holder() {
    let lab = Lab::example();
    let (loaded, gathered, plan) = lab.plan(PlanMode::Apply).await;
    let holder = infra_plan::lock::LockHolder {
        id: infra_plan::lock::LockId::parse("00000000000000aa").expect("id"),
        user: "ci".to_owned(),
        controller: "runner-2".to_owned(),
        pid: 7,
        operation: "apply".to_owned(),
        topology: "scale-up".to_owned(),
        ci: Some("GitHub Actions: o/r run 9".to_owned()),
        since: 1,
        expires: 2,
    };
    lab.on("web2", |h| h.lock = Some(holder.clone()));
    match lab
        .run(&loaded, &gathered, &plan, RunSettings::default())
        .await
    {
        Err(AcquireError::Held { host, fact }) => {
            assert_eq!(host.as_str(), "web2");
            assert_eq!(fact.holder, Some(holder));
            assert_eq!(
                fact.lease,
                infra_plan::lock::Lease::Expired,
                "its lease ran out long ago"
            );
        }
        other => panic!("{:?}", other.map(|r| r.hosts)),
    }
    // All or nothing: no other host kept a lock of the refused run.
    for host in ["lb1", "web1", "db1"] {
        assert!(lab.on(host, |h| h.lock.is_none()), "{host} kept a lock");
    }
}

fn text(plan: &Plan) -> String {
    view::text::text(plan, view::text::Colour::Off)
}

#[tokio::test]
async fn plans_read_as_snapshots_fresh_converged_drift_and_destroy() {
    let lab = Lab::example();
    let (_, _, fresh) = lab.plan(PlanMode::Apply).await;
    insta::assert_snapshot!("fresh", text(&fresh));
    lab.converge(PlanMode::Apply).await;
    let (_, _, converged) = lab.plan(PlanMode::Apply).await;
    insta::assert_snapshot!("converged", text(&converged));
    let site = infra_topology::RemotePath::new("/etc/nginx/sites-enabled/scale-up").expect("path");
    lab.on("web1", |h| {
        if let Some(file) = h.files.get_mut(&site) {
            file.content.extend_from_slice(b"# edited by hand\n");
        }
        if let Some(unit) = h.units.get_mut(&infra_plan::paths::unit("nginx.service")) {
            unit.active = false;
        }
    });
    let (_, _, drift) = lab.plan(PlanMode::Apply).await;
    insta::assert_snapshot!("drift", text(&drift));
    insta::assert_snapshot!(
        "drift_json",
        serde_json::to_string_pretty(&view::json::view(&drift)).expect("JSON")
    );
    insta::assert_snapshot!("drift_markdown", view::markdown::markdown(&drift));
    let (_, _, destroy) = lab.plan(PlanMode::Destroy(DataPolicy::Keep)).await;
    insta::assert_snapshot!("destroy", text(&destroy));
    insta::assert_snapshot!(
        "destroy_json",
        serde_json::to_string_pretty(&view::json::view(&destroy)).expect("JSON")
    );
}

#[tokio::test]
async fn escape_sequences_in_a_hosts_file_are_shown_not_obeyed() {
    let lab = Lab::example();
    lab.converge(PlanMode::Apply).await;
    let site = infra_topology::RemotePath::new("/etc/nginx/sites-enabled/scale-up").expect("path");
    lab.on("web1", |h| {
        if let Some(file) = h.files.get_mut(&site) {
            file.content
                .extend_from_slice(b"# \x1b]0;owned\x07\x1b[2J\r\x1b[31mcleared\n");
        }
    });
    let (_, _, plan) = lab.plan(PlanMode::Apply).await;
    let shown = text(&plan);
    assert!(shown.contains("cleared"), "{shown}");
    assert!(
        !shown.contains('\x1b') && !shown.contains('\x07') && !shown.contains('\r'),
        "a control character reached the terminal: {shown:?}"
    );
    assert!(
        shown.contains("\\x1b]0;owned\\x07\\x1b[2J\\r\\x1b[31mcleared"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_local_state_of_an_earlier_version_moves_to_the_hosts() {
    let mut lab = Lab::example();
    lab.converge(PlanMode::Apply).await;
    // As an earlier version left things: the hosts hold no record, the working copy does.
    let mut local = std::collections::BTreeMap::new();
    for host in ["lb1", "lb2", "web1", "web2", "app1", "app2", "db1", "db2"] {
        let record = lab.on(host, |h| {
            let record = infra_plan::record::parse(&h.journal)
                .expect("parses")
                .expect("a record");
            h.journal.clear();
            record
        });
        local.insert(lab.host(host), record);
    }
    lab.local_records = local;
    let (loaded, gathered, plan) = lab.plan(PlanMode::Apply).await;
    let notes: Vec<&String> = plan.hosts.iter().flat_map(|h| &h.notes).collect();
    assert_eq!(notes.len(), 8, "{notes:?}");
    assert!(notes[0].contains("moves from the local `.infra/state.json`"));
    let report = lab
        .run(&loaded, &gathered, &plan, RunSettings::default())
        .await
        .expect("locked");
    assert!(!report.failed(), "{:?}", report.errors());
    let moved = lab.on("web1", |h| {
        infra_plan::record::parse(&h.journal)
            .expect("parses")
            .expect("a record")
    });
    assert!(
        moved.packages.iter().any(|p| p.as_str() == "nginx"),
        "{moved:?}"
    );
    assert!(
        moved
            .files
            .keys()
            .any(|p| p.as_str() == "/etc/nginx/sites-enabled/scale-up")
    );
    // From now on the hosts' records are the truth: destroy works without the local copy.
    lab.local_records.clear();
    let report = lab.converge(PlanMode::Destroy(DataPolicy::Delete)).await;
    assert!(!report.failed(), "{:?}", report.errors());
    assert!(lab.on("web1", |h| h.packages.is_empty() && h.journal.is_empty()));
}

#[tokio::test]
async fn a_first_apply_that_fails_after_loading_the_firewall_takes_the_table_away() {
    let lab = Lab::example();
    // The primary's firewall is loaded (with its new rules file) before its SQL, which fails.
    lab.on("db1", |h| {
        h.faults.fail_step = Some("create database".to_owned());
    });
    let report = lab.converge(PlanMode::Apply).await;
    assert!(report.failed());
    let (table, rules) = lab.on("db1", |h| {
        (
            h.firewall.clone(),
            h.files.contains_key(&infra_plan::paths::firewall_nft()),
        )
    });
    assert!(
        !rules,
        "the rules file the failed run wrote is taken away again"
    );
    assert!(
        table.is_none(),
        "so is the table it loaded from it: the host had none"
    );
}

#[tokio::test]
async fn a_release_migrates_once_before_any_app_host_restarts_and_a_failed_migration_keeps_the_old_release()
 {
    let lab = Lab::example();
    lab.converge(PlanMode::Apply).await;
    let migrate = "/usr/bin/python3 /opt/counter/migrate.py";
    assert_eq!(lab.on("app1", |h| h.migrations.clone()), [migrate]);
    assert!(lab.on("app2", |h| h.migrations.is_empty()));
    // A new release: migrated once, on app1, before its restart and before app2's.
    lab.edit(
        "COUNTER_GREETING: hello from the scale-up example",
        "COUNTER_GREETING: release two",
    );
    // The migrating host goes alone, before the rest of the app tier.
    let (_, _, plan) = lab.plan(PlanMode::Apply).await;
    let waves: Vec<(String, Vec<String>)> = plan
        .waves
        .iter()
        .map(|w| {
            (
                w.label.clone(),
                w.tasks.iter().map(|t| t.host.to_string()).collect(),
            )
        })
        .collect();
    let migration = waves
        .iter()
        .position(|(label, _)| label == "app (migration)")
        .expect("a migration wave");
    assert_eq!(waves[migration].1, ["app1"], "{waves:?}");
    assert_eq!(
        waves[migration + 1],
        ("app".to_owned(), vec!["app2".to_owned()])
    );
    lab.fleet.clear_log();
    let report = lab.converge(PlanMode::Apply).await;
    assert!(!report.failed(), "{:?}", report.errors());
    assert_eq!(lab.on("app1", |h| h.migrations.len()), 2);
    assert!(lab.on("app2", |h| h.migrations.is_empty()));
    let log = lab.fleet.log();
    let position = |needle: &str| {
        log.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {log:#?}"))
    };
    assert!(position("app1: migrate: ") < position("app1: restart counter.service"));
    assert!(position("app1: migrate: ") < position("app2: restart counter.service"));
    // Nothing about the app changes: no migration.
    lab.converge(PlanMode::Apply).await;
    assert_eq!(lab.on("app1", |h| h.migrations.len()), 2);
    // A migration that fails stops the apply: no app host restarts, app1's files go back.
    let env = infra_topology::RemotePath::new("/etc/counter/environment").expect("path");
    let before = lab.on("app1", |h| h.files[&env].content.clone());
    lab.on("app1", |h| h.faults.fail_step = Some("migrate".to_owned()));
    lab.edit(
        "COUNTER_GREETING: release two",
        "COUNTER_GREETING: release three",
    );
    lab.fleet.clear_log();
    let report = lab.converge(PlanMode::Apply).await;
    let errors = report.errors();
    assert!(
        matches!(errors.as_slice(), [TaskError::Step { host, .. }] if host.as_str() == "app1"),
        "{errors:?}"
    );
    assert_eq!(lab.on("app1", |h| h.files[&env].content.clone()), before);
    let log = lab.fleet.log();
    assert!(
        !log.iter().any(|l| l.contains("restart counter.service")),
        "{log:#?}"
    );
    assert!(!log.iter().any(|l| l.starts_with("app2:")), "{log:#?}");
}

/// Planning again after another run moved a host (`refresh`, over the open connections) judges
/// preflight as the first gather did: a host that became unfit meanwhile is an error, not a
/// host planned on; a host now on Debian 13 is fit.
#[tokio::test]
async fn gathering_again_judges_preflight_again() {
    use infra_exec::gather;
    use infra_plan::facts::GatherRequest;
    use infra_plan::preflight::PreflightRequest;

    let lab = Lab::example();
    let loaded = lab.load();
    let requests = || -> Vec<(infra_topology::Host, GatherRequest)> {
        loaded
            .topology
            .hosts
            .iter()
            .map(|host| {
                let state = loaded.desired.host(&host.name).expect("a desired state");
                let mut request = GatherRequest::for_host(&loaded.topology.name, state);
                request.preflight = Some(PreflightRequest::default());
                (host.clone(), request)
            })
            .collect()
    };
    let first = gather::gather(
        Arc::new(lab.fleet.clone()),
        requests(),
        10,
        gather::Connections::Keep,
    )
    .await;
    assert!(first.failed.is_empty(), "{:?}", first.unreachable());
    lab.fleet
        .with_host(&lab.host("db2"), |h| h.os = "debian 11".to_owned());
    lab.fleet
        .with_host(&lab.host("web1"), |h| h.os = "debian 13".to_owned());
    let again = gather::refresh(first, requests(), 10).await;
    let failed: Vec<String> = again
        .failed
        .iter()
        .map(|(h, e)| format!("{h}: {e}"))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].starts_with("db2: ") && failed[0].contains("`db2` runs debian 11"),
        "{failed:?}"
    );
    assert!(again.facts.iter().any(|(h, _)| h.as_str() == "web1"));
    assert!(!again.facts.iter().any(|(h, _)| h.as_str() == "db2"));
}
