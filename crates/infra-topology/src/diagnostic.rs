//! Errors and warnings about a topology, with where they are and what to do.

use std::fmt::Write as _;

use crate::source::{Position, SourceFile};
use crate::text::{visible, visible_line};

/// At most this many findings are shown; the rest are counted. A file with thousands of
/// mistakes is fixed from the top, and printing them all would bury the first.
pub const SHOWN_LIMIT: usize = 50;

/// How serious a finding is: errors make the topology invalid, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The topology cannot be used.
    Error,
    /// The topology works but is probably not what was meant.
    Warning,
}

/// One finding about the topology, pointing at the place in the file it is about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where in the file; [`Position::UNKNOWN`] for the file as a whole.
    #[serde(skip)]
    pub position: Position,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// What was expected instead, when that can be said.
    pub expected: Option<String>,
    /// What the user can do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `position`.
    pub fn error(position: Position, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            position,
            message: message.into(),
            expected: None,
            hint: None,
        }
    }

    /// A warning at `position`.
    pub fn warning(position: Position, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(position, message)
        }
    }

    /// Adds what was expected.
    pub fn expected(&mut self, expected: impl Into<String>) -> &mut Diagnostic {
        self.expected = Some(expected.into());
        self
    }

    /// Adds a hint.
    pub fn hint(&mut self, hint: impl Into<String>) -> &mut Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// Renders the diagnostic as the user reads it: the message, `--> file:line:col`,
    /// the source line with a caret, then `= expected` and `= hint` lines.
    pub fn render(&self, source: &SourceFile) -> String {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!("{label}: {}\n", visible_line(&self.message));
        let _ = writeln!(
            out,
            "  --> {}",
            visible_line(&source.locate(self.position).to_string())
        );
        if let Some(line) = source.line(self.position.line) {
            let number = self.position.line.to_string();
            let gutter = " ".repeat(number.len());
            let caret_offset = usize::try_from(self.position.column.saturating_sub(1)).unwrap_or(0);
            // The caret lines up under the shown text, in which a control character takes
            // the width of its escape.
            let before: String = line.chars().take(caret_offset).collect();
            let pad: String = visible_line(&before)
                .chars()
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(out, "{gutter} |");
            let _ = writeln!(out, "{number} | {}", visible_line(line));
            let _ = writeln!(out, "{gutter} | {pad}^");
        }
        if let Some(expected) = &self.expected {
            let _ = writeln!(out, "  = expected: {}", visible(expected));
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = hint: {}", visible(hint));
        }
        out
    }
}

/// All findings about one topology file, in file order.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Adds a finding.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// Adds a finding and returns it so the caller can add an expectation or a hint.
    pub fn push_mut(&mut self, diagnostic: Diagnostic) -> &mut Diagnostic {
        self.items.push(diagnostic);
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    /// True when at least one finding is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// The number of errors (each distinct finding once).
    pub fn error_count(&self) -> usize {
        self.sorted()
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// The number of warnings (each distinct finding once).
    pub fn warning_count(&self) -> usize {
        self.sorted()
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// The distinct findings sorted by position (stable for equal positions): the same finding
    /// made twice at the same place is reported once.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut items: Vec<&Diagnostic> = self.items.iter().collect();
        items.sort_by(|a, b| {
            a.position
                .cmp(&b.position)
                .then_with(|| a.message.cmp(&b.message))
                .then_with(|| a.severity.cmp(&b.severity))
        });
        items.dedup_by(|a, b| {
            a.position == b.position && a.message == b.message && a.severity == b.severity
        });
        items.sort_by_key(|d| d.position);
        items
    }

    /// True when there is nothing to report.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Renders the first [`SHOWN_LIMIT`] findings, then how many more there are.
    pub fn render(&self, source: &SourceFile) -> String {
        let sorted = self.sorted();
        let mut out = String::new();
        for diagnostic in sorted.iter().take(SHOWN_LIMIT) {
            out.push_str(&diagnostic.render(source));
            out.push('\n');
        }
        if sorted.len() > SHOWN_LIMIT {
            let _ = writeln!(
                out,
                "... and {} more findings not shown ({} in all): fix the ones above first\n",
                sorted.len() - SHOWN_LIMIT,
                sorted.len()
            );
        }
        out
    }
}

impl Diagnostics {
    /// The findings as JSON, Terraform's machine-readable shape: severity, summary, detail
    /// (what was expected, the hint), and the range (file, line, column) when there is one;
    /// the first [`SHOWN_LIMIT`] of them, as the text shows.
    pub fn to_json(&self, source: &SourceFile) -> Vec<serde_json::Value> {
        self.sorted()
            .into_iter()
            .take(SHOWN_LIMIT)
            .map(|d| {
                let detail: Vec<String> = [
                    d.expected.as_ref().map(|e| format!("expected: {e}")),
                    d.hint.as_ref().map(|h| format!("hint: {h}")),
                ]
                .into_iter()
                .flatten()
                .map(|line| crate::text::visible(&line).into_owned())
                .collect();
                let mut json = serde_json::json!({
                    "severity": match d.severity {
                        Severity::Error => "error",
                        Severity::Warning => "warning",
                    },
                    "summary": crate::text::visible(&d.message),
                    "detail": detail.join("\n"),
                });
                if d.position.line > 0 {
                    json["range"] = serde_json::json!({
                        "filename": source.path().display().to_string(),
                        "start": { "line": d.position.line, "column": d.position.column },
                    });
                }
                json
            })
            .collect()
    }
}

impl Extend<Diagnostic> for Diagnostics {
    fn extend<T: IntoIterator<Item = Diagnostic>>(&mut self, iter: T) {
        self.items.extend(iter);
    }
}
