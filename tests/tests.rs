//! One integration-test binary (modules below) to keep link time down.

mod sign_vectors;
