//! One integration-test binary (modules below) to keep link time down.

mod bench;
mod common;
mod creds;
mod faults;
mod monitoring;
mod mount;
mod packaging;
mod server;
mod sign;
