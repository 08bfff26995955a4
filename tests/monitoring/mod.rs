//! Operators' view of a mount: Prometheus metrics, status, audit log.

mod audit;
mod prometheus;
mod status;
