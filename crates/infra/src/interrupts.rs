//! Ctrl-C, SIGTERM and SIGHUP for a run that changes hosts. Before any change (gathering, the
//! plan, the lock, the prompt) the run stops at once: it gives back the locks it took, closes
//! its connections and exits 130. Once changes run, the executor starts no new task and each
//! host finishes the round trip under way (a safe point: the host's record holds what was
//! done); a second signal says so again instead of leaving a host halfway.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use infra_exec::executor::Cancel;
use tokio::sync::Notify;

/// The run's view of signals.
#[derive(Clone, Default)]
pub struct Interrupts {
    changing: Arc<AtomicBool>,
    aborted: Arc<AtomicBool>,
    notify: Arc<Notify>,
    cancel: Cancel,
}

impl Interrupts {
    /// Starts watching the signals (call inside the runtime).
    pub fn watch(&self) -> tokio::task::JoinHandle<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let this = self.clone();
        tokio::spawn(async move {
            let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                    _ = hangup.recv() => {}
                }
                if this.changing.load(Ordering::SeqCst) {
                    let times = this.cancel.request();
                    if times == 1 {
                        crate::output::errln(
                            "\ninterrupted: no new host is started; the hosts under way finish their current step, then the run stops (their records keep what was done)",
                        );
                    } else {
                        crate::output::errln(
                            "\nstill stopping: waiting for the hosts under way to reach the end of their current step, so none is left halfway",
                        );
                    }
                } else {
                    this.aborted.store(true, Ordering::SeqCst);
                    this.notify.notify_waiters();
                }
            }
        })
    }

    /// From now on, a signal stops the run at the next safe point instead of at once.
    pub fn changes_begin(&self) {
        self.changing.store(true, Ordering::SeqCst);
    }

    /// Whether a signal came before changes began.
    pub fn aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// Waits for a signal that comes before changes begin.
    pub async fn abort_requested(&self) {
        loop {
            let notified = self.notify.notified();
            if self.aborted() {
                return;
            }
            notified.await;
        }
    }

    /// The executor's cancel flag.
    pub fn cancel(&self) -> Cancel {
        self.cancel.clone()
    }
}
