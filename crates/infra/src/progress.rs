//! Apply and destroy progress: indicatif bars on a terminal, timestamped lines otherwise,
//! or one JSON event per line (`--json`).

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use infra_exec::apply::{ApplyReporter, Event};

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
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{value}");
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
        match self {
            Progress::Lines { started } => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "[{:>7.2}s] {text}", started.elapsed().as_secs_f64());
            }
            Progress::Bars { multi, .. } => {
                let _ = multi.println(text);
            }
            Progress::Json => {}
        }
    }
}

fn timestamp() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl ApplyReporter for Progress {
    fn event(&self, event: Event) {
        match &event {
            Event::HostStarted { host, steps } => {
                if let Progress::Bars { multi, hosts, .. } = self {
                    let bar = multi.add(ProgressBar::new(u64::try_from(*steps).unwrap_or(0)));
                    bar.set_style(
                        ProgressStyle::with_template("  {prefix:<8} [{bar:20}] {pos}/{len} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    bar.set_prefix(host.clone());
                    if let Ok(mut hosts) = hosts.lock() {
                        hosts.insert(host.clone(), bar);
                    }
                }
                self.line(&format!("{host}: starting ({steps} steps)"));
                self.json(serde_json::json!({ "type": "apply_start", "host": host, "steps": steps, "timestamp": timestamp() }));
            }
            Event::Step { host, step, done } => {
                if let Progress::Bars { hosts, .. } = self
                    && let Some(bar) = hosts.lock().ok().and_then(|h| h.get(host).cloned())
                {
                    bar.set_position(u64::try_from(*done).unwrap_or(0));
                    bar.set_message(step.to_string());
                }
                self.line(&format!("{host}: {step}"));
                self.json(serde_json::json!({ "type": "apply_progress", "host": host, "step": step, "done": done, "timestamp": timestamp() }));
            }
            Event::HostDone { host, counts } => {
                if let Progress::Bars { hosts, total, .. } = self {
                    if let Some(bar) = hosts.lock().ok().and_then(|h| h.get(host).cloned()) {
                        bar.finish_with_message("done");
                    }
                    total.inc(1);
                }
                self.line(&format!(
                    "{host}: done ({} added, {} changed, {} destroyed)",
                    counts.0, counts.1, counts.2
                ));
                self.json(serde_json::json!({ "type": "apply_complete", "host": host, "added": counts.0, "changed": counts.1, "destroyed": counts.2, "timestamp": timestamp() }));
            }
            Event::HostFailed { host, error } => {
                if let Progress::Bars { hosts, total, .. } = self {
                    if let Some(bar) = hosts.lock().ok().and_then(|h| h.get(host).cloned()) {
                        bar.abandon_with_message("FAILED");
                    }
                    total.inc(1);
                }
                self.line(&format!("{host}: FAILED: {error}"));
                self.json(serde_json::json!({ "type": "apply_errored", "host": host, "error": error, "timestamp": timestamp() }));
            }
            Event::HostSkipped { host, reason } => {
                if let Progress::Bars { total, .. } = self {
                    total.inc(1);
                }
                self.line(&format!("{host}: skipped ({reason})"));
                self.json(serde_json::json!({ "type": "apply_skipped", "host": host, "reason": reason, "timestamp": timestamp() }));
            }
        }
    }
}
