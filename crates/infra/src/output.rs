//! How errors and findings look on the terminal, with or without colour.

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style as Paint};

/// Whether to colour output, decided once from `--no-color`, `NO_COLOR` and the terminal.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    colour: bool,
}

impl Style {
    /// Colour only on a terminal, and never with `--no-color` or `NO_COLOR` set.
    pub fn detect(no_color: bool) -> Style {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            colour: !no_color && !no_color_env && std::io::stderr().is_terminal(),
        }
    }

    /// Whether standard output may be coloured (a terminal, and colour not turned off).
    pub fn colour_stdout(self) -> bool {
        self.colour && std::io::stdout().is_terminal()
    }

    /// The colour setting for a plan printed on standard output.
    pub fn plan_colour(self) -> infra_plan::show::Colour {
        if self.colour_stdout() {
            infra_plan::show::Colour::On
        } else {
            infra_plan::show::Colour::Off
        }
    }

    fn paint(self, paint: Paint, text: &str) -> String {
        if self.colour {
            format!("{}{text}{}", paint.render(), paint.render_reset())
        } else {
            text.to_owned()
        }
    }

    /// Colours the leading `error:` / `warning:` of rendered diagnostics.
    pub fn diagnostics(self, text: &str) -> String {
        if !self.colour {
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

/// An error with what the user should do about it, printed as `hint: ...` after the causes.
#[derive(Debug)]
pub struct Hinted {
    /// What went wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

impl Hinted {
    /// An error with a hint, ready for `anyhow::bail!`.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Hinted {
        Hinted {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// Prints `error: ...`, each `Caused by: ...`, and a `hint: ...` if one was attached.
pub fn print_error(error: &anyhow::Error, style: Style) {
    let red = Paint::new().bold().fg_color(Some(AnsiColor::Red.into()));
    let mut stderr = anstream::stderr().lock();
    let _ = writeln!(stderr, "{} {error}", style.paint(red, "error:"));
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        let mut lines = text.lines();
        if let Some(first) = lines.next() {
            let _ = writeln!(stderr, "  Caused by: {first}");
        }
        for line in lines {
            let _ = writeln!(stderr, "    {line}");
        }
    }
    let hinted = error
        .downcast_ref::<Hinted>()
        .or_else(|| error.chain().find_map(|c| c.downcast_ref::<Hinted>()));
    if let Some(hinted) = hinted {
        let _ = writeln!(stderr, "hint: {}", hinted.hint);
    }
}
