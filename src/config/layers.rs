//! The mount flags that become the inner layers' settings: [`FsConfig`]
//! (with its cache, upload and ownership parts), [`MountOptions`] and the
//! client's deadlines. Values are typed by `cli/`; what is checked here is
//! their range and how they fit together.

use std::path::PathBuf;

use super::Timeouts;
use crate::cache::{CacheConfig, DiskConfig};
use crate::cli::{DirectIoMode, MountArgs};
use crate::fs::FsConfig;
use crate::fs::attr::Ownership;
use crate::fuse::DirectIo;
use crate::mount::MountOptions;
use crate::retry::RetryPolicy;
use crate::units::{Mode, Size};
use crate::upload::{MAX_PART_SIZE, MIN_PART_SIZE, UploadConfig};

/// Modes of nodes without stored ones, unless `--file-mode`/`--dir-mode`.
const FILE_MODE: u16 = 0o644;
/// See [`FILE_MODE`].
const DIR_MODE: u16 = 0o755;

/// The filesystem's settings: `prefix` mounted as the root.
pub(super) fn fs_config(
    args: &MountArgs,
    bucket: &str,
    prefix: String,
) -> Result<FsConfig, String> {
    let block_size = args.block_size.0;
    let memory_bytes = args.cache_size.0;
    if memory_bytes < 8 * block_size {
        return Err(format!(
            "--cache-size {} is too small: give at least 8 blocks ({} bytes)",
            args.cache_size,
            8 * block_size
        ));
    }
    let defaults = FsConfig::default();
    let disk_cache = disk_cache(args, bucket, &prefix)?;
    Ok(FsConfig {
        prefix,
        ownership: ownership(args),
        metadata_ttl: args.metadata_ttl.0,
        negative_ttl: args.negative_ttl.0,
        fast_list: args.fast_list,
        read_only: read_only(args),
        no_listing: args.website,
        head_concurrency: args.max_requests.max(1),
        cache: CacheConfig {
            block_size,
            max_prefetch: args.max_prefetch.0,
        },
        memory_bytes,
        disk_cache,
        upload: UploadConfig {
            part_size: part_size(args.part_size)?,
            part_concurrency: args.upload_concurrency.clamp(1, 64),
        },
        staging_dir: args.staging_dir.clone().unwrap_or(defaults.staging_dir),
        staging_bytes: args.staging_size.0,
        xattrs: !args.no_xattr,
        close_to_open: !args.no_close_to_open,
    })
}

/// The disk tier: on with `--cache-dir`, holding at least a few blocks, in
/// a folder of its own per bucket and prefix under it (as s3fs keeps
/// `use_cache/<bucket>`), so `--cache-dir /tmp` or one folder for several
/// buckets works and the given folder's own mode is left alone.
fn disk_cache(args: &MountArgs, bucket: &str, prefix: &str) -> Result<Option<DiskConfig>, String> {
    let Some(dir) = &args.cache_dir else {
        return Ok(None);
    };
    if args.disk_cache_size.0 < 4 * args.block_size.0 {
        return Err(format!(
            "--disk-cache-size {} is too small: give at least 4 blocks ({} bytes)",
            args.disk_cache_size,
            4 * args.block_size.0
        ));
    }
    // Absolute: the daemon leaves the working directory.
    let dir =
        std::path::absolute(dir).map_err(|e| format!("--cache-dir {}: {e}", dir.display()))?;
    let dir = if prefix.is_empty() {
        dir.join(bucket)
    } else {
        use sha1::Digest;
        let hash = hex::encode(sha1::Sha1::digest(prefix.as_bytes()));
        dir.join(format!("{bucket}-{}", &hash[..12]))
    };
    Ok(Some(DiskConfig {
        dir,
        max_bytes: args.disk_cache_size.0,
    }))
}

/// The website domain is read-only whatever the flags say.
fn read_only(args: &MountArgs) -> bool {
    args.read_only || args.website
}

/// The kernel's side of the mount of `source` on `mountpoint`.
pub(super) fn mount_options(args: &MountArgs, source: &str, mountpoint: PathBuf) -> MountOptions {
    MountOptions {
        mountpoint,
        source: source.to_string(),
        read_only: read_only(args),
        allow_other: args.allow_other,
        allow_root: args.allow_root,
        default_permissions: args.default_permissions
            || (args.allow_other && !args.no_default_permissions),
        fuse_threads: args.fuse_threads.clamp(1, 64),
        read_ahead_kb: args.read_ahead_kb,
        direct_io: match args.direct_io {
            DirectIoMode::Auto => DirectIo::Auto,
            DirectIoMode::Always => DirectIo::Always,
            DirectIoMode::Never => DirectIo::Never,
        },
    }
}

/// The client's progress and per-operation deadlines and its retries.
pub(super) fn deadlines(args: &MountArgs) -> Result<(Timeouts, RetryPolicy), String> {
    for (flag, value, example) in [
        ("--op-timeout", args.op_timeout.0, "120s"),
        ("--request-timeout", args.request_timeout.0, "10s"),
        ("--stall-timeout", args.stall_timeout.0, "5s"),
    ] {
        if value.is_zero() {
            return Err(format!("{flag} must be longer than 0 (e.g. {example})"));
        }
    }
    if args.retries == 0 {
        return Err("--retries must be at least 1".into());
    }
    let retry = RetryPolicy {
        max_attempts: args.retries,
        ..RetryPolicy::default()
    };
    let timeouts = Timeouts {
        first_byte: args.request_timeout.0,
        stall: args.stall_timeout.0,
        op: args.op_timeout.0,
    };
    Ok((timeouts, retry))
}

fn ownership(args: &MountArgs) -> Ownership {
    // SAFETY: getuid/getgid cannot fail and have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mode = |m: Option<Mode>, default: u16| m.map_or(default, |m| m.0);
    Ownership {
        uid: args.uid.unwrap_or(uid),
        gid: args.gid.unwrap_or(gid),
        force_owner: args.uid.is_some() || args.gid.is_some(),
        file_mode: mode(args.file_mode, FILE_MODE),
        dir_mode: mode(args.dir_mode, DIR_MODE),
        umask: mode(args.umask, 0),
    }
}

/// The multipart part size: between COS's 1 MiB and 5 GiB limits.
fn part_size(size: Size) -> Result<u64, String> {
    if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size.0) {
        return Err(format!(
            "--part-size {size} must be between 1MiB and 5GiB (COS part limits)"
        ));
    }
    Ok(size.0)
}
