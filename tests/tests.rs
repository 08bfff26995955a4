//! One integration-test binary (modules below) to keep link time down.

mod bench;
mod common;
mod mount;
mod server;
mod sign;
