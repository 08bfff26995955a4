//! The audit log end to end, through real files: what lands in the file,
//! rotation by rename and reopen, and that a stuck or failing file costs
//! dropped lines, never a blocked or failed caller.

use std::ffi::CString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::*;

fn event(op: AuditOp, path: &str) -> AuditEvent {
    AuditEvent {
        op,
        path: path.to_string(),
        new_path: None,
        uid: 0,
        gid: 0,
        // A pid above the kernel's pid_max: no "comm" field.
        pid: u32::MAX,
        result: Ok(()),
        bytes: None,
        started: humantime::parse_rfc3339("2026-12-03T08:30:00.123Z").unwrap(),
        duration: Duration::from_micros(250),
    }
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The kernel's name for this test binary: its file name cut to 15 bytes.
fn own_comm() -> String {
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_name().unwrap().to_str().unwrap();
    name[..name.len().min(15)].to_string()
}

#[test]
fn lines_in_the_file_are_the_expected_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mnt.audit.log");
    let log = AuditLog::open(&path, false).unwrap();

    let mut mine = event(AuditOp::Create, "/a.txt");
    mine.uid = 1000;
    mine.gid = 1000;
    mine.pid = std::process::id();
    log.record(mine);
    let mut failed = event(AuditOp::Unlink, "/missing.txt");
    failed.result = Err(libc::ENOENT);
    log.record(failed);
    let mut truncate = event(AuditOp::Truncate, "/a.txt");
    truncate.bytes = Some(0);
    log.record(truncate);
    let mut symlink = event(AuditOp::Symlink, "/latest");
    symlink.new_path = Some("a.txt".to_string());
    symlink.result = Err(libc::EEXIST);
    log.record(symlink);
    log.flush();

    let comm = own_comm();
    let pid = std::process::id();
    assert_eq!(
        lines(&path),
        [
            format!(
                r#"{{"time":"2026-12-03T08:30:00.123Z","op":"create","path":"/a.txt","uid":1000,"gid":1000,"pid":{pid},"comm":"{comm}","result":"ok","duration_us":250}}"#
            ),
            r#"{"time":"2026-12-03T08:30:00.123Z","op":"unlink","path":"/missing.txt","uid":0,"gid":0,"pid":4294967295,"result":"ENOENT","duration_us":250}"#.to_string(),
            r#"{"time":"2026-12-03T08:30:00.123Z","op":"truncate","path":"/a.txt","uid":0,"gid":0,"pid":4294967295,"result":"ok","bytes":0,"duration_us":250}"#.to_string(),
            r#"{"time":"2026-12-03T08:30:00.123Z","op":"symlink","path":"/latest","new_path":"a.txt","uid":0,"gid":0,"pid":4294967295,"result":"EEXIST","duration_us":250}"#.to_string(),
        ]
    );
    assert_eq!((log.written(), log.dropped()), (4, 0));
}

#[test]
fn lines_reach_the_file_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    let log = AuditLog::open(&path, false).unwrap();
    log.record(event(AuditOp::Mkdir, "/d"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.written() == 0 {
        assert!(Instant::now() < deadline, "the line was not written");
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(lines(&path).len(), 1);
}

#[test]
fn the_file_is_created_private_and_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    fs::write(&path, "earlier\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let fresh = dir.path().join("fresh.log");
    for p in [&path, &fresh] {
        let log = AuditLog::open(p, true).unwrap();
        assert!(log.audits_reads());
        log.record(event(AuditOp::OpenRead, "/r"));
    }
    assert_eq!(lines(&path).len(), 2);
    assert_eq!(lines(&path)[0], "earlier");
    assert_eq!(
        fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // An existing file keeps the mode its owner gave it.
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
}

#[test]
fn drop_writes_what_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    let log = AuditLog::open(&path, false).unwrap();
    for i in 0..1000 {
        log.record(event(AuditOp::Create, &format!("/f{i}")));
    }
    drop(log);
    assert_eq!(lines(&path).len(), 1000);
}

#[test]
fn reopen_after_rename_moves_later_lines_and_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    let rotated = dir.path().join("a.log.1");
    let log = AuditLog::open(&path, false).unwrap();
    for i in 0..300 {
        log.record(event(AuditOp::Create, &format!("/old{i}")));
    }
    fs::rename(&path, &rotated).unwrap();
    log.reopen();
    for i in 0..200 {
        log.record(event(AuditOp::Unlink, &format!("/new{i}")));
    }
    log.flush();

    let old = lines(&rotated);
    let new = lines(&path);
    assert_eq!(old.len(), 300);
    assert_eq!(new.len(), 200);
    assert!(old.iter().all(|l| l.contains(r#""path":"/old"#)));
    assert!(new.iter().all(|l| l.contains(r#""path":"/new"#)));
    assert_eq!((log.written(), log.dropped()), (500, 0));
}

#[test]
fn a_failed_reopen_keeps_writing_to_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let path = logs.join("a.log");
    let rotated = dir.path().join("a.log.1");
    let log = AuditLog::open(&path, false).unwrap();
    log.record(event(AuditOp::Mkdir, "/before"));
    fs::rename(&path, &rotated).unwrap();
    fs::remove_dir(&logs).unwrap();
    log.reopen();
    log.record(event(AuditOp::Rmdir, "/after"));
    log.flush();
    assert_eq!(lines(&rotated).len(), 2);
    assert_eq!((log.written(), log.dropped()), (2, 0));
}

#[test]
fn an_unwritable_file_counts_drops() {
    // /dev/full opens, and every write to it fails with ENOSPC.
    let log = AuditLog::open(Path::new("/dev/full"), false).unwrap();
    for _ in 0..10 {
        log.record(event(AuditOp::Create, "/x"));
    }
    log.flush();
    assert_eq!((log.written(), log.dropped()), (0, 10));
    log.reopen();
    for _ in 0..5 {
        log.record(event(AuditOp::Create, "/y"));
    }
    log.flush();
    assert_eq!((log.written(), log.dropped()), (0, 15));
}

#[test]
fn a_full_queue_drops_without_blocking() {
    // A FIFO whose reader does not read yet: the writer thread blocks once
    // the pipe is full, the queue fills behind it, and `record` must still
    // return at once, counting what it could not queue.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("audit.fifo");
    let c_path = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c_path` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);

    let (go, wait) = mpsc::channel::<()>();
    let reader_path = fifo.clone();
    let reader = thread::spawn(move || {
        let file = fs::File::open(&reader_path).unwrap();
        wait.recv().unwrap();
        BufReader::new(file).lines().count() as u64
    });
    let log = AuditLog::open(&fifo, false).unwrap();
    let total = 3 * QUEUE_EVENTS as u64;
    for i in 0..total {
        log.record(event(AuditOp::Create, &format!("/f{i}")));
    }
    let dropped_while_stuck = log.dropped();
    // Unblock the writer before asserting: a failed test must not hang in
    // the log's drop.
    go.send(()).unwrap();
    assert!(dropped_while_stuck > 0, "nothing was dropped");
    log.flush();
    let (written, dropped) = (log.written(), log.dropped());
    assert_eq!(written + dropped, total);
    // Closing the FIFO's write end ends the reader.
    drop(log);
    assert_eq!(reader.join().unwrap(), written);
}

#[test]
fn open_errors_name_the_path_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("a.log");
    let err = AuditLog::open(&missing, false).unwrap_err();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("create its directory first"), "{err}");

    let err = AuditLog::open(dir.path(), false).unwrap_err();
    assert!(err.contains("name a file, not a directory"), "{err}");
}
