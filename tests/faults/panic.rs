//! A panic in one request does not take the mount down: the request is
//! answered EIO, the panic is logged, and every other request, before and
//! after, works. The panic comes from a test hook compiled into debug
//! builds only (`COSMOUNT_TEST_PANIC_ON=NAME` makes a lookup of NAME
//! panic inside its request task).

use crate::common::mount::{TestMount, server_args};
use crate::common::{BUCKET, TestServer};

#[test]
fn a_panicking_request_gets_eio_and_the_mount_goes_on() {
    let server = TestServer::start();
    let mut m = TestMount::start_env(
        BUCKET,
        &server_args(&server),
        "debug",
        &[("COSMOUNT_TEST_PANIC_ON", "boom")],
    );
    std::fs::write(m.join("before.txt"), b"written before").unwrap();
    for _ in 0..3 {
        let err = std::fs::metadata(m.join("boom")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    }
    assert_eq!(
        std::fs::read(m.join("before.txt")).unwrap(),
        b"written before"
    );
    std::fs::write(m.join("after.txt"), b"written after").unwrap();
    let names = m.sh_ok("ls");
    assert!(
        names.contains("before.txt") && names.contains("after.txt"),
        "{names}"
    );
    let log = m.log_text();
    assert!(
        log.contains("a request panicked and was answered EIO"),
        "the panic is logged:\n{log}"
    );
    assert!(m.stop().success(), "the daemon still exits cleanly");
}
