//! Real mounts: the `cosmount` binary over `cosmount serve`, used with
//! ordinary tools and `std::fs`.

mod browse;
mod copies;
mod disk_cache;
mod lifecycle;
mod listing;
mod reads;
mod s3;
mod sharing;
mod stalls;
mod writes;
