//! Every rendered config of the example is accepted by the real program that reads it,
//! installed from Debian: `haproxy -c`, `keepalived -t`, `nginx -t`, `nft -c`, MariaDB's
//! option parser, `promtool check rules` and `check config`, and the blackbox exporter's
//! `--config.check`. Each validator is also shown a broken file and must reject it, so a
//! validator that accepts anything cannot make these tests pass.
//!
//! These need the Debian packages haproxy, keepalived, nginx, nftables, mariadb-server,
//! prometheus and prometheus-blackbox-exporter (the README's test command installs them); a missing one fails the test, it is never skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn require(program: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = Path::new(dir).join(program);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "`{program}` is not installed: run `apt-get install haproxy keepalived nginx nftables mariadb-server prometheus prometheus-blackbox-exporter` (the README's test command does)"
    );
}

struct Checked {
    success: bool,
    output: String,
}

fn run(program: &str, args: &[&str]) -> Checked {
    let output = Command::new(require(program))
        .args(args)
        .output()
        .expect("run validator");
    Checked {
        success: output.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// Renders the example with `tls.mode: MODE` into a temporary folder.
fn render(mode: &str) -> (tempfile::TempDir, tempfile::TempDir) {
    let topology = common::example_copy();
    let file = topology.path().join("infra.yaml");
    common::edit(&file, "    mode: terminate", &format!("    mode: {mode}"));
    let out = tempfile::tempdir().expect("output folder");
    common::infra()
        .args(["render", "--show-sensitive", "-f"])
        .arg(&file)
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    (topology, out)
}

/// The rendered file at `path` on `host`, with absolute paths into /etc rewritten to the
/// rendered tree (so a certificate the config names is found where it was rendered).
fn localised(out: &Path, host: &str, path: &str, scratch: &Path) -> PathBuf {
    let root = out.join(host);
    let text =
        std::fs::read_to_string(root.join(path.trim_start_matches('/'))).expect("rendered file");
    let text = text
        .replace(
            "/etc/haproxy/certs/",
            &format!("{}/etc/haproxy/certs/", root.display()),
        )
        .replace(
            "/etc/nginx/tls/",
            &format!("{}/etc/nginx/tls/", root.display()),
        )
        .replace(
            "/etc/prometheus/infra-rules.yml",
            &format!("{}/etc/prometheus/infra-rules.yml", root.display()),
        );
    let target = scratch.join(format!(
        "{host}-{}",
        path.rsplit('/').next().unwrap_or("file")
    ));
    std::fs::write(&target, text).expect("write scratch copy");
    target
}

fn check_haproxy(file: &Path) -> Checked {
    run("haproxy", &["-c", "-f", &file.display().to_string()])
}

fn check_keepalived(file: &Path) -> Checked {
    // keepalived -t exits 0 for a missing file: make sure it is there and not empty.
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    assert!(size > 0, "{} is missing or empty", file.display());
    run("keepalived", &["-t", "-f", &file.display().to_string()])
}

fn check_nginx(site: &Path, scratch: &Path) -> Checked {
    let conf = scratch.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "pid {dir}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n    include /etc/nginx/mime.types;\n    access_log off;\n    include {site};\n}}\n",
            dir = scratch.display(),
            site = site.display()
        ),
    )
    .expect("write nginx.conf");
    run(
        "nginx",
        &[
            "-t",
            "-c",
            &conf.display().to_string(),
            "-p",
            &scratch.display().to_string(),
        ],
    )
}

fn check_nft(file: &Path) -> Checked {
    run("nft", &["-c", "-f", &file.display().to_string()])
}

fn check_mariadb(file: &Path) -> Checked {
    let mut checked = run(
        "mariadbd",
        &[
            &format!("--defaults-file={}", file.display()),
            "--help",
            "--verbose",
        ],
    );
    checked.success &= !checked.output.contains("[ERROR]");
    checked
}

fn check_rules(file: &Path) -> Checked {
    run("promtool", &["check", "rules", &file.display().to_string()])
}

fn check_prometheus(file: &Path) -> Checked {
    run(
        "promtool",
        &["check", "config", &file.display().to_string()],
    )
}

fn check_blackbox(file: &Path) -> Checked {
    run(
        "prometheus-blackbox-exporter",
        &[
            "--config.check",
            &format!("--config.file={}", file.display()),
        ],
    )
}

fn assert_ok(what: &str, checked: &Checked) {
    assert!(checked.success, "{what} was rejected:\n{}", checked.output);
}

fn check_every_file(mode: &str) {
    let (_topology, out) = render(mode);
    let scratch = tempfile::tempdir().expect("scratch");
    for lb in ["lb1", "lb2"] {
        assert_ok(
            &format!("{lb} haproxy.cfg ({mode})"),
            &check_haproxy(&localised(
                out.path(),
                lb,
                "/etc/haproxy/haproxy.cfg",
                scratch.path(),
            )),
        );
        assert_ok(
            &format!("{lb} keepalived.conf"),
            &check_keepalived(&out.path().join(lb).join("etc/keepalived/keepalived.conf")),
        );
    }
    for web in ["web1", "web2"] {
        let site = localised(
            out.path(),
            web,
            "/etc/nginx/sites-enabled/scale-up",
            scratch.path(),
        );
        assert_ok(
            &format!("{web} nginx site ({mode})"),
            &check_nginx(&site, scratch.path()),
        );
    }
    for db in ["db1", "db2"] {
        assert_ok(
            &format!("{db} MariaDB config"),
            &check_mariadb(
                &out.path()
                    .join(db)
                    .join("etc/mysql/mariadb.conf.d/60-infra.cnf"),
            ),
        );
    }
    let mon1 = out.path().join("mon1");
    assert_ok(
        "mon1 alert rules",
        &check_rules(&mon1.join("etc/prometheus/infra-rules.yml")),
    );
    // The configuration's check reads the rule files it names: the rendered ones.
    assert_ok(
        &format!("mon1 prometheus.yml ({mode})"),
        &check_prometheus(&localised(
            out.path(),
            "mon1",
            "/etc/prometheus/prometheus.yml",
            scratch.path(),
        )),
    );
    assert_ok(
        "mon1 blackbox.yml",
        &check_blackbox(&mon1.join("etc/prometheus/blackbox.yml")),
    );
    for host in [
        "lb1", "lb2", "web1", "web2", "app1", "app2", "db1", "db2", "mon1",
    ] {
        assert_ok(
            &format!("{host} firewall.nft"),
            &check_nft(&out.path().join(host).join("etc/infra/firewall.nft")),
        );
    }
}

#[test]
fn tls_terminate_configs_pass_their_validators() {
    check_every_file("terminate");
}

#[test]
fn tls_passthrough_configs_pass_their_validators() {
    check_every_file("passthrough");
}

#[test]
fn tls_off_configs_pass_their_validators() {
    check_every_file("off");
}

#[test]
fn each_validator_rejects_a_broken_file() {
    let scratch = tempfile::tempdir().expect("scratch");
    let write = |name: &str, text: &str| {
        let path = scratch.path().join(name);
        std::fs::write(&path, text).expect("write broken file");
        path
    };
    let haproxy = write(
        "haproxy.cfg",
        "frontend www\n    bind :80\n    default_backend nowhere\n",
    );
    assert!(
        !check_haproxy(&haproxy).success,
        "haproxy accepted a missing backend"
    );
    let keepalived = write(
        "keepalived.conf",
        "vrrp_instance x {\n    bogus_keyword 1\n}\n",
    );
    assert!(
        !check_keepalived(&keepalived).success,
        "keepalived accepted an unknown keyword"
    );
    let site = write(
        "site.conf",
        "server {\n    listen 80;\n    bogus_directive on;\n}\n",
    );
    assert!(
        !check_nginx(&site, scratch.path()).success,
        "nginx accepted an unknown directive"
    );
    let nft = write(
        "bad.nft",
        "table inet infra {\n    chain input {\n        tcp dport 99999 accept\n    }\n}\n",
    );
    assert!(!check_nft(&nft).success, "nft accepted port 99999");
    let mariadb = write("bad.cnf", "[mariadbd]\nbogus_option = 1\n");
    assert!(
        !check_mariadb(&mariadb).success,
        "mariadbd accepted an unknown option"
    );
    let rules = write(
        "rules.yml",
        "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: up ==\n",
    );
    assert!(
        !check_rules(&rules).success,
        "promtool accepted a rule that does not parse"
    );
    let missing_rules = write(
        "prometheus.yml",
        &format!(
            "rule_files:\n  - {}/no-such-rules.yml\n",
            scratch.path().display()
        ),
    );
    assert!(
        !check_prometheus(&missing_rules).success,
        "promtool accepted a configuration whose rule file is missing"
    );
    let blackbox = write(
        "blackbox.yml",
        "modules:\n  x:\n    prober: http\n    bogus: 1\n",
    );
    assert!(
        !check_blackbox(&blackbox).success,
        "the blackbox exporter accepted an unknown key"
    );
}
