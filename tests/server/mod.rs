//! Tests of `cosmount serve`, each against the real binary over loopback.
//! (Kept in a folder so cargo does not build each file as its own test
//! binary.)

mod client;
mod inprocess;
mod metrics;
mod python;
mod raw;
