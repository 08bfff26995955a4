//! Reliability and security under faults (issue 7): the client against a
//! misbehaving `cosmount serve` (`--fault-rate`), the fault workload through
//! a real mount, outages, `kill -9`, hostile keys, and the security
//! promises (permissions, TLS, unsigned writes).

mod client;
mod crash;
mod fuzz;
pub mod harness;
mod hostile;
mod mount;
mod outage;
mod panic;
mod security;
pub mod workload;
