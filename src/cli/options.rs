//! `-o key[=value],...`, how mount(8) and fstab call us: every mount option
//! is also accepted there, rewritten into long options before clap sees
//! them, using clap's own definitions so the two can never drift apart.

use std::ffi::OsString;

use clap::CommandFactory;

use super::Cli;
use super::mount::{DIRECT_IO_BARE, SSE_BARE};

/// Generic mount(8) options: accepted and ignored (they concern mount(8)
/// itself or are the kernel's defaults for us).
const IGNORED_MOUNT_OPTIONS: &[&str] = &[
    "rw",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "auto",
    "noauto",
    "user",
    "users",
    "nouser",
    "owner",
    "group",
    "_netdev",
    "nofail",
    "defaults",
    "async",
    "sync",
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "diratime",
    "nodiratime",
    "lazytime",
    "nonempty",
    "silent",
    "loud",
    "bg",
    "fg",
];

/// Rewrites `-o a=b,c` items into `--a=b --c`, dropping generic mount
/// options. Unknown option names are left for clap to reject by name.
pub fn expand_mount_options(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let command = Cli::command();
    let known = |name: &str| {
        command.get_arguments().any(|a| {
            a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
        })
    };
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy().into_owned();
        let list = match text.as_str() {
            "-o" => match iter.next() {
                Some(v) => v.to_string_lossy().into_owned(),
                None => return Err("-o needs a value, e.g. -o ro,allow_other".into()),
            },
            s if s.starts_with("-o") && s.len() > 2 => s[2..].to_string(),
            _ => {
                out.push(arg);
                continue;
            }
        };
        for item in list.split(',').filter(|s| !s.is_empty()) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (item, None),
            };
            if IGNORED_MOUNT_OPTIONS.contains(&name) || name.starts_with("x-") || name == "comment"
            {
                continue;
            }
            let long = name.replace('_', "-");
            if !known(&long) {
                return Err(format!(
                    "unknown mount option `{name}` (see `cosmount --help` for the list)"
                ));
            }
            out.push(OsString::from(match value {
                Some(v) if is_flag(&command, &long) => flag_with_value(&long, v)?,
                Some(v) => format!("--{long}={v}"),
                None => match missing_value(&long) {
                    // `-o direct_io`: spell the implied value out, so the
                    // next argument is not taken for it.
                    Some(v) => format!("--{long}={v}"),
                    None => format!("--{long}"),
                },
            }));
        }
    }
    Ok(out.into_iter().filter(|a| !a.is_empty()).collect())
}

fn is_flag(command: &clap::Command, long: &str) -> bool {
    command
        .get_arguments()
        .find(|a| {
            a.get_long() == Some(long) || a.get_all_aliases().is_some_and(|al| al.contains(&long))
        })
        .is_some_and(|a| !a.get_action().takes_values())
}

/// The value an option takes when given bare, if it has one (clap keeps
/// these private, so they are named here and in the definitions).
fn missing_value(long: &str) -> Option<&'static str> {
    match long {
        "direct-io" => Some(DIRECT_IO_BARE),
        "sse" | "use-sse" => Some(SSE_BARE),
        _ => None,
    }
}

/// cosfs writes boolean options as `name=1`; accept 1/true/yes (and drop 0).
fn flag_with_value(long: &str, value: &str) -> Result<String, String> {
    match value {
        "1" | "true" | "yes" => Ok(format!("--{long}")),
        "0" | "false" | "no" => Ok(String::new()),
        _ => Err(format!(
            "mount option `{long}` is a switch; give it no value or 1"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;
    use crate::cli::Cli;
    use crate::cos::Encryption;
    use crate::creds::SourceKind;
    use crate::units::{Size, Span};

    fn expand(args: &[&str]) -> Result<Vec<String>, String> {
        expand_mount_options(args.iter().map(OsString::from).collect())
            .map(|v| v.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn expands_dash_o_lists() {
        let got = expand(&[
            "cosmount",
            "b-1",
            "/mnt",
            "-o",
            "ro,allow_other,region=ap-guangzhou,_netdev,x-systemd.automount",
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                "cosmount",
                "b-1",
                "/mnt",
                "--ro",
                "--allow-other",
                "--region=ap-guangzhou"
            ]
        );
        let got = expand(&[
            "cosmount",
            "-opasswd_file=/etc/p,use_path_request_style,public_bucket=1,url=http://x",
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                "cosmount",
                "--passwd-file=/etc/p",
                "--use-path-request-style",
                "--public-bucket",
                "--url=http://x"
            ]
        );
    }

    #[test]
    fn rejects_unknown_options_by_name() {
        assert!(
            expand(&["cosmount", "-o", "bogus=1"])
                .unwrap_err()
                .contains("bogus")
        );
        assert!(expand(&["cosmount", "-o"]).is_err());
        assert!(
            expand(&["cosmount", "-o", "ro=maybe"])
                .unwrap_err()
                .contains("switch")
        );
    }

    #[test]
    fn cosfs_use_sse_bare_or_with_a_value_names_the_encryption() {
        let mount = |args: &[&str]| Cli::try_parse_from(expand(args).unwrap()).unwrap().mount;
        let bare = mount(&["cosmount", "-o", "use_sse", "b-1", "/mnt"]);
        assert_eq!(bare.sse, Some(Encryption::Aes256));
        assert_eq!(bare.bucket.as_deref(), Some("b-1"));
        let kms = mount(&["cosmount", "b-1", "/mnt", "-o", "use_sse=kmsid:key-1"]);
        assert_eq!(kms.sse, Some(Encryption::Kms(Some("key-1".into()))));
        let custom = expand(&["cosmount", "b-1", "/mnt", "-o", "use_sse=custom:/k"]).unwrap();
        let refused = Cli::try_parse_from(custom).unwrap_err().to_string();
        assert!(refused.contains("SSE-C"), "{refused}");
    }

    #[test]
    fn credential_options_work_inside_dash_o() {
        let bare = expand(&["cosmount", "-o", "direct_io", "b-1", "/mnt"]).unwrap();
        assert_eq!(bare, vec!["cosmount", "--direct-io=always", "b-1", "/mnt"]);
        let args = expand(&[
            "cosmount",
            "b-1",
            "/mnt",
            "-o",
            "credential_source=cam_role,cam_role=mount-role,cam_role_endpoint=http://127.0.0.1:9/meta",
            "-o",
            "role_arn=qcs::cam::uin/1:roleName/r,sts_endpoint=http://127.0.0.1:9/,sts_duration=15m",
            "-o",
            "credential_process=/usr/bin/get-keys --json",
        ])
        .unwrap();
        let m = Cli::try_parse_from(args).unwrap().mount;
        assert_eq!(m.credential_source, Some(SourceKind::CamRole));
        assert_eq!(m.cam_role.as_deref(), Some("mount-role"));
        assert_eq!(
            m.cam_role_endpoint.as_deref(),
            Some("http://127.0.0.1:9/meta")
        );
        assert_eq!(m.role_arn.as_deref(), Some("qcs::cam::uin/1:roleName/r"));
        assert_eq!(m.sts_duration, Some(Span(Duration::from_secs(900))));
        assert_eq!(
            m.credential_process.as_deref(),
            Some("/usr/bin/get-keys --json")
        );
    }

    #[test]
    fn debug_output_hides_keys() {
        let cli = Cli::try_parse_from([
            "cosmount",
            "--secret-id",
            "AKIDvisible",
            "--secret-key",
            "TOPSECRETKEY",
            "--session-token",
            "TOPSECRETTOKEN",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(shown.contains("AKIDvisible"), "{shown}");
        assert!(!shown.contains("TOPSECRET"), "{shown}");
        assert_eq!(cli.mount.secret_key.unwrap().expose(), "TOPSECRETKEY");
    }

    #[test]
    fn expanded_options_parse() {
        let args = expand(&[
            "cosmount",
            "b-1",
            "/mnt",
            "-o",
            "rw,uid=5,fast_list,cache_size=64MiB,dev,suid,use_cache=/var/cache/c,disk_cache_size=1GiB",
        ])
        .unwrap();
        let cli = Cli::try_parse_from(args).unwrap();
        assert_eq!(cli.mount.uid, Some(5));
        assert_eq!(
            cli.mount.cache_dir.as_deref(),
            Some(std::path::Path::new("/var/cache/c")),
            "s3fs's and cosfs's use_cache= names the disk tier"
        );
        assert_eq!(cli.mount.disk_cache_size, Size(1 << 30));
        assert!(cli.mount.fast_list);
        assert_eq!(cli.mount.cache_size, Size(64 << 20));
        assert_eq!(cli.mount.bucket.as_deref(), Some("b-1"));
    }
}
