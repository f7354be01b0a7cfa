//! Input a hostile colleague or a careless script gives `infra`, offline: a closed pipe, files
//! that are not files, endless or huge secrets, a topology full of dangling references, links
//! planted where `render --out` writes, two topologies sharing a folder, absurd numbers.

mod common;

use common::text;

use std::io::Read as _;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `command`, killing it (and failing) if it has not ended after a minute: a hang on a
/// FIFO or an endless file is the bug these tests look for. Not a speed check.
fn finishes(mut command: std::process::Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start infra");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("infra never ended: it blocks on its input");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_closed_stdout_ends_quietly() {
    for args in [
        vec!["schema"],
        vec!["graph"],
        vec!["render"],
        vec!["validate"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let output = common::infra_process()
            .current_dir(common::root().join("examples/scale-up"))
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run");
        let err = text(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "infra {args:?}: {err}");
        assert!(err.is_empty(), "infra {args:?} complained: {err}");
    }
}

#[test]
fn a_topology_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let fifo = dir.path().join("infra.yaml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    for path in [Path::new("/dev/zero"), fifo.as_path()] {
        let mut command = common::infra_process();
        command.arg("validate").arg("-f").arg(path);
        let output = finishes(command);
        assert_eq!(output.status.code(), Some(1));
        let err = text(&output.stderr);
        assert!(
            err.contains(&format!("cannot read the topology `{}`", path.display()))
                && err.contains("not a regular file"),
            "{err}"
        );
    }
}

#[test]
fn a_secret_file_that_is_a_device_a_fifo_or_huge_is_an_error_at_its_key() {
    let dir = common::example_copy();
    let file = dir.path().join("infra.yaml");
    std::fs::write(dir.path().join("huge.secret"), "x".repeat(1024 * 1024)).expect("huge");
    let fifo = dir.path().join("fifo.secret");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    for (reference, expected) in [
        ("${file:/dev/zero}", "not a regular file"),
        ("${file:fifo.secret}", "not a regular file"),
        ("${file:huge.secret}", "larger than 64 KiB"),
    ] {
        let original = std::fs::read_to_string(&file).expect("topology");
        common::edit(
            &file,
            "password: ${env:INFRA_STATS_PASSWORD}",
            &format!("password: {reference}"),
        );
        let mut command = common::infra_process();
        command.arg("validate").arg("-f").arg(&file);
        let output = finishes(command);
        std::fs::write(&file, original).expect("restore");
        assert_eq!(output.status.code(), Some(1), "{reference}");
        let err = text(&output.stderr);
        assert!(
            err.contains(expected) && err.contains("--> ") && err.contains("stats.password"),
            "{reference}: {err}"
        );
    }
}

#[test]
fn thousands_of_dangling_references_give_a_capped_list() {
    let dir = common::example_copy();
    let file = dir.path().join("infra.yaml");
    let ghosts: Vec<String> = (0..20_000).map(|i| format!("ghost{i}")).collect();
    common::edit(
        &file,
        "  hosts: [web1, web2]",
        &format!("  hosts: [web1, web2, {}]", ghosts.join(", ")),
    );
    assert!(std::fs::metadata(&file).expect("size").len() > 200_000);
    let output = common::infra_process()
        .arg("validate")
        .arg("-f")
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    let shown = err
        .lines()
        .filter(|l| l.starts_with("error: `web`"))
        .count();
    assert_eq!(shown, 50, "{err}");
    assert!(
        err.contains("and 19950 more findings not shown (20000 in all)"),
        "{}",
        &err[err.len().saturating_sub(400)..]
    );
}

#[test]
fn render_out_never_writes_through_a_link() {
    let dir = common::example_copy();
    let out = tempfile::tempdir().expect("out");
    let victim = tempfile::tempdir().expect("victim");
    let victim_file = victim.path().join("haproxy.cfg");
    std::fs::write(&victim_file, "mine\n").expect("victim");
    // A link where a host's folder goes, and a link where a file goes.
    std::os::unix::fs::symlink(victim.path(), out.path().join("lb1")).expect("link");
    std::fs::create_dir_all(out.path().join("lb2/etc/haproxy")).expect("folders");
    std::os::unix::fs::symlink(&victim_file, out.path().join("lb2/etc/haproxy/haproxy.cfg"))
        .expect("link");
    let render = |host: &str| {
        common::infra_process()
            .args(["render", "--host", host, "--out"])
            .arg(out.path())
            .arg("-f")
            .arg(dir.path().join("infra.yaml"))
            .output()
            .expect("run")
    };
    // A linked folder on the way is refused.
    let output = render("lb1");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("is a link: refusing to write through it"),
        "{}",
        text(&output.stderr)
    );
    // A link where the file goes is removed, not followed: a new file takes its place.
    let output = render("lb2");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let written = out.path().join("lb2/etc/haproxy/haproxy.cfg");
    let metadata = std::fs::symlink_metadata(&written).expect("written");
    assert!(metadata.file_type().is_file(), "{metadata:?}");
    assert!(
        std::fs::read_to_string(&written)
            .expect("written")
            .contains("frontend")
    );
    assert_eq!(
        std::fs::read_to_string(&victim_file).expect("victim"),
        "mine\n"
    );
    assert_eq!(
        std::fs::read_dir(victim.path()).expect("victim").count(),
        1,
        "render wrote into the linked folder"
    );
}

#[test]
fn two_topologies_in_one_folder_keep_their_own_certificate() {
    let dir = common::example_copy();
    let first = dir.path().join("infra.yaml");
    let second = dir.path().join("other.yaml");
    let text_of_first = std::fs::read_to_string(&first).expect("topology");
    std::fs::write(
        &second,
        text_of_first.replace("name: scale-up", "name: scale-other"),
    )
    .expect("second topology");
    for file in [&first, &second] {
        let output = common::infra_process()
            .args(["render", "--host", "lb1", "-f"])
            .arg(file)
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    }
    let tls = dir.path().join(".infra/tls");
    let read = |name: &str| std::fs::read_to_string(tls.join(name)).expect(name);
    assert_ne!(read("scale-up.crt"), read("scale-other.crt"));
    assert_ne!(read("scale-up.key"), read("scale-other.key"));
}

#[test]
fn absurd_numbers_are_usage_errors_not_panics() {
    for args in [
        vec!["plan", "--parallelism", "99999999999999999999"],
        vec!["plan", "--parallelism", "0"],
        vec!["apply", "--lock-timeout", "99999999999h"],
        vec!["apply", "--lock-timeout", "18446744073709551615s"],
        vec!["plan", "--connect-timeout", "4294967296"],
        vec!["apply", "--max-fail", "101%"],
    ] {
        let output = common::infra_process()
            .current_dir(common::root().join("examples/scale-up"))
            .args(&args)
            .output()
            .expect("run");
        let err = text(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "infra {args:?}: {err}");
        assert!(
            err.starts_with("error: invalid value") && !err.contains("panicked"),
            "{err}"
        );
    }
}

#[test]
fn escape_sequences_in_the_topology_are_shown_not_obeyed() {
    let dir = common::example_copy();
    let file = dir.path().join("infra.yaml");
    common::edit(&file, "  web1: {", "  \"web\\e[31m1\": {");
    let mut stderr = String::new();
    let mut child = common::infra_process()
        .arg("validate")
        .arg("-f")
        .arg(&file)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    assert_eq!(child.wait().expect("wait").code(), Some(1));
    assert!(
        !stderr.contains('\u{1b}'),
        "a raw escape reached the terminal"
    );
    assert!(stderr.contains("\\x1b[31m"), "{stderr}");
}

#[test]
fn a_template_error_never_prints_a_secret() {
    let dir = common::example_copy();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).expect("templates");
    // A filter that fails on the secret's value, the way a careless override might.
    std::fs::write(
        templates.join("haproxy.cfg"),
        "global\n    maxconn {{ lb.stats.password | int }}\n    x {{ lb.stats.password | round }}\n",
    )
    .expect("template");
    common::edit(
        &dir.path().join("infra.yaml"),
        "name: scale-up\n",
        "name: scale-up\ntemplates: templates\n",
    );
    for command in ["render", "validate"] {
        let output = common::infra_process()
            .arg(command)
            .arg("-f")
            .arg(dir.path().join("infra.yaml"))
            .output()
            .expect("run");
        let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert_ne!(output.status.code(), Some(0), "{command}: {all}");
        assert!(all.contains("haproxy.cfg"), "{command}: {all}");
        for (name, value) in common::SECRETS {
            assert!(!all.contains(value), "{command} printed {name}: {all}");
        }
    }
}
