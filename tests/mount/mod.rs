//! Real mounts: the `cosmount` binary over `cosmount serve`, used with
//! ordinary tools and `std::fs`.

mod browse;
