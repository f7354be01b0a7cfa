//! Progress of apply and destroy: indicatif bars on a terminal, timestamped lines otherwise, or
//! one JSON event per line (`--json`). Every line goes through the output's scrubbing.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use infra_exec::executor::{Event, Reporter};

use crate::output;

/// How progress is shown.
pub enum Progress {
    /// Bars on a terminal.
    Bars {
        /// The bars.
        multi: MultiProgress,
        /// One per host.
        hosts: Mutex<BTreeMap<String, ProgressBar>>,
        /// The total.
        total: ProgressBar,
    },
    /// Timestamped lines.
    Lines {
        /// When the run started.
        started: Instant,
    },
    /// JSON events.
    Json,
}

impl Progress {
    /// Bars when stdout is a terminal (and not JSON), lines otherwise.
    pub fn new(json: bool, hosts: usize) -> Progress {
        if json {
            return Progress::Json;
        }
        if std::io::stdout().is_terminal() {
            // Hidden until `start`: nothing may draw over the plan or the confirmation prompt.
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
            let total = multi.add(ProgressBar::new(u64::try_from(hosts).unwrap_or(0)));
            total.set_style(
                ProgressStyle::with_template("{spinner} total {pos}/{len} hosts {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Progress::Bars {
                multi,
                hosts: Mutex::new(BTreeMap::new()),
                total,
            }
        } else {
            Progress::Lines {
                started: Instant::now(),
            }
        }
    }

    /// Writes one JSON event line (only in JSON mode).
    pub fn json(&self, value: serde_json::Value) {
        if matches!(self, Progress::Json) {
            output::outln(&value.to_string());
        }
    }

    /// Shows the bars (once the plan is approved and work begins).
    pub fn start(&self) {
        if let Progress::Bars { multi, total, .. } = self {
            multi.set_draw_target(ProgressDrawTarget::stderr());
            total.reset_elapsed();
            total.enable_steady_tick(std::time::Duration::from_millis(120));
        }
    }

    /// Removes the bars before the summary is printed.
    pub fn finish(&self) {
        if let Progress::Bars { total, multi, .. } = self {
            total.finish_and_clear();
            let _ = multi.clear();
        }
    }

    fn line(&self, text: &str) {
        let text = infra_topology::text::visible(&output::scrub(text)).into_owned();
        match self {
            Progress::Lines { started } => {
                output::outln(&format!(
                    "[{:>7.2}s] {text}",
                    started.elapsed().as_secs_f64()
                ));
            }
            Progress::Bars { multi, .. } => {
                let _ = multi.println(text);
            }
            Progress::Json => {}
        }
    }

    fn bar(&self, host: &str) -> Option<ProgressBar> {
        match self {
            Progress::Bars { hosts, .. } => hosts.lock().ok().and_then(|h| h.get(host).cloned()),
            Progress::Lines { .. } | Progress::Json => None,
        }
    }
}

fn timestamp() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Reporter for Progress {
    fn event(&self, event: Event) {
        match &event {
            Event::TaskStarted { host, wave, steps } => {
                if let Progress::Bars { multi, hosts, .. } = self {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {prefix:<10} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(host.to_string());
                    bar.set_message(format!("{wave}: {} steps", steps.len()));
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    if let Ok(mut hosts) = hosts.lock() {
                        hosts.insert(host.to_string(), bar);
                    }
                }
                self.line(&format!("{host}: {wave} ({} steps)", steps.len()));
                self.json(serde_json::json!({ "type": "apply_start", "host": host, "wave": wave, "steps": steps, "timestamp": timestamp() }));
            }
            Event::TaskDone { host, wave } => {
                if let Some(bar) = self.bar(host.as_str()) {
                    bar.set_message(format!("{wave}: done"));
                }
                self.line(&format!("{host}: {wave} done"));
                self.json(serde_json::json!({ "type": "apply_progress", "host": host, "wave": wave, "timestamp": timestamp() }));
            }
            Event::HostDone { host, counts } => {
                if let Some(bar) = self.bar(host.as_str()) {
                    bar.finish_with_message("done");
                }
                if let Progress::Bars { total, .. } = self {
                    total.inc(1);
                }
                self.line(&format!(
                    "{host}: done ({} added, {} changed, {} destroyed)",
                    counts.added, counts.changed, counts.destroyed
                ));
                self.json(serde_json::json!({ "type": "apply_complete", "host": host, "added": counts.added, "changed": counts.changed, "destroyed": counts.destroyed, "timestamp": timestamp() }));
            }
            Event::TaskFailed { host, error } => {
                if let Some(bar) = self.bar(host.as_str()) {
                    bar.abandon_with_message("FAILED");
                }
                if let Progress::Bars { total, .. } = self {
                    total.inc(1);
                }
                self.line(&format!("{host}: FAILED: {error}"));
                self.json(serde_json::json!({ "type": "apply_errored", "host": host, "error": output::scrub(error), "timestamp": timestamp() }));
            }
            Event::RolledBack {
                host,
                undone,
                failed,
            } => {
                match failed {
                    None => self.line(&format!(
                        "{host}: undid {undone} steps: the previous files are back"
                    )),
                    Some(why) => self.line(&format!("{host}: undoing stopped short: {why}")),
                }
                self.json(serde_json::json!({ "type": "rollback", "host": host, "undone": undone, "failed": failed.as_deref().map(output::scrub), "timestamp": timestamp() }));
            }
            Event::TaskSkipped { host, reason } => {
                if let Progress::Bars { total, .. } = self {
                    total.inc(1);
                }
                self.line(&format!("{host}: skipped ({reason})"));
                self.json(serde_json::json!({ "type": "apply_skipped", "host": host, "reason": reason, "timestamp": timestamp() }));
            }
        }
    }
}
