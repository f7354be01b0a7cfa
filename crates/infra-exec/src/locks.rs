//! The hosts' locks, for a whole run: taken on every host the run touches, renewed while it
//! works, given back at the end; and forced by ID from any clone.
//!
//! Taking is all-or-nothing: every host is asked at once, and if any refuses, the run gives
//! back what it got before it waits and tries again (after a random pause). A run never holds
//! some hosts while it waits for others, so two runs cannot deadlock, whatever order they ask
//! in; a run that waits too long (`--lock-timeout`) fails naming the holder.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use infra_plan::lock::{LockFact, LockHolder, LockId};
use infra_topology::{HostName, Name};

use crate::hosts::{HostRequest, for_each_host};
use crate::ssh::script::steps::LEASE_SECONDS;
use crate::transport::{HostError, LockAnswer, LockRequest, Transport};

/// Why the locks could not be taken.
#[derive(Debug, Clone)]
pub enum AcquireError {
    /// Another run holds the lock of a host.
    Held {
        /// The host.
        host: HostName,
        /// Who holds it.
        fact: LockFact,
    },
    /// A host's record changed since the plan was made (another run changed it).
    Moved {
        /// The host.
        host: HostName,
    },
    /// A host could not be asked.
    Host {
        /// The host.
        host: HostName,
        /// Why.
        error: HostError,
    },
    /// Ctrl-C while waiting.
    Interrupted,
}

/// Takes the lock on every host of `serials` (each with the record serial it must still have;
/// `None`: any), waiting up to `timeout` while other runs hold some.
pub async fn acquire_all(
    transports: &BTreeMap<HostName, Arc<dyn Transport>>,
    serials: &BTreeMap<HostName, Option<Option<u64>>>,
    holder: &LockHolder,
    topology: &Name,
    timeout: Duration,
    parallelism: usize,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<(), AcquireError> {
    if let Some(host) = serials.keys().find(|host| !transports.contains_key(*host)) {
        return Err(AcquireError::Host {
            host: host.clone(),
            error: HostError::Transport {
                message: format!("`{host}` is not connected, so its lock cannot be taken"),
                hint: None,
            },
        });
    }
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(300);
    loop {
        let items: Vec<HostRequest<LockRequest>> = serials
            .iter()
            .filter_map(|(host, serial)| {
                let transport = transports.get(host)?;
                Some((
                    host.clone(),
                    (
                        Arc::clone(transport),
                        LockRequest::Acquire {
                            holder: holder.clone(),
                            lease: LEASE_SECONDS,
                            serial: *serial,
                            topology: topology.clone(),
                        },
                    ),
                ))
            })
            .collect();
        let answers = for_each_host(items, parallelism, |_, (transport, request)| async move {
            transport.lock(&request).await
        })
        .await;
        let mut got: Vec<HostName> = Vec::new();
        let mut refusal: Option<Result<(HostName, LockFact), AcquireError>> = None;
        for (host, answer) in answers {
            let refused = match answer {
                Ok(LockAnswer::Acquired) => {
                    got.push(host);
                    continue;
                }
                Ok(LockAnswer::Held(fact) | LockAnswer::NotHolder(Some(fact))) => Ok((host, fact)),
                Ok(LockAnswer::SerialMoved { .. }) => Err(AcquireError::Moved { host }),
                Ok(LockAnswer::Released | LockAnswer::NotHolder(None)) => Err(AcquireError::Host {
                    host,
                    error: HostError::Transport {
                        message: "the host answered the lock request out of turn".to_owned(),
                        hint: None,
                    },
                }),
                Err(error) => Err(AcquireError::Host { host, error }),
            };
            // An error outranks a lock held by another run: waiting would not cure it.
            match (&refusal, &refused) {
                (None, _) | (Some(Ok(_)), Err(_)) => refusal = Some(refused),
                (Some(_), _) => {}
            }
        }
        // Every host was asked (each has a transport), so no refusal means all were taken.
        let Some(refusal) = refusal else {
            return Ok(());
        };
        release_all(transports, &got, &holder.id, parallelism).await;
        let (host, fact) = refusal?;
        if Instant::now() + pause >= deadline {
            return Err(AcquireError::Held { host, fact });
        }
        let jitter = Duration::from_millis(u64::from(infra_plan::hash::random_bytes::<1>()[0]) * 4);
        let sleep_until = Instant::now() + pause + jitter;
        while Instant::now() < sleep_until {
            if cancelled() {
                return Err(AcquireError::Interrupted);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pause = (pause * 2).min(Duration::from_secs(3));
    }
}

/// Gives back the lock `id` on `hosts` (where it is still ours).
pub async fn release_all(
    transports: &BTreeMap<HostName, Arc<dyn Transport>>,
    hosts: &[HostName],
    id: &LockId,
    parallelism: usize,
) -> Vec<(HostName, Result<LockAnswer, HostError>)> {
    let items: Vec<(HostName, Arc<dyn Transport>)> = hosts
        .iter()
        .filter_map(|host| transports.get(host).map(|t| (host.clone(), Arc::clone(t))))
        .collect();
    let id = id.clone();
    for_each_host(items, parallelism, move |_, transport| {
        let request = LockRequest::Release { id: id.clone() };
        async move { transport.lock(&request).await }
    })
    .await
}

/// Renews the lease on `hosts` every 30 seconds until the returned handle is dropped or
/// aborted, so a long step (a cold package install) never loses the lock.
pub fn keep_alive(
    transports: &BTreeMap<HostName, Arc<dyn Transport>>,
    hosts: &[HostName],
    id: &LockId,
) -> tokio::task::JoinHandle<()> {
    let items: Vec<(HostName, Arc<dyn Transport>)> = hosts
        .iter()
        .filter_map(|host| transports.get(host).map(|t| (host.clone(), Arc::clone(t))))
        .collect();
    let id = id.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(LEASE_SECONDS / 4)).await;
            let id = id.clone();
            let _ = for_each_host(items.clone(), items.len(), move |_, transport| {
                let request = LockRequest::Renew {
                    id: id.clone(),
                    lease: LEASE_SECONDS,
                };
                async move { transport.lock(&request).await }
            })
            .await;
        }
    })
}
