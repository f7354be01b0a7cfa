//! The plan as Markdown, for a pull-request comment or `$GITHUB_STEP_SUMMARY`: the counts per
//! host and action, what reloads or restarts, the rollouts, and each change with its diff
//! folded away. Built from the plan like the other views, so it holds no secret either.

use std::fmt::Write as _;

use infra_topology::text::visible_line;

use crate::plan::{Action, Concurrency, Plan, PlanMode};

/// Renders `plan` as Markdown.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let summary = plan.summary();
    let what = match plan.mode {
        PlanMode::Apply => "plan",
        PlanMode::Destroy(_) => "destroy plan",
    };
    let _ = writeln!(
        out,
        "### infra {what} for {}\n",
        code(plan.topology.as_str())
    );
    if !plan.unreachable.is_empty() {
        let _ = writeln!(
            out,
            "**Errored:** {} host(s) could not be planned:\n",
            plan.unreachable.len()
        );
        for host in &plan.unreachable {
            let _ = writeln!(out, "- {}: {}", code(host.host.as_str()), cell(&host.error));
        }
        out.push('\n');
    }
    if !plan.has_changes() {
        out.push_str("**No changes.** The hosts match the topology.\n");
        return out;
    }
    let _ = writeln!(
        out,
        "**Plan: {} to add, {} to change, {} to destroy.**\n",
        summary.add, summary.change, summary.destroy
    );
    out.push_str("| host | add | change | destroy | reloads and restarts |\n");
    out.push_str("|---|---:|---:|---:|---|\n");
    let triggered = plan.triggered();
    for host in &plan.hosts {
        let count = |action: Action| host.changes.iter().filter(|c| c.action() == action).count();
        let services: Vec<String> = triggered
            .iter()
            .filter(|t| t.host == host.host)
            .map(|t| format!("{} {}", t.action.verb(), t.unit))
            .collect();
        let (add, change, destroy) = (
            count(Action::Create),
            count(Action::Update),
            count(Action::Delete),
        );
        if add + change + destroy == 0 && services.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {add} | {change} | {destroy} | {} |",
            code(host.host.as_str()),
            cell(&services.join(", "))
        );
    }
    for wave in &plan.waves {
        if let Concurrency::Rolling {
            batch,
            max_unavailable,
        } = wave.concurrency
        {
            let hosts: Vec<String> = wave.tasks.iter().map(|t| code(t.host.as_str())).collect();
            let _ = writeln!(
                out,
                "\nRollout of {}: {batch} at a time (at most {max_unavailable} out of service): {}.",
                cell(&wave.label),
                hosts.join(", ")
            );
        }
    }
    out.push_str("\n<details><summary>Changes</summary>\n\n");
    for change in plan
        .hosts
        .iter()
        .flat_map(|h| &h.changes)
        .filter(|c| c.action() != Action::NoOp)
    {
        let verb = match change.action() {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "destroy",
            Action::NoOp => "keep",
        };
        let _ = writeln!(out, "- {verb} {}", code(&change.address));
        if let Some(diff) = &change.diff {
            out.push_str("\n  ```diff\n");
            for line in diff.lines() {
                let _ = writeln!(out, "  {}", fenced(line));
            }
            out.push_str("  ```\n");
        }
    }
    out.push_str("\n</details>\n");
    out
}

/// Text made safe inside a table cell or a line of Markdown: control characters shown, the
/// characters that would end a cell or start markup escaped.
fn cell(text: &str) -> String {
    let mut out = String::new();
    for c in visible_line(text).chars() {
        if matches!(c, '|' | '`' | '<' | '>' | '*' | '_' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text as inline code: control characters shown, `|` escaped (a table would split on it even
/// inside code), and a longer fence when it holds a backtick.
fn code(text: &str) -> String {
    let shown = visible_line(text).replace('|', "\\|");
    if shown.contains('`') {
        format!("`` {shown} ``")
    } else {
        format!("`{shown}`")
    }
}

/// A diff line inside a fenced block: shown as it is, except that it cannot close the fence.
fn fenced(line: &str) -> String {
    visible_line(line).replace("```", "`\u{200b}``")
}
