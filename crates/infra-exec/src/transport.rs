//! How `infra` talks to a host: gather its facts, run a task's steps, take and give back its
//! lock. Two implementations: SSH ([`crate::ssh`]) for real hosts, and an in-memory fake host
//! ([`crate::fake`]) for unit tests of ordering, failures and interruptions.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use infra_plan::ManagedFile;
use infra_plan::facts::{GatherRequest, HostFacts};
use infra_plan::hash::Sha256;
use infra_plan::lock::{LockFact, LockHolder, LockId};
use infra_plan::plan::{ContentId, Step};
use infra_topology::{HostName, Name, RemotePath, Secret, SqlName};

/// A boxed future, for the trait's methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One connected host.
pub trait Transport: Send + Sync {
    /// The host.
    fn host(&self) -> &HostName;

    /// Gathers the facts `request` asks for, plus everything the host's record names and who
    /// holds its lock: one round trip.
    fn gather<'a>(
        &'a self,
        request: &'a GatherRequest,
    ) -> BoxFuture<'a, Result<HostFacts, HostError>>;

    /// Runs a task's steps in order, stopping at the first that does not succeed: one round trip.
    fn run<'a>(&'a self, job: &'a Job<'a>) -> BoxFuture<'a, Result<JobReport, HostError>>;

    /// Takes, renews or gives back the host's lock: one round trip.
    fn lock<'a>(&'a self, request: &'a LockRequest)
    -> BoxFuture<'a, Result<LockAnswer, HostError>>;

    /// Remote commands run so far (each one round trip).
    fn round_trips(&self) -> usize;

    /// Ends the connection (later calls fail as unreachable).
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// Opens transports.
pub trait Connector: Send + Sync {
    /// Connects to `host`.
    fn connect<'a>(
        &'a self,
        host: &'a infra_topology::Host,
    ) -> BoxFuture<'a, Result<std::sync::Arc<dyn Transport>, HostError>>;
}

/// A task ready to run: its steps, and what they refer to.
pub struct Job<'a> {
    /// The topology (whose record the steps write).
    pub topology: &'a Name,
    /// The lock the run holds (every job checks it is still the holder).
    pub lock: &'a LockId,
    /// The steps.
    pub steps: &'a [Step],
    /// The contents the steps write, by identity.
    pub contents: &'a BTreeMap<ContentId, &'a ManagedFile>,
    /// The database passwords the steps use, by account name.
    pub passwords: &'a BTreeMap<SqlName, Secret>,
    /// Each file precondition resolved to what the host must hold now.
    pub expected: &'a BTreeMap<RemotePath, Expected>,
}

/// What a file must be when a step that expects something runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Nothing there.
    Absent,
    /// Something that is not a regular file.
    Other,
    /// A regular file with this content.
    Content(Sha256),
    /// Anything.
    Any,
}

/// How a job's steps went, in order (steps after the first that did not succeed did not run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    /// One outcome per step that ran.
    pub outcomes: Vec<StepOutcome>,
}

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Done.
    Done,
    /// A checker rejected the file; its output.
    Rejected {
        /// What the checker printed.
        output: String,
    },
    /// The host is not what the plan expected (a file changed since); nothing was changed.
    Stale {
        /// What differs.
        detail: String,
    },
    /// It failed.
    Failed {
        /// Why.
        message: String,
    },
    /// The run's lock is no longer held on this host (someone forced it): nothing was changed.
    LockLost,
}

impl StepOutcome {
    /// The outcome in words.
    pub fn describe(&self) -> String {
        match self {
            StepOutcome::Done => "done".to_owned(),
            StepOutcome::Rejected { output } => format!("rejected: {output}"),
            StepOutcome::Stale { detail } => format!("stale: {detail}"),
            StepOutcome::Failed { message } => message.clone(),
            StepOutcome::LockLost => "the lock was lost".to_owned(),
        }
    }
}

/// A lock operation.
#[derive(Debug, Clone)]
pub enum LockRequest {
    /// Take the lock, if the host's record still has `serial` (`None`: no record; the outer
    /// `None`: any serial).
    Acquire {
        /// The holder (its times are set by the host's clock).
        holder: LockHolder,
        /// Seconds the lease lasts.
        lease: u64,
        /// The serial the host's record must have.
        serial: Option<Option<u64>>,
        /// The topology whose record is checked.
        topology: Name,
    },
    /// Push the lease on.
    Renew {
        /// The lock.
        id: LockId,
        /// Seconds from now.
        lease: u64,
    },
    /// Give it back (only if it is ours).
    Release {
        /// The lock.
        id: LockId,
    },
}

/// What a lock operation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAnswer {
    /// Taken (or renewed).
    Acquired,
    /// Someone else holds it.
    Held(LockFact),
    /// Taken and given back at once: the record's serial moved since the plan (another run
    /// changed the host).
    SerialMoved {
        /// The serial now.
        now: Option<u64>,
    },
    /// Given back.
    Released,
    /// Not held by this ID (nothing done).
    NotHolder(Option<LockFact>),
}

/// Why something failed on one host.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostError {
    /// It could not be reached, or the connection broke.
    #[error("{message}")]
    Transport {
        /// What happened (already worded for the user).
        message: String,
        /// What the user can do.
        hint: Option<String>,
    },
    /// Preflight found it unfit: nothing is changed on it.
    #[error("{message}")]
    Preflight {
        /// What is wrong (each finding, naming the host).
        message: String,
        /// What to do.
        hint: Option<String>,
    },
    /// A script failed outside of any step.
    #[error("the script failed on `{host}`: {message}")]
    Script {
        /// The host.
        host: HostName,
        /// What it printed.
        message: String,
    },
    /// Its answer could not be read.
    #[error("cannot read what `{host}` answered: {message}")]
    Answer {
        /// The host.
        host: HostName,
        /// What was wrong.
        message: String,
    },
    /// The task panicked (a bug in `infra`), reported instead of lost.
    #[error("`infra` failed while working on `{host}` (a bug, please report it): {message}")]
    Panicked {
        /// The host.
        host: HostName,
        /// The panic's message.
        message: String,
    },
}

impl HostError {
    /// What the user should do, when known.
    pub fn hint(&self) -> Option<&str> {
        match self {
            HostError::Transport { hint, .. } | HostError::Preflight { hint, .. } => {
                hint.as_deref()
            }
            HostError::Script { .. } | HostError::Answer { .. } | HostError::Panicked { .. } => {
                None
            }
        }
    }
}
