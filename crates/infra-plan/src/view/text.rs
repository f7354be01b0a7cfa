//! A plan as a person reads it: Terraform's symbols and phrasing, diffs of changed files, and
//! the reloads and restarts the changes cause. Every value that came from a host or the
//! topology is made visible (control characters escaped) before it is printed.

use std::fmt::Write as _;

use infra_topology::text::{visible, visible_line};
use serde_json::Value;

use crate::plan::{Action, Concurrency, Plan, PlanMode, ResourceChange, StepKind};

/// Colour or not (decided once by the caller: terminal, `--color`, `NO_COLOR`).
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

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{}\"", visible_line(s)),
        other => visible_line(&other.to_string()).into_owned(),
    }
}

fn attributes(change: &ResourceChange) -> Vec<String> {
    let mut lines = Vec::new();
    let Value::Object(after) = &change.after else {
        if let Value::Object(before) = &change.before {
            for (key, value) in before {
                lines.push(format!("- {key} = {}", shown(value)));
            }
        }
        return lines;
    };
    for (key, value) in after {
        // Content is shown as a diff; sensitive values only as a placeholder, below.
        if key == "content" || change.after_sensitive.get(key).is_some() {
            continue;
        }
        match change.before.get(key) {
            Some(old) if old != value => {
                lines.push(format!("~ {key} = {} -> {}", shown(old), shown(value)));
            }
            Some(_) => {}
            None => lines.push(format!("+ {key} = {}", shown(value))),
        }
    }
    lines
}

/// Renders the plan as text: each changing resource, its attributes and diff, the reloads it
/// causes, the notes, hosts that could not be reached, and the summary line.
pub fn text(plan: &Plan, colour: Colour) -> String {
    let mut out = String::new();
    let summary = plan.summary();
    let triggered = plan.triggered();
    if !plan.resolved.is_empty() {
        out.push_str("Host names resolved (the plan uses these addresses):\n");
        for resolved in &plan.resolved {
            let _ = writeln!(
                out,
                "  {}: {} {} is {}",
                resolved.host,
                resolved.key,
                visible_line(&resolved.name),
                resolved.address
            );
        }
        out.push('\n');
    }
    if plan.has_changes() {
        out.push_str("infra will perform the following actions:\n");
    }
    for host in &plan.hosts {
        let changing: Vec<&ResourceChange> = host
            .changes
            .iter()
            .filter(|c| c.action() != Action::NoOp)
            .collect();
        let host_triggers: Vec<_> = triggered.iter().filter(|t| t.host == host.host).collect();
        if changing.is_empty() && host_triggers.is_empty() && host.notes.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{}",
            colour.paint("1", &format!("# host {}", host.host))
        );
        for change in changing {
            let (sign, code, phrase) = symbol(change.action());
            let _ = writeln!(out, "\n  # {} {phrase}", visible_line(&change.address));
            if let Some(note) = &change.note {
                let _ = writeln!(out, "  # ({})", visible_line(note));
            }
            let _ = writeln!(
                out,
                "  {} {} \"{}\" {{",
                colour.paint(code, sign),
                change.kind.key(),
                visible_line(&change.name)
            );
            for line in attributes(change) {
                let _ = writeln!(out, "      {line}");
            }
            for key in change
                .after_sensitive
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                let _ = writeln!(out, "      {key} = {}", crate::PLACEHOLDER);
            }
            if let Some(diff) = &change.diff {
                for line in visible(diff).lines() {
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
        for trigger in host_triggers {
            let _ = writeln!(
                out,
                "\n  # will {} {} ({})",
                trigger.action.verb(),
                trigger.unit,
                visible_line(&trigger.because)
            );
        }
        for note in &host.notes {
            let _ = writeln!(out, "\n  # note: {}", visible_line(note));
        }
    }
    rollouts(plan, colour, &mut out);
    for unreachable in &plan.unreachable {
        let _ = writeln!(
            out,
            "\n{} host `{}` could not be planned: {}",
            colour.paint("31;1", "error:"),
            unreachable.host,
            visible(&unreachable.error)
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
        let phrase = match plan.mode {
            PlanMode::Apply => "Your infrastructure matches the topology.",
            PlanMode::Destroy(_) => "Nothing of `infra`'s is left to destroy.",
        };
        let _ = writeln!(out, "\n{} {phrase}", colour.paint("32;1", "No changes."));
    }
    out
}

/// The rolling waves: which hosts restart, how many at once, and what each waits for.
fn rollouts(plan: &Plan, colour: Colour, out: &mut String) {
    for wave in &plan.waves {
        let Concurrency::Rolling {
            batch,
            max_unavailable,
        } = wave.concurrency
        else {
            continue;
        };
        let hosts: Vec<String> = wave.tasks.iter().map(|t| t.host.to_string()).collect();
        let mut gates: Vec<String> = Vec::new();
        for step in wave.tasks.iter().flat_map(|t| &t.steps) {
            if let StepKind::WaitHealthy {
                unit,
                gate,
                timeout_seconds,
            } = &step.kind
            {
                let gate = format!(
                    "{unit}: {} within {timeout_seconds} s",
                    visible_line(&gate.describe())
                );
                if !gates.contains(&gate) {
                    gates.push(gate);
                }
            }
        }
        let _ = writeln!(
            out,
            "\n{} {}: {} at a time (at most {max_unavailable} out of service): {}",
            colour.paint("1", "Rollout of"),
            wave.label,
            if batch == 1 {
                "one host".to_owned()
            } else {
                format!("{batch} hosts")
            },
            hosts.join(", then ")
        );
        let _ = writeln!(
            out,
            "  each restarted host must pass {} before the next starts; the first that does not gets its previous files back and stops the rollout",
            gates.join(" and ")
        );
    }
}
