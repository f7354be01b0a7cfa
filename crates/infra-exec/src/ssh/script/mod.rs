//! The shell scripts the SSH transport sends: one per round trip, on stdin to `sh -s` as root.
//! Every value in them is shell-quoted ([`infra_plan::shell::quote`]) or was checked by a rule
//! when it was read; secrets travel only inside the scripts, never on a command line.
//!
//! Scripts answer with tab-separated lines that are parsed here and only here.

pub mod gather;
pub mod lock;
pub mod steps;

use infra_plan::shell::quote;
use infra_topology::Name;

/// Where `infra` keeps its own things on a host.
pub const STATE_ROOT: &str = infra_plan::record::STATE_ROOT;

/// The start of every script: strict, private files, a fixed locale.
const PRELUDE: &str =
    "set -u\numask 077\nexport LC_ALL=C DEBIAN_FRONTEND=noninteractive\nR=/var/lib/infra\n";

/// `replay JOURNAL` prints a record's journal as its current `+` lines: later lines win, `-`
/// lines remove, an owed restart is never lowered to a reload, and a last line cut by a crash
/// (no newline at its end) is left out. `replay JOURNAL compact` prints the whole record in
/// its shortest form, every line prefixed `record<TAB>` (so no line of a record can pass for
/// another part of an answer): the header, the last serial, `damaged<TAB>N` when N lines were
/// not record lines (unknown, or holding a control byte), and the current lines. One `awk`,
/// which reads the journal whole (so it sees whether the last line ended).
const RECORD_FUNCTIONS: &str = r#"replay() { awk -v RS='\001' -v mode="${2:-}" '
  function take(line,   f, k) {
    if (line ~ /[^\t -~]/) { bad++; return }
    split(line, f, "\t")
    if (f[1] == "serial") { serial = line; return }
    if (f[1] == "intent") { k = "install"; if (!(k in seen)) { seen[k] = 1; order[++n] = k }; v[k] = line; return }
    if (f[1] == "done") { delete v["install"]; return }
    if (substr(f[1], 1, 1) == "+") { k = substr(f[1], 2) "\t" f[2]; if (f[1] == "+owed" && (k in v) && v[k] ~ /\trestart$/) return; if (!(k in seen)) { seen[k] = 1; order[++n] = k }; v[k] = line; return }
    if (substr(f[1], 1, 1) == "-") { delete v[substr(f[1], 2) "\t" f[2]]; return }
    bad++
  }
  { text = text $0 }
  END {
    # A \001 byte split the journal into records: it is damaged.
    if (NR > 1) bad++
    # Whole, the journal ends with a newline and splits into an empty last piece; cut by a
    # crash, the last piece is the cut line. Either way it is left out.
    lines = split(text, line, "\n")
    for (i = 2; i < lines; i++) take(line[i])
    p = ""
    if (mode == "compact") {
      p = "record\t"
      if (line[1] ~ /[^\t -~]/) bad++
      if (lines > 1) { print p line[1]; if (serial != "") print p serial; if (bad) print p "damaged\t" bad }
    }
    for (i = 1; i <= n; i++) if (order[i] in v) print p v[order[i]]
  }' "$1"; }
"#;

/// The prelude plus the variables naming `topology`'s record and redacted copies.
fn prelude(topology: &Name) -> String {
    format!(
        "{PRELUDE}T={topology}\nJ=\"$R/record/$T\"\nD=\"$R/display/$T\"\n{RECORD_FUNCTIONS}",
        topology = quote(topology.as_str())
    )
}

/// Decodes a base64 field of an answer.
fn decode(field: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(field.trim())
        .map_err(|_| "a field that is not base64".to_owned())
}

/// Decodes a base64 field as text (lossily: it is shown, never executed).
fn decode_text(field: &str) -> Result<String, String> {
    decode(field).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Appends `text` as base64 lines inside a quoted here-document named `INFRA_DATA`.
fn heredoc(script: &mut String, bytes: &[u8]) {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    script.push_str("<<'INFRA_DATA'\n");
    for chunk in encoded.as_bytes().chunks(76) {
        script.push_str(&String::from_utf8_lossy(chunk));
        script.push('\n');
    }
    script.push_str("INFRA_DATA\n");
}

/// `script` with the body of every here-document (`<<'NAME'` ... `NAME`) replaced by a count of
/// its lines: file contents and SQL travel only in here-documents, so what is left holds no
/// secret and can be shown (`infra -v`).
pub fn without_data(script: &str) -> String {
    let mut shown = String::new();
    let mut inside: Option<(String, usize)> = None;
    for line in script.lines() {
        if let Some((delimiter, count)) = &mut inside {
            if line == delimiter {
                shown.push_str(&format!("  ({count} lines of data not shown)\n{line}\n"));
                inside = None;
            } else {
                *count += 1;
            }
            continue;
        }
        shown.push_str(line);
        shown.push('\n');
        if let Some(start) = line.rfind("<<'") {
            let name = &line[start + 3..];
            if let Some(end) = name.find('\'') {
                inside = Some((name[..end].to_owned(), 0));
            }
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn shown_scripts_leave_out_every_here_document() {
        let script = "set -u\nrun_sql <<'INFRA_SQL'\nALTER USER 'a'@'h' IDENTIFIED BY 's3cret''pw';\nINFRA_SQL\nbase64 -d > \"$t\" <<'INFRA_DATA'\nc2VjcmV0\nc2VjcmV0\nINFRA_DATA\nok\n";
        let shown = without_data(script);
        assert!(
            !shown.contains("s3cret") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
        assert!(
            shown.contains("run_sql <<'INFRA_SQL'\n  (1 lines of data not shown)\nINFRA_SQL\n"),
            "{shown}"
        );
        assert!(
            shown.contains("(2 lines of data not shown)\nINFRA_DATA\nok\n"),
            "{shown}"
        );
    }

    /// `replay FILE [MODE]` run by `sh`, its output.
    fn replay(file: &std::path::Path, mode: &str) -> String {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("{RECORD_FUNCTIONS}replay \"$1\" {mode}"))
            .arg("sh")
            .arg(file)
            .output()
            .expect("sh runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The journal replay in shell and the record parser in Rust agree.
    #[test]
    fn the_shell_replay_matches_the_record_parser() {
        let journal = "infra-record\t1\tt\tab\nserial\t2\n+package\thaproxy\n+file\t/etc/a\t0000000000000000000000000000000000000000000000000000000000000000\tplain\n\
            +owed\tx.service\trestart\n+owed\tx.service\treload\n-package\thaproxy\n+package\tnginx\n\
            intent\tinstall\tnginx\n+owed\ty.service\treload\n-owed\ty.service\nserial\t3\n+package\tcut";
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("journal");
        std::fs::write(&file, journal).expect("write");
        let replayed = replay(&file, "");
        let compacted = format!("infra-record\t1\tt\tab\nserial\t3\n{replayed}");
        let prefixed: String = compacted
            .lines()
            .map(|l| format!("record\t{l}\n"))
            .collect();
        assert_eq!(
            replay(&file, "compact"),
            prefixed,
            "the compact form is the header, the last serial and the current lines, prefixed"
        );
        let from_shell = infra_plan::record::parse(&compacted)
            .expect("parses")
            .expect("a record");
        let from_rust = infra_plan::record::parse(journal)
            .expect("parses")
            .expect("a record");
        assert_eq!(from_shell, from_rust, "shell replay:\n{replayed}");
        assert!(!replayed.contains("cut"), "a cut last line is dropped");
        // Whole, the same journal keeps its last line.
        std::fs::write(&file, format!("{journal}\n")).expect("write");
        assert!(replay(&file, "").contains("+package\tcut"));
    }

    /// A damaged or hostile journal is refused by the reader, never read as something else.
    #[test]
    fn a_damaged_journal_is_marked_for_the_reader_to_refuse() {
        let header = "infra-record\t1\tt\tab\nserial\t2\n";
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("journal");
        for body in [
            "record\tend\npackage\tevil\tii \t9\n+package\tnginx\n",
            "+package\tng\0inx\n",
            "+package\tng\u{1}inx\n",
            "bogus line\n",
        ] {
            std::fs::write(&file, format!("{header}{body}")).expect("write");
            let compact = replay(&file, "compact");
            assert!(
                compact.lines().all(|l| l.starts_with("record\t")),
                "{compact:?}"
            );
            let text: String = compact
                .lines()
                .filter_map(|l| l.strip_prefix("record\t"))
                .map(|l| format!("{l}\n"))
                .collect();
            assert!(
                infra_plan::record::parse(&text).is_err(),
                "{body:?} gave {compact:?}"
            );
        }
    }
}
