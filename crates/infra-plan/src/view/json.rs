//! The plan's documented JSON form: Terraform-like `resource_changes` with action arrays, the
//! reloads and restarts, the program (waves of tasks, each task's steps), and the summary.

use serde_json::{Value, json};

use crate::plan::{Plan, PlanMode};

/// The JSON view of `plan` (`infra plan --json`, the `planned_changes` event).
pub fn view(plan: &Plan) -> Value {
    let changes: Vec<_> = plan.hosts.iter().flat_map(|h| &h.changes).collect();
    let summary = plan.summary();
    let program: Vec<Value> = plan
        .waves
        .iter()
        .map(|wave| {
            json!({
                "label": wave.label,
                "concurrency": wave.concurrency,
                "tasks": wave.tasks.iter().map(|task| json!({
                    "host": task.host,
                    "steps": task.steps.iter().map(|s| json!({
                        "step": s.kind.describe(),
                        "reason": s.reason,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let notes: Vec<Value> = plan
        .hosts
        .iter()
        .flat_map(|h| {
            h.notes
                .iter()
                .map(move |n| json!({ "host": h.host, "note": n }))
        })
        .collect();
    json!({
        "format_version": plan.format_version,
        "mode": match plan.mode {
            PlanMode::Apply => "apply",
            PlanMode::Destroy(_) => "destroy",
        },
        "topology": plan.topology,
        "resource_changes": changes,
        "triggered": plan.triggered(),
        "program": program,
        "notes": notes,
        "unreachable": plan.unreachable,
        "resolved": plan.resolved,
        "errored": !plan.unreachable.is_empty(),
        "diagnostics": plan.unreachable.iter().map(|u| json!({
            "severity": "error",
            "summary": format!("`{}` could not be planned", u.host),
            "detail": u.error,
            "host": u.host,
        })).collect::<Vec<_>>(),
        "summary": { "add": summary.add, "change": summary.change, "destroy": summary.destroy },
    })
}
