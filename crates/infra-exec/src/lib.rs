//! `infra-exec`: everything `infra` does to machines. Today: the lab, real Debian hosts in
//! Docker containers for trying a topology and for every test that crosses SSH.

pub mod apply;
pub mod destroy;
pub mod files;
pub mod gather;
pub mod lab;
pub mod lock;
pub mod process;
pub mod ssh;
pub mod state;
pub mod status;
pub mod steps;
