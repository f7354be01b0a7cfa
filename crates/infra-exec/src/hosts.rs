//! The one way `infra` works on many hosts at once: a closure per host, at most `limit` at a
//! time, and every host accounted for: a task that panics becomes that host's error instead of
//! silently dropping the host.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use infra_topology::HostName;
use tokio::sync::Semaphore;

use crate::transport::{HostError, Transport};

/// One host's connection and the request to send over it.
pub type HostRequest<R> = (HostName, (Arc<dyn Transport>, R));

/// Runs `work` for each `(host, item)`, at most `limit` at a time (at least one), starting
/// them in the order given (one at a time means exactly that order), and returns every host's
/// result in the order given.
pub async fn for_each_host<I, T, F, Fut>(
    items: Vec<(HostName, I)>,
    limit: usize,
    work: F,
) -> Vec<(HostName, Result<T, HostError>)>
where
    I: Send + 'static,
    T: Send + 'static,
    F: Fn(HostName, I) -> Fut,
    Fut: Future<Output = Result<T, HostError>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.clamp(1, Semaphore::MAX_PERMITS)));
    let order: Vec<HostName> = items.iter().map(|(host, _)| host.clone()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    let mut hosts_of: HashMap<tokio::task::Id, HostName> = HashMap::new();
    for (host, item) in items {
        // The permit is taken here, before the task exists, so tasks start in order. The
        // semaphore is never closed, so this only waits.
        let permit = Arc::clone(&permits).acquire_owned().await;
        let future = work(host.clone(), item);
        let name = host.clone();
        let handle = tasks.spawn(async move {
            let _permit = permit;
            (name, future.await)
        });
        hosts_of.insert(handle.id(), host);
    }
    let mut results: HashMap<HostName, Result<T, HostError>> = HashMap::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, (host, result))) => {
                results.insert(host, result);
            }
            Err(error) => {
                let Some(host) = hosts_of.get(&error.id()).cloned() else {
                    continue;
                };
                let message = if error.is_panic() {
                    panic_message(error.into_panic())
                } else {
                    "the task was cancelled".to_owned()
                };
                results.insert(host.clone(), Err(HostError::Panicked { host, message }));
            }
        }
    }
    order
        .into_iter()
        .filter_map(|host| results.remove(&host).map(|r| (host, r)))
        .collect()
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> HostName {
        HostName::new(name).expect("host name")
    }

    #[tokio::test]
    async fn a_panicking_host_is_reported_and_the_others_finish() {
        let items = vec![(host("a"), 1), (host("b"), 2), (host("c"), 3)];
        let results = for_each_host(items, 2, |_, n| async move {
            if n == 2 {
                panic!("boom on two");
            }
            Ok(n * 10)
        })
        .await;
        assert_eq!(results.len(), 3, "every host is accounted for");
        assert_eq!(results[0].0.as_str(), "a");
        assert!(matches!(results[0].1, Ok(10)));
        match &results[1].1 {
            Err(HostError::Panicked { host, message }) => {
                assert_eq!(host.as_str(), "b");
                assert!(message.contains("boom on two"), "{message}");
            }
            other => panic!("expected a panic report, got {other:?}"),
        }
        assert!(matches!(results[2].1, Ok(30)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_at_a_time_goes_in_the_order_given() {
        for _ in 0..50 {
            let started = Arc::new(std::sync::Mutex::new(Vec::new()));
            let items: Vec<(HostName, usize)> =
                (0..6).map(|i| (host(&format!("lb{i}")), i)).collect();
            for_each_host(items, 1, |_, i| {
                let started = Arc::clone(&started);
                async move {
                    if let Ok(mut started) = started.lock() {
                        started.push(i);
                    }
                    tokio::task::yield_now().await;
                    Ok(())
                }
            })
            .await;
            let started = started.lock().map(|s| s.clone()).unwrap_or_default();
            assert_eq!(started, vec![0, 1, 2, 3, 4, 5]);
        }
    }

    #[tokio::test]
    async fn no_more_than_the_limit_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let items: Vec<(HostName, ())> = (0..8).map(|i| (host(&format!("h{i}")), ())).collect();
        let results = for_each_host(items, 3, |_, ()| {
            let running = Arc::clone(&running);
            let most = Arc::clone(&most);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await;
        assert_eq!(results.len(), 8);
        assert!(most.load(Ordering::SeqCst) <= 3);
        let huge = for_each_host(vec![(host("x"), ())], usize::MAX, |_, ()| async { Ok(()) }).await;
        assert_eq!(huge.len(), 1, "a huge limit is clamped, not a panic");
    }
}
