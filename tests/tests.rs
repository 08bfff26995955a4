//! One integration-test binary (modules below) to keep link time down.

mod common;
mod server_client;
mod server_python;
mod server_raw;
mod sign_vectors;
