//! Every topology under tests/invalid/ is rejected: exit code 1, each error at the
//! `file:line:col` its header names, with the message its header names.
//!
//! Header lines: `# position: L:C` (one per expected finding) and `# message: TEXT`.

mod common;

use std::path::PathBuf;

fn corpus() -> Vec<PathBuf> {
    let dir = common::root().join("tests/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/invalid exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_corpus_is_large_enough() {
    assert!(
        corpus().len() >= 40,
        "only {} invalid topologies",
        corpus().len()
    );
}

#[test]
fn every_invalid_topology_is_rejected_where_its_header_says() {
    let mut failures = Vec::new();
    for path in corpus() {
        let text = std::fs::read_to_string(&path).expect("read case");
        let positions: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# position: "))
            .collect();
        let messages: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# message: "))
            .collect();
        assert!(
            !positions.is_empty(),
            "{} has no `# position:` header",
            path.display()
        );
        let relative = format!(
            "tests/invalid/{}",
            path.file_name().expect("name").to_string_lossy()
        );
        let output = common::infra()
            .current_dir(common::root())
            .args(["validate", "-f", &relative])
            .output()
            .expect("run infra");
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() != Some(1) {
            failures.push(format!(
                "{relative}: exit {:?}, expected 1\n{stderr}",
                output.status.code()
            ));
            continue;
        }
        if stderr.contains("panicked") {
            failures.push(format!("{relative}: panicked\n{stderr}"));
        }
        for position in &positions {
            let located = format!("--> {relative}:{position}\n");
            if !stderr.contains(&located) {
                failures.push(format!("{relative}: no finding at {position}\n{stderr}"));
            }
        }
        for message in &messages {
            if !stderr.contains(message) {
                failures.push(format!("{relative}: message `{message}` missing\n{stderr}"));
            }
        }
        if !stderr.contains(&format!("error: `{relative}` is not valid")) {
            failures.push(format!("{relative}: no summary line\n{stderr}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n\n{}",
        failures.len(),
        failures.join("\n---\n")
    );
}

/// The full text of every error class, as a user reads it (reviewed snapshots).
#[test]
fn error_messages_read_well() {
    for path in corpus() {
        let name = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let relative = format!("tests/invalid/{name}.yaml");
        let output = common::infra()
            .current_dir(common::root())
            .args(["validate", "-f", &relative])
            .output()
            .expect("run infra");
        insta::with_settings!({ snapshot_suffix => name.clone(), prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("invalid", String::from_utf8_lossy(&output.stderr));
        });
    }
}
