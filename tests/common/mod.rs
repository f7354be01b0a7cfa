//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The example topology.
pub fn example() -> PathBuf {
    root().join("examples/scale-up/infra.yaml")
}

/// Secrets the example and the corpus refer to. The example's five sit at the edge of what
/// their formats take: every printable character but the ones `infra` refuses for that format
/// (see `SecretFormat` in infra-topology), so the lab tests show the real HAProxy, keepalived,
/// systemd and MariaDB reading them exactly as written.
pub const SECRETS: [(&str, &str); 11] = [
    // haproxy.cfg: no `#`, quotes or `\`.
    ("INFRA_STATS_PASSWORD", "st!$%&()*+,-./:;<=>?@[]^_`{|}~9"),
    // SQL and the app's systemd environment file: no `"` or `\`.
    ("INFRA_DB_APP_PASSWORD", "ap!#$%&'()*+,-./:;<=>?@[]^_`{|}~2"),
    // SQL only: anything printable.
    (
        "INFRA_DB_REPL_PASSWORD",
        "re\"\\'!#$%&()*+,-./:;<=>?@[]^_`{|}~3",
    ),
    // SQL and the MariaDB exporter's systemd environment file, inside a Go data source name:
    // no `"`, `\` or `?`; `@`, `:` and `/` stay (the name splits at its last `@` and `/`).
    (
        "INFRA_DB_MONITOR_PASSWORD",
        "mo!#$%&'()*+,-./:;<=>@[]^_`{|}~4",
    ),
    // keepalived.conf: exactly 8, no `!`, `#`, `{`, `}` or `"`.
    ("INFRA_VRRP_PASSWORD", "v$%&'`|\\"),
    ("CORPUS_PASSWORD", "corpus-Secret-5"),
    ("CORPUS_HOSTILE", "a b'$(id)"),
    ("CORPUS_BANG", "ab!cdefg"),
    ("CORPUS_SHORT", "abc"),
    ("CORPUS_HASH", "abc#defgh"),
    ("CORPUS_QUESTION", "abc?defgh"),
];

/// Runs `docker ARGS`, failing the test unless it succeeds; returns its stdout.
pub fn docker(args: &[&str]) -> String {
    let output = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A finished command's exit code, stdout and stderr, for an assertion's message.
pub fn show(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// The value of the test secret `name`.
pub fn secret(name: &str) -> &'static str {
    SECRETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, value)| *value)
        .unwrap_or_else(|| panic!("no test secret `{name}`"))
}

/// The example's secrets (the corpus's are not among them).
pub fn example_secrets() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    SECRETS
        .iter()
        .filter(|(name, _)| name.starts_with("INFRA_"))
}

/// `infra` with the test secrets in its environment, no colour, and nothing else inherited
/// that could change its output.
pub fn infra() -> Command {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin!("infra"));
    command.env_remove("NO_COLOR").env("NO_COLOR", "1");
    for (name, value) in SECRETS {
        command.env(name, value);
    }
    command
}

/// Copies the example into a fresh temporary folder (so tests can change it and so the
/// generated certificate does not land in the repository).
pub fn example_copy() -> tempfile::TempDir {
    copy_of_example("scale-up")
}

/// Copies `examples/<name>` (without its `.infra/`) into a fresh temporary folder.
pub fn copy_of_example(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    copy_dir(&root().join("examples").join(name), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let name = entry.file_name();
        if name == ".infra" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Replaces `old` with `new` in the topology at `path` (which must contain `old`).
pub fn edit(path: &Path, old: &str, new: &str) {
    let text = std::fs::read_to_string(path).expect("read topology");
    assert!(
        text.contains(old),
        "`{old}` not found in {}",
        path.display()
    );
    std::fs::write(path, text.replacen(old, new, 1)).expect("write topology");
}

/// `infra` as a plain `std::process::Command` (for streaming its output), same environment.
pub fn infra_process() -> std::process::Command {
    infra_process_named(assert_cmd::cargo::cargo_bin!("infra"))
}

/// `program` with the environment `infra` gets in tests (to run `infra` under a wrapper).
pub fn infra_process_named(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    command.env("NO_COLOR", "1");
    for (name, value) in SECRETS {
        command.env(name, value);
    }
    command
}

/// A host's installed packages and a checksum of every file and link under /etc (leaving out
/// /etc/ld.so.cache and /etc/mtab, which change by themselves, and MariaDB's debian.cnf, which
/// is kept with the data): what destroy must give back.
pub const SNAPSHOT: &str = "dpkg-query -W -f='${Package} ${Version}\\n' | sort; \
     find /etc -xdev \\( -type f -o -type l \\) -not -path /etc/ld.so.cache -not -path /etc/mtab -not -path /etc/mysql/debian.cnf -print0 | sort -z | xargs -0 sha256sum; \
     find /etc -xdev -type l -printf '%p -> %l\\n' | sort";

/// A copy of `examples/scale-up` renamed `name` on `10.231.<octet>.0/24`, for a lab test that
/// must not disturb a running quickstart lab, with helpers to reach its hosts.
pub struct LabExample {
    dir: tempfile::TempDir,
    name: String,
    octet: u8,
}

impl LabExample {
    /// Copies the example; `edit` may change the topology text further.
    pub fn new(name: &str, octet: u8, edit: impl FnOnce(String) -> String) -> LabExample {
        let dir = example_copy();
        let file = dir.path().join("infra.yaml");
        let text = std::fs::read_to_string(&file).expect("topology");
        let text = text
            .replace("10.231.7.", &format!("10.231.{octet}."))
            .replace("name: scale-up", &format!("name: {name}"));
        std::fs::write(&file, edit(text)).expect("write topology");
        LabExample {
            dir,
            name: name.to_owned(),
            octet,
        }
    }

    /// A second clone of the same topology in a folder of its own (another CI runner): no
    /// `.infra/` of the first, only the lab's key and known_hosts, as a runner gets them from
    /// its secret store.
    pub fn clone_of(other: &LabExample) -> LabExample {
        let dir = tempfile::tempdir().expect("temporary folder");
        copy_dir(other.path(), dir.path());
        let clone = LabExample {
            dir,
            name: other.name.clone(),
            octet: other.octet,
        };
        let from = other.path().join(".infra/lab").join(&other.name);
        let to = clone.path().join(".infra/lab").join(&clone.name);
        std::fs::create_dir_all(&to).expect("lab folder");
        for name in ["id_ed25519", "known_hosts"] {
            std::fs::copy(from.join(name), to.join(name)).expect("copy a lab file");
        }
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            to.join("id_ed25519"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("key mode");
        clone
    }

    /// The folder holding the topology.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The topology file.
    pub fn file(&self) -> PathBuf {
        self.path().join("infra.yaml")
    }

    /// The address of `host` (the example's numbering; unknown names get `.99`).
    pub fn address(&self, host: &str) -> String {
        let last = match host {
            "lb1" => 11,
            "lb2" => 12,
            "web1" => 21,
            "web2" => 22,
            "web3" => 23,
            "app1" => 31,
            "app2" => 32,
            "app3" => 33,
            "db1" => 41,
            "db2" => 42,
            "mon1" => 51,
            _ => 99,
        };
        format!("10.231.{}.{last}", self.octet)
    }

    /// `infra ARGS` in the topology's folder.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        infra()
            .current_dir(self.path())
            .args(args)
            .output()
            .expect("run infra")
    }

    /// The OpenSSH config `infra lab up` wrote.
    pub fn ssh_config(&self) -> PathBuf {
        self.path()
            .join(".infra/lab")
            .join(&self.name)
            .join("ssh_config")
    }

    /// Runs `command` on `host` with the lab's key and strict host-key checking.
    pub fn ssh(&self, host: &str, command: &str) -> std::process::Output {
        std::process::Command::new("ssh")
            .arg("-F")
            .arg(self.ssh_config())
            .arg(self.address(host))
            .arg(command)
            .output()
            .expect("ssh runs")
    }

    /// Like [`LabExample::ssh`], but failing the test unless it succeeds; returns stdout.
    pub fn ssh_ok(&self, host: &str, command: &str) -> String {
        let output = self.ssh(host, command);
        assert!(
            output.status.success(),
            "ssh {host} {command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// [`SNAPSHOT`] of `host`.
    pub fn snapshot(&self, host: &str) -> String {
        self.ssh_ok(host, SNAPSHOT)
    }
}

/// Checks `value` against `docs/<schema>`; references to the other schemas in docs/ are read
/// from the folder, never fetched.
pub fn check_schema(schema: &str, value: &serde_json::Value) {
    struct Docs;
    impl jsonschema::Retrieve for Docs {
        fn retrieve(
            &self,
            uri: &jsonschema::Uri<String>,
        ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
            let path = uri.path().as_str().to_owned();
            let name = path.rsplit('/').next().unwrap_or_default();
            let text = std::fs::read_to_string(root().join("docs").join(name))?;
            Ok(serde_json::from_str(&text)?)
        }
    }
    let text = std::fs::read_to_string(root().join("docs").join(schema)).expect("schema");
    let schema_value: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
    let validator = jsonschema::options()
        .with_retriever(Docs)
        .build(&schema_value)
        .unwrap_or_else(|error| panic!("docs/{schema} is not a usable schema: {error}"));
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|error| format!("{error} (at {})", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "does not match docs/{schema}: {errors:#?}\n{value}"
    );
}
