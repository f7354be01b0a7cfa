//! The exit codes: one table, which the code, `--help` and docs/cli.md all use.

/// How `infra` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success (for `plan --detailed-exitcode`: no changes).
    Success,
    /// An error: invalid topology, unreadable file, unreachable host, a config rejected by its
    /// check with nothing changed, stale plan, lock held.
    Error,
    /// `plan --detailed-exitcode` only: changes are present.
    ChangesPresent,
    /// A partial apply or destroy: some hosts failed after changes were made; the hosts'
    /// records say what was done.
    Partial,
    /// A usage error: unknown flag or command, missing or bad argument.
    Usage,
    /// Interrupted (Ctrl-C, SIGTERM, SIGHUP).
    Interrupted,
}

impl Exit {
    /// Every code, in order.
    pub const ALL: [Exit; 6] = [
        Exit::Success,
        Exit::Error,
        Exit::ChangesPresent,
        Exit::Partial,
        Exit::Usage,
        Exit::Interrupted,
    ];

    /// The process exit code. A usage error is never 2, which `--detailed-exitcode` uses.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Error => 1,
            Exit::ChangesPresent => 2,
            Exit::Partial => 3,
            Exit::Usage => 64,
            Exit::Interrupted => 130,
        }
    }

    /// What it means.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success (for `plan --detailed-exitcode`: no changes)",
            Exit::Error => {
                "error: invalid topology, unreachable host, rejected config, stale plan, lock held"
            }
            Exit::ChangesPresent => "`plan --detailed-exitcode` only: changes are present",
            Exit::Partial => "partial apply or destroy: some hosts failed after changes were made",
            Exit::Usage => "usage error: unknown flag or command, missing or bad argument",
            Exit::Interrupted => "interrupted (Ctrl-C, SIGTERM or SIGHUP)",
        }
    }
}

/// The table as `--help` shows it.
pub fn help_text() -> String {
    let mut text = String::from("Exit codes:\n");
    for exit in Exit::ALL {
        text.push_str(&format!("  {:<4} {}\n", exit.code(), exit.meaning()));
    }
    text.trim_end().to_owned()
}

/// The table as docs/cli.md shows it (Markdown); a test keeps the document current.
#[cfg(test)]
pub fn markdown_table() -> String {
    let mut text = String::from("| code | meaning |\n|---|---|\n");
    for exit in Exit::ALL {
        text.push_str(&format!("| {} | {} |\n", exit.code(), exit.meaning()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/cli.md shows the same table the code uses.
    #[test]
    fn the_documented_exit_codes_are_the_real_ones() {
        let docs = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md"),
        )
        .expect("docs/cli.md");
        assert!(
            docs.contains(&markdown_table()),
            "docs/cli.md's exit code table is not:\n{}",
            markdown_table()
        );
        assert!(help_text().contains("64   usage error"));
    }
}
