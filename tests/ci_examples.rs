//! The CI pipelines in examples/ci/ are valid YAML, every `infra` command they run parses with
//! the flags they give it, and every `INFRA_*` variable they set is one `infra` reads (a flag's
//! variable or a secret the example topology names). actionlint would check more, but it
//! cannot be installed from a package registry here (its PyPI package downloads the binary from
//! GitHub at build time).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

fn pipelines() -> Vec<PathBuf> {
    let dir = common::root().join("examples/ci");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ci")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "GitHub Actions and GitLab CI: {files:?}");
    files
}

/// Every string under a `run`, `script` or `before_script` key, and every key of an `env` or
/// `variables` mapping, with its value when it is a plain one (not a CI expression).
fn walk(
    value: &serde_json::Value,
    commands: &mut Vec<String>,
    variables: &mut BTreeSet<(String, Option<String>)>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("run" | "script" | "before_script", serde_json::Value::String(text)) => {
                        commands.push(text.clone());
                    }
                    ("script" | "before_script", serde_json::Value::Array(lines)) => {
                        commands.extend(lines.iter().filter_map(|l| l.as_str().map(str::to_owned)));
                    }
                    ("env" | "variables", serde_json::Value::Object(vars)) => {
                        variables.extend(vars.iter().map(|(name, value)| {
                            let plain = value.as_str().filter(|v| !v.contains('$'));
                            (name.clone(), plain.map(str::to_owned))
                        }));
                    }
                    _ => {}
                }
                walk(child, commands, variables);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                walk(item, commands, variables);
            }
        }
        _ => {}
    }
}

/// The `infra` invocations in a shell script: the words after `infra` up to a shell operator.
fn invocations(script: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in script.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for (index, word) in words.iter().enumerate() {
            if *word != "infra" {
                continue;
            }
            let args: Vec<String> = words[index + 1..]
                .iter()
                .take_while(|w| !matches!(**w, "|" | "||" | "&&" | ";" | ">" | ">>" | "2>&1"))
                .map(|w| w.trim_matches('"').to_owned())
                .collect();
            found.push(args);
        }
    }
    found
}

#[test]
fn the_ci_examples_are_valid_and_run_real_commands() {
    let help = |args: &[&str]| {
        let output = common::infra()
            .args(args)
            .arg("--help")
            .output()
            .expect("run");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let mut known: BTreeSet<String> = BTreeSet::new();
    for command in [
        &["plan"][..],
        &["apply"],
        &["destroy"],
        &["status"],
        &["show"],
    ] {
        let text = help(command);
        for part in text.split("[env: ").skip(1) {
            if let Some(name) = part.split(['=', ']']).next() {
                known.insert(name.to_owned());
            }
        }
    }
    assert!(known.contains("INFRA_LOCK_TIMEOUT"), "{known:?}");
    let topology = std::fs::read_to_string(common::example()).expect("example");
    for part in topology.split("${env:").skip(1) {
        if let Some(name) = part.split('}').next() {
            known.insert(name.to_owned());
        }
    }
    for file in pipelines() {
        let text = std::fs::read_to_string(&file).expect("read");
        let value: serde_json::Value = serde_saphyr::from_str(&text)
            .unwrap_or_else(|error| panic!("{} is not valid YAML: {error}", file.display()));
        let (mut commands, mut variables) = (Vec::new(), BTreeSet::new());
        walk(&value, &mut commands, &mut variables);
        let calls: Vec<Vec<String>> = commands.iter().flat_map(|c| invocations(c)).collect();
        let subcommands: BTreeSet<&str> = calls
            .iter()
            .filter_map(|c| c.first().map(String::as_str))
            .collect();
        for needed in ["plan", "show", "apply"] {
            assert!(
                subcommands.contains(needed),
                "{} never runs `infra {needed}`",
                file.display()
            );
        }
        for call in &calls {
            // `--help` after the arguments: clap rejects an unknown flag before it.
            let output = common::infra()
                .args(call)
                .arg("--help")
                .output()
                .expect("run");
            assert!(
                output.status.success(),
                "{}: `infra {}` does not parse: {}",
                file.display(),
                call.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // The values a pipeline gives infra's variables parse (a usage error would exit 64).
        let mut parsed = common::infra();
        parsed.arg("validate");
        for (name, value) in &variables {
            if let (true, Some(value)) = (name.starts_with("INFRA_"), value) {
                parsed.env(name, value);
            }
        }
        let output = parsed.output().expect("run");
        assert_ne!(
            output.status.code(),
            Some(64),
            "{}: a variable's value is refused: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        for (variable, _) in variables.iter().filter(|(v, _)| v.starts_with("INFRA_")) {
            assert!(
                known.contains(variable)
                    || variable == "INFRA_SSH_KEY"
                    || variable == "INFRA_KNOWN_HOSTS",
                "{} sets {variable}, which infra does not read",
                file.display()
            );
        }
        let scripts = commands.join("\n");
        assert!(
            !scripts.contains("StrictHostKeyChecking=no")
                && !scripts.contains("ssh-keyscan")
                && !scripts.contains("--accept-new-host-keys"),
            "{} must not skip or fetch host keys in the pipeline",
            file.display()
        );
    }
}
