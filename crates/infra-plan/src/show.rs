//! A plan as a person reads it: Terraform's symbols and phrasing, diffs of changed files.

use std::fmt::Write as _;

use serde_json::Value;

use crate::plan::{Action, Plan, ResourceChange, ResourceKind};

/// Colour or not (decided once by the caller: terminal, `--no-color`, `NO_COLOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// ANSI colours.
    On,
    /// Plain text.
    Off,
}

impl Colour {
    fn paint(self, code: &str, text: &str) -> String {
        match self {
            Colour::On => format!("\x1b[{code}m{text}\x1b[0m"),
            Colour::Off => text.to_owned(),
        }
    }
}

fn symbol(action: Action) -> (&'static str, &'static str, &'static str) {
    match action {
        Action::Create => ("+", "32", "will be created"),
        Action::Update => ("~", "33", "will be updated in-place"),
        Action::Delete => ("-", "31", "will be destroyed"),
        Action::NoOp => (" ", "0", "is up to date"),
    }
}

fn attributes(change: &ResourceChange) -> Vec<String> {
    let mut lines = Vec::new();
    let (Value::Object(after), before) = (&change.after, &change.before) else {
        return lines;
    };
    for (key, value) in after {
        if key == "content" {
            continue;
        }
        let old = before.get(key);
        let shown = |v: &Value| match v {
            Value::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        match old {
            Some(old) if old != value => {
                lines.push(format!("~ {key} = {} -> {}", shown(old), shown(value)))
            }
            Some(_) => {}
            None if change.action() == Action::Create => {
                lines.push(format!("+ {key} = {}", shown(value)))
            }
            None => lines.push(format!("+ {key} = {}", shown(value))),
        }
    }
    lines
}

/// Renders the plan as text: each changing resource, its attributes and diff, the reloads it
/// causes, hosts that could not be reached, and the summary line.
pub fn text(plan: &Plan, colour: Colour) -> String {
    let mut out = String::new();
    let summary = plan.summary();
    if plan.has_changes() {
        out.push_str("infra will perform the following actions:\n");
    }
    for host in &plan.hosts {
        let changing: Vec<&ResourceChange> = host
            .changes
            .iter()
            .filter(|c| c.action() != Action::NoOp)
            .collect();
        if changing.is_empty() && host.triggered.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{}",
            colour.paint("1", &format!("# host {}", host.host))
        );
        for change in changing {
            let (sign, code, phrase) = symbol(change.action());
            let _ = writeln!(out, "\n  # {} {phrase}", change.address);
            let _ = writeln!(
                out,
                "  {} {} \"{}\" {{",
                colour.paint(code, sign),
                change.kind.key(),
                change.name
            );
            for line in attributes(change) {
                let _ = writeln!(out, "      {line}");
            }
            if change.after_sensitive.get("content").is_some() {
                let _ = writeln!(out, "      content = (sensitive value)");
            }
            if change.after_sensitive.get("password").is_some()
                && change.kind == ResourceKind::DatabaseUser
            {
                let _ = writeln!(out, "      password = (sensitive value)");
            }
            if let Some(diff) = &change.diff {
                for line in diff.lines() {
                    let painted = if line.starts_with('+') && !line.starts_with("+++") {
                        colour.paint("32", line)
                    } else if line.starts_with('-') && !line.starts_with("---") {
                        colour.paint("31", line)
                    } else {
                        line.to_owned()
                    };
                    let _ = writeln!(out, "        {painted}");
                }
            }
            let _ = writeln!(out, "    }}");
        }
        for triggered in &host.triggered {
            let verb = match triggered.trigger {
                crate::Trigger::Reload => "reload",
                crate::Trigger::Restart => "restart",
            };
            let _ = writeln!(
                out,
                "\n  # will {verb} {} (changed: {})",
                triggered.unit,
                triggered.because.join(", ")
            );
        }
    }
    for unreachable in &plan.unreachable {
        let _ = writeln!(
            out,
            "\n{} host `{}` could not be planned: {}",
            colour.paint("31;1", "error:"),
            unreachable.host,
            unreachable.error
        );
    }
    if plan.has_changes() {
        let _ = writeln!(
            out,
            "\n{} {} to add, {} to change, {} to destroy.",
            colour.paint("1", "Plan:"),
            summary.add,
            summary.change,
            summary.destroy
        );
    } else if plan.unreachable.is_empty() {
        let _ = writeln!(
            out,
            "\n{} Your infrastructure matches the topology.",
            colour.paint("32;1", "No changes.")
        );
    }
    out
}
