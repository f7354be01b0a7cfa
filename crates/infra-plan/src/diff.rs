//! Unified diffs of file contents, with secrets kept out.

use similar::TextDiff;

use crate::desired::ManagedFile;

/// A unified diff from `old` to `new` with three lines of context.
pub fn unified(path: &str, old: &str, new: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{path} (now)"), &format!("{path} (wanted)"))
        .to_string()
}

/// The host's current content of a sensitive file, made safe to show: every line that
/// corresponds to a secret-bearing line of the template (same text before the placeholder) is
/// replaced by the placeholder line, and any line holding a current secret value is too.
pub fn redact_old(old: &str, file: &ManagedFile) -> String {
    let Some(display) = &file.display else {
        return crate::PLACEHOLDER.to_owned();
    };
    let real = String::from_utf8_lossy(&file.content);
    // Lines whose redacted and real forms differ carry a secret.
    let secret_lines: Vec<(&str, &str)> = display
        .lines()
        .zip(real.lines())
        .filter(|(shown, actual)| shown != actual)
        .collect();
    let prefixes: Vec<(&str, &str)> = secret_lines
        .iter()
        .filter_map(|(shown, _)| {
            shown
                .find(crate::PLACEHOLDER)
                .map(|i| (&shown[..i], *shown))
        })
        .filter(|(prefix, _)| !prefix.trim().is_empty())
        .collect();
    let values: Vec<&str> = secret_lines.iter().map(|(_, actual)| *actual).collect();
    let mut out = String::new();
    for line in old.lines() {
        let replaced = prefixes
            .iter()
            .find(|(prefix, _)| line.starts_with(prefix))
            .map(|(_, shown)| *shown)
            .or_else(|| values.contains(&line).then_some(crate::PLACEHOLDER));
        out.push_str(replaced.unwrap_or(line));
        out.push('\n');
    }
    out
}
