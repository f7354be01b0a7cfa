//! The kernel limit a lab of many hosts runs into: every lab host's systemd, journald, logind
//! and D-Bus each hold inotify instances, all counted against root's
//! `fs.inotify.max_user_instances` (128 by default). Past it, new containers exit at once
//! with status 255 and no log (seen at about 21 hosts), so `lab up` checks it first.

use std::path::Path;

/// Where the limit is read and set.
pub const MAX_USER_INSTANCES: &str = "/proc/sys/fs/inotify/max_user_instances";

/// inotify instances one lab host holds: 6 were counted, idle and converged alike (and at the
/// default 128, the 22nd host is the one that fails).
const PER_HOST: u64 = 6;

/// Instances left for everything else the machine runs.
const HEADROOM: u64 = 32;

/// What to do about the limit before starting `hosts` lab hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It is high enough.
    Enough,
    /// Raise it to this (we run as root).
    Raise {
        /// The limit now.
        from: u64,
        /// The new limit.
        to: u64,
    },
    /// It is too low and we cannot raise it.
    TooLow {
        /// The limit now.
        limit: u64,
        /// What the lab needs.
        needed: u64,
    },
}

/// The instances a lab of `hosts` hosts needs.
pub fn needed(hosts: usize) -> u64 {
    HEADROOM + PER_HOST * hosts as u64
}

/// Decides from the current `limit` and whether this process may change it.
pub fn decide(limit: u64, hosts: usize, root: bool) -> Decision {
    let needed = needed(hosts);
    if limit >= needed {
        Decision::Enough
    } else if root {
        Decision::Raise {
            from: limit,
            // Twice what is needed, for the machine's other users and a lab that grows.
            to: (2 * needed).next_power_of_two(),
        }
    } else {
        Decision::TooLow { limit, needed }
    }
}

/// Reads the limit (`None` where the file is missing or unreadable: not Linux, or hidden).
pub fn read(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Sets the limit.
pub fn write(path: &Path, value: u64) -> std::io::Result<()> {
    std::fs::write(path, format!("{value}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_is_raised_for_fifty_hosts_when_root() {
        assert_eq!(decide(8192, 50, false), Decision::Enough);
        assert_eq!(
            decide(128, 500, true),
            Decision::Raise {
                from: 128,
                to: 8192
            }
        );
        assert_eq!(decide(128, 8, false), Decision::Enough, "the example fits");
        assert!(
            matches!(decide(128, 22, false), Decision::TooLow { .. }),
            "22 hosts did not start at 128"
        );
        assert_eq!(
            decide(128, 50, true),
            Decision::Raise {
                from: 128,
                to: 1024
            }
        );
        assert_eq!(
            decide(128, 50, false),
            Decision::TooLow {
                limit: 128,
                needed: 332
            }
        );
    }

    #[test]
    fn the_limit_is_read_and_written_as_the_kernel_shows_it() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("max_user_instances");
        write(&file, 1024).expect("written");
        assert_eq!(read(&file), Some(1024));
        std::fs::write(&file, "garbage").expect("written");
        assert_eq!(read(&file), None);
    }
}
