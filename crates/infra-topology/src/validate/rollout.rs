//! `rollout:` of a tier: how a restart goes through its hosts.

use super::Checker;
use crate::model::{Batch, Rollout};
use crate::raw::{self, RawCount, Sp};

/// The longest health-check wait a topology may ask for (an hour).
const MAX_TIMEOUT_SECONDS: u32 = 3600;

impl Checker<'_, '_> {
    /// The tier's rollout; `hosts` is how many hosts restart through it.
    pub(super) fn rollout(
        &mut self,
        raw: Option<&Sp<raw::RawRollout>>,
        tier: &str,
        hosts: usize,
        default_timeout: u32,
    ) -> Rollout {
        let Some(raw) = raw else {
            return Rollout::one_at_a_time(default_timeout);
        };
        let mut rollout = Rollout::one_at_a_time(default_timeout);
        if let Some(batch) = &raw.value.batch {
            match self.batch(batch) {
                Some(value) => rollout.batch = value,
                None => return rollout,
            }
        }
        if let Some(timeout) = &raw.value.timeout_seconds {
            if (1..=MAX_TIMEOUT_SECONDS).contains(&timeout.value) {
                rollout.timeout_seconds = timeout.value;
            } else {
                self.error(
                    timeout.position,
                    format!("a health-check wait of {} s", timeout.value),
                )
                .expected(format!("1 to {MAX_TIMEOUT_SECONDS} seconds"));
            }
        }
        if let Some(max) = &raw.value.max_unavailable {
            let batch = rollout.batch_of(hosts);
            let most = usize::try_from(max.value).unwrap_or(usize::MAX);
            if most < batch {
                self.error(
                    max.position,
                    format!(
                        "`max_unavailable: {}` is smaller than the batch of {batch}",
                        max.value
                    ),
                )
                .expected(format!("{batch} or more, or a smaller `batch`"));
            } else if hosts > 1 && most >= hosts {
                self.error(
                    max.position,
                    format!(
                        "`max_unavailable: {}` would let all {hosts} {tier} hosts be out of service at once",
                        max.value
                    ),
                )
                .expected(format!("at most {}", hosts - 1));
            } else {
                rollout.max_unavailable = Some(max.value);
            }
        } else if hosts > 1
            && rollout.batch_of(hosts) >= hosts
            && let Some(batch) = &raw.value.batch
        {
            self.error(
                batch.position,
                format!("a batch of {hosts} would restart every {tier} host at once"),
            )
            .expected(format!("at most {} hosts, or a smaller share", hosts - 1));
        }
        rollout
    }

    fn batch(&mut self, batch: &Sp<RawCount>) -> Option<Batch> {
        match &batch.value {
            RawCount::Hosts(0) => {
                self.error(batch.position, "a batch of 0 hosts")
                    .expected("1 or more hosts, or a share such as \"25%\"");
                None
            }
            RawCount::Hosts(n) => Some(Batch::Hosts(*n)),
            RawCount::Share(text) => {
                let percent = text
                    .strip_suffix('%')
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|n| (1..=100).contains(n));
                if percent.is_none() {
                    self.error(batch.position, format!("`{text}` is not a batch size"))
                        .expected("a number of hosts such as 2, or a share such as \"25%\"");
                }
                percent.map(Batch::Percent)
            }
        }
    }
}
