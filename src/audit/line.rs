//! One audit event as one line of JSON. The field order is fixed (readers
//! may rely on it, and tests pin it byte for byte); optional fields are left
//! out rather than written as `null`. serde_json escapes quotes, control
//! characters and newlines, so a file name can never start a second line.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::AuditEvent;

/// The serialized shape of a line, in output order.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    op: &'static str,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_path: Option<&'a str>,
    uid: u32,
    gid: u32,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    comm: Option<&'a str>,
    result: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    duration_us: u64,
}

/// Appends `event` as one JSON line, newline included, to `out`; `comm` is
/// the caller's process name when it could be read.
pub(super) fn push_line(out: &mut Vec<u8>, event: &AuditEvent, comm: Option<&str>) {
    let line = Line {
        time: timestamp(event.started),
        op: event.op.name(),
        path: &event.path,
        new_path: event.new_path.as_deref(),
        uid: event.uid,
        gid: event.gid,
        pid: event.pid,
        comm,
        result: result_name(event.result),
        bytes: event.bytes,
        duration_us: micros(event.duration),
    };
    // Only strings and integers: serializing into a Vec cannot fail.
    serde_json::to_writer(&mut *out, &line).expect("audit line serializes");
    out.push(b'\n');
}

/// RFC 3339 UTC with milliseconds. Times outside what the format can say
/// (before 1970, after 9999) are clamped so that formatting never fails.
fn timestamp(time: SystemTime) -> String {
    let last = SystemTime::UNIX_EPOCH + Duration::from_millis(253_402_300_799_999);
    let time = time.clamp(SystemTime::UNIX_EPOCH, last);
    humantime::format_rfc3339_millis(time).to_string()
}

/// "ok", or the errno's symbolic name ("ENOENT"); a number the platform
/// has no name for is written as "errno N".
fn result_name(result: Result<(), i32>) -> Cow<'static, str> {
    match result {
        Ok(()) => Cow::Borrowed("ok"),
        Err(n) => match nix::errno::Errno::from_raw(n) {
            nix::errno::Errno::UnknownErrno => Cow::Owned(format!("errno {n}")),
            known => Cow::Owned(format!("{known:?}")),
        },
    }
}

/// Whole microseconds, saturating (a duration past u64 microseconds is
/// half a million years).
fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditOp;

    fn at(rfc3339: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc3339).unwrap()
    }

    fn event(op: AuditOp, path: &str) -> AuditEvent {
        AuditEvent {
            op,
            path: path.to_string(),
            new_path: None,
            uid: 1000,
            gid: 100,
            pid: 4242,
            result: Ok(()),
            bytes: None,
            started: at("2026-12-03T08:30:00.123Z"),
            duration: Duration::from_micros(1500),
        }
    }

    fn line(event: &AuditEvent, comm: Option<&str>) -> String {
        let mut out = Vec::new();
        push_line(&mut out, event, comm);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn mkdir_with_comm() {
        assert_eq!(
            line(&event(AuditOp::Mkdir, "/photos/2026"), Some("mkdir")),
            concat!(
                r#"{"time":"2026-12-03T08:30:00.123Z","op":"mkdir","path":"/photos/2026","#,
                r#""uid":1000,"gid":100,"pid":4242,"comm":"mkdir","result":"ok","duration_us":1500}"#,
                "\n"
            )
        );
    }

    #[test]
    fn failed_rename_names_the_errno_and_the_target() {
        let mut e = event(AuditOp::Rename, "/a.txt");
        e.new_path = Some("/missing/b.txt".to_string());
        e.result = Err(libc::ENOENT);
        assert_eq!(
            line(&e, Some("mv")),
            concat!(
                r#"{"time":"2026-12-03T08:30:00.123Z","op":"rename","path":"/a.txt","#,
                r#""new_path":"/missing/b.txt","uid":1000,"gid":100,"pid":4242,"comm":"mv","#,
                r#""result":"ENOENT","duration_us":1500}"#,
                "\n"
            )
        );
    }

    #[test]
    fn write_close_has_bytes_and_no_comm_when_unknown() {
        let mut e = event(AuditOp::WriteClose, "/log.bin");
        e.bytes = Some(10_485_760);
        e.duration = Duration::from_millis(2);
        assert_eq!(
            line(&e, None),
            concat!(
                r#"{"time":"2026-12-03T08:30:00.123Z","op":"write-close","path":"/log.bin","#,
                r#""uid":1000,"gid":100,"pid":4242,"result":"ok","bytes":10485760,"duration_us":2000}"#,
                "\n"
            )
        );
    }

    #[test]
    fn newlines_and_quotes_in_names_stay_on_one_line() {
        let e = event(AuditOp::Create, "/evil\n{\"op\":\"x\"}");
        let text = line(&e, Some("a\"b\n"));
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.contains(r#""path":"/evil\n{\"op\":\"x\"}""#), "{text}");
        assert!(text.contains(r#""comm":"a\"b\n""#), "{text}");
    }

    #[test]
    fn errno_names() {
        assert_eq!(result_name(Err(libc::ENOENT)), "ENOENT");
        assert_eq!(result_name(Err(libc::EACCES)), "EACCES");
        assert_eq!(result_name(Err(libc::ENOSPC)), "ENOSPC");
        assert_eq!(result_name(Err(libc::EIO)), "EIO");
        assert_eq!(result_name(Err(libc::ENOTEMPTY)), "ENOTEMPTY");
        assert_eq!(result_name(Err(99_999)), "errno 99999");
        assert_eq!(result_name(Ok(())), "ok");
    }

    #[test]
    fn times_outside_the_format_are_clamped() {
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(timestamp(before), "1970-01-01T00:00:00.000Z");
        let after = SystemTime::UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(timestamp(after), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn every_op_has_its_name() {
        let ops = [
            (AuditOp::Create, "create"),
            (AuditOp::Mknod, "mknod"),
            (AuditOp::Mkdir, "mkdir"),
            (AuditOp::Symlink, "symlink"),
            (AuditOp::Link, "link"),
            (AuditOp::Unlink, "unlink"),
            (AuditOp::Rmdir, "rmdir"),
            (AuditOp::Rename, "rename"),
            (AuditOp::Setattr, "setattr"),
            (AuditOp::Truncate, "truncate"),
            (AuditOp::Setxattr, "setxattr"),
            (AuditOp::Removexattr, "removexattr"),
            (AuditOp::WriteClose, "write-close"),
            (AuditOp::OpenRead, "open-read"),
        ];
        for (op, name) in ops {
            assert_eq!(op.name(), name);
        }
    }
}
