//! `infra-exec`: everything `infra` does to machines. It runs plans that `infra-plan` made and
//! decides nothing about what they contain: the transports (SSH, and a fake host for tests),
//! fact gathering, the executor, the hosts' locks, `infra status`, and the lab.

pub mod executor;
pub mod fake;
pub mod files;
pub mod gather;
pub mod hosts;
pub mod lab;
pub mod locks;
pub mod process;
pub mod ssh;
pub mod status;
pub mod transport;
