//! Everything `infra` prints goes through here: colour decided once, every secret value of the
//! topology replaced in every line (a host may echo one back in an error; a template error
//! may quote one), errors rendered one way (`error:` / `Caused by:` / `hint:`), and a closed
//! pipe (`infra schema | head -1`) ending the output quietly instead of a panic.

use std::io::{IsTerminal, Write};
use std::sync::{OnceLock, RwLock};

use anstyle::{AnsiColor, Style as Paint};

use crate::cli::ColorChoice;

/// Whether to colour output, decided once.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    stdout: bool,
    stderr: bool,
}

impl Style {
    /// `always`, `never`, or (`auto`) on a terminal when colour is allowed (no `NO_COLOR`, no
    /// `TERM=dumb`).
    pub fn new(choice: ColorChoice, allowed: bool) -> Style {
        let on = |terminal: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => allowed && terminal,
        };
        Style {
            stdout: on(std::io::stdout().is_terminal()),
            stderr: on(std::io::stderr().is_terminal()),
        }
    }

    /// The colour setting for a plan printed on standard output.
    pub fn plan_colour(self) -> infra_plan::view::text::Colour {
        if self.stdout {
            infra_plan::view::text::Colour::On
        } else {
            infra_plan::view::text::Colour::Off
        }
    }

    fn paint(self, paint: Paint, text: &str) -> String {
        if self.stderr {
            format!("{}{text}{}", paint.render(), paint.render_reset())
        } else {
            text.to_owned()
        }
    }

    /// Colours the leading `error:` / `warning:` of rendered diagnostics (on stderr).
    pub fn diagnostics(self, text: &str) -> String {
        if !self.stderr {
            return text.to_owned();
        }
        let error = Paint::new().bold().fg_color(Some(AnsiColor::Red.into()));
        let warning = Paint::new().bold().fg_color(Some(AnsiColor::Yellow.into()));
        text.lines()
            .map(|line| {
                if let Some(rest) = line.strip_prefix("error:") {
                    format!("{}{rest}", self.paint(error, "error:"))
                } else if let Some(rest) = line.strip_prefix("warning:") {
                    format!("{}{rest}", self.paint(warning, "warning:"))
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }
}

/// The secret values to keep out of every line printed.
static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();

/// Adds secret values to replace in everything printed from now on. A multi-line secret (a
/// private key) is replaced line by line too.
pub fn hide_secrets<'a>(values: impl IntoIterator<Item = &'a str>) {
    let lock = SECRETS.get_or_init(|| RwLock::new(Vec::new()));
    if let Ok(mut secrets) = lock.write() {
        for value in values {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            secrets.push(value.to_owned());
            for line in value.lines().map(str::trim) {
                if line.len() >= infra_topology::rules::MIN_SECRET_LENGTH
                    && !line.starts_with("-----")
                {
                    secrets.push(line.to_owned());
                }
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
    }
}

/// `text` with every known secret value replaced by `(sensitive value)`.
pub fn scrub(text: &str) -> String {
    let Some(lock) = SECRETS.get() else {
        return text.to_owned();
    };
    let Ok(secrets) = lock.read() else {
        return text.to_owned();
    };
    secrets.iter().fold(text.to_owned(), |text, secret| {
        if text.contains(secret.as_str()) {
            text.replace(secret.as_str(), infra_plan::PLACEHOLDER)
        } else {
            text
        }
    })
}

/// Writes `text` to standard output, scrubbed. A closed pipe is not an error: the reader has
/// what it wanted, and `infra` goes on (an apply still finishes its work) without printing.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(scrub(text).as_bytes())
        .and_then(|()| stdout.flush());
}

/// [`out`] with a line break.
pub fn outln(text: &str) {
    out(&format!("{text}\n"));
}

/// Writes `text` and a line break to standard error, scrubbed.
pub fn errln(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{}", scrub(text));
}

/// An error with what the user should do about it, printed as `hint: ...` after the causes.
#[derive(Debug)]
pub struct Hinted {
    /// What went wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
    /// The host it concerns, if one (for the JSON diagnostics).
    pub host: Option<String>,
}

impl Hinted {
    /// An error with a hint, ready for `anyhow::bail!`.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Hinted {
        Hinted {
            message: message.into(),
            hint: hint.into(),
            host: None,
        }
    }

    /// The same error, about `host`.
    pub fn on(mut self, host: &infra_topology::HostName) -> Hinted {
        self.host = Some(host.to_string());
        self
    }
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// The one error renderer: `error: ...`, each `Caused by: ...`, and a `hint: ...` if one was
/// attached; host text made visible, secrets replaced.
pub fn print_error(error: &anyhow::Error, style: Style) {
    let red = Paint::new().bold().fg_color(Some(AnsiColor::Red.into()));
    let clean = |text: &str| infra_topology::text::visible(&scrub(text)).into_owned();
    let mut text = format!(
        "{} {}",
        style.paint(red, "error:"),
        clean(&error.to_string())
    );
    for cause in error.chain().skip(1) {
        let cause = clean(&cause.to_string());
        let mut lines = cause.lines();
        if let Some(first) = lines.next() {
            text.push_str(&format!("\n  Caused by: {first}"));
        }
        for line in lines {
            text.push_str(&format!("\n    {line}"));
        }
    }
    let hinted = error
        .downcast_ref::<Hinted>()
        .or_else(|| error.chain().find_map(|c| c.downcast_ref::<Hinted>()));
    if let Some(hinted) = hinted {
        text.push_str(&format!("\nhint: {}", clean(&hinted.hint)));
    }
    errln(&text);
}

/// An error as a JSON diagnostic (Terraform's machine-readable shape): severity, summary,
/// detail (the causes and the hint), and the host it concerns when one is known. Host text
/// is made visible and secrets are replaced, as in the text.
pub fn error_diagnostic(error: &anyhow::Error) -> serde_json::Value {
    let clean = |text: &str| infra_topology::text::visible(&scrub(text)).into_owned();
    let hinted = error
        .downcast_ref::<Hinted>()
        .or_else(|| error.chain().find_map(|c| c.downcast_ref::<Hinted>()));
    let mut detail: Vec<String> = error
        .chain()
        .skip(1)
        .map(|cause| clean(&cause.to_string()))
        .collect();
    if let Some(hinted) = hinted {
        detail.push(format!("hint: {}", clean(&hinted.hint)));
    }
    let mut diagnostic = serde_json::json!({
        "severity": "error",
        "summary": clean(&error.to_string()),
        "detail": detail.join("\n"),
    });
    if let Some(host) = hinted.and_then(|h| h.host.as_ref()) {
        diagnostic["host"] = serde_json::Value::String(host.clone());
    }
    diagnostic
}

/// Prints diagnostics the way `output` wants them on stdout: one `{"diagnostics": [...]}`
/// document, or one `{"type": "diagnostic", ...}` line each; nothing for text (stderr has
/// them).
pub fn json_diagnostics(output: crate::settings::Output, diagnostics: Vec<serde_json::Value>) {
    use crate::settings::Output;
    match output {
        Output::Text => {}
        Output::Document => {
            outln(&serde_json::json!({ "diagnostics": diagnostics }).to_string());
        }
        Output::Events => {
            for mut diagnostic in diagnostics {
                diagnostic["type"] = serde_json::Value::String("diagnostic".to_owned());
                outln(&diagnostic.to_string());
            }
        }
    }
}

/// `println!` through [`outln`]: scrubbed, and quiet on a closed pipe.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::outln(&format!($($arg)*)) };
}

/// `eprintln!` through [`errln`]: scrubbed.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::errln(&format!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_in_everything_printed() {
        hide_secrets([
            "s3cret-value",
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\n-----END PRIVATE KEY-----\n",
        ]);
        assert_eq!(
            scrub("password s3cret-value refused"),
            "password (sensitive value) refused"
        );
        assert_eq!(
            scrub("key line MIIEvQIBADANBgkq"),
            "key line (sensitive value)"
        );
        assert_eq!(scrub("nothing here"), "nothing here");
    }
}
