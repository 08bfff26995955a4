//! The mount command's flags (also those of `check` and `cleanup`, which
//! reach the same bucket the same way), grouped by help heading. Defaults
//! are shown from the constants of the layer that owns them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::value::{AGE_LIMIT, MODE, SIZE, SOURCE_KIND, SPAN};
use crate::cache::{CacheConfig, DEFAULT_DISK_CACHE_BYTES};
use crate::cos::client::ClientConfig;
use crate::cos::{Encryption, StorageClass};
use crate::creds::{Secret, SourceKind};
use crate::fs::FsConfig;
use crate::retry::RetryPolicy;
use crate::units::{AgeLimit, Mode, Size, Span};
use crate::upload::DEFAULT_STALE_AGE;
use crate::upload::UploadConfig;

/// `--direct-io`: when files bypass the kernel page cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DirectIoMode {
    /// For large files, when the kernel lets direct-I/O files be mmapped.
    Auto,
    /// For every file.
    Always,
    /// Never.
    Never,
}

/// `--provider`: the dialect of the bucket's server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    /// Tencent Cloud COS (and `cosmount serve`): COS signatures, x-cos-* headers.
    Cos,
    /// Any S3-compatible store: SigV4, x-amz-* headers, s3fs's metadata.
    S3,
}

/// `--log-level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Nothing at all (accepted, not advertised).
    #[value(hide = true)]
    Off,
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default.
    Info,
    /// Debug messages.
    Debug,
    /// Everything, dependencies included.
    Trace,
}

/// Options of the mount command.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// Bucket `<name>-<appid>` (any S3 bucket name for S3 targets),
    /// optionally `:/prefix` to mount a sub-folder.
    #[arg(value_name = "BUCKET")]
    pub bucket: Option<String>,

    /// Directory to mount on.
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: Option<PathBuf>,

    /// Mount options, comma-separated (`-o ro,allow_other,region=ap-guangzhou`).
    #[arg(short = 'o', value_name = "OPT[=VAL],...")]
    pub options: Vec<String>,

    /// Region of the bucket, e.g. ap-guangzhou (S3 targets: us-east-1 by
    /// default).
    #[arg(long, env = "COS_REGION", help_heading = "Connection")]
    pub region: Option<String>,

    /// Custom endpoint URL (a private gateway, `cosmount serve`, or an
    /// S3-compatible server).
    #[arg(long, alias = "url", value_name = "URL", help_heading = "Connection")]
    pub endpoint: Option<String>,

    /// The server's dialect: cos (COS signatures and x-cos-* metadata) or
    /// s3 (SigV4 and s3fs's x-amz-* metadata). Inferred from COS's and
    /// AWS's domains, and from a custom endpoint's answer to one unsigned
    /// request at mount; without --endpoint, s3 means AWS S3.
    #[arg(long, value_enum, value_name = "DIALECT", help_heading = "Connection")]
    pub provider: Option<ProviderArg>,

    /// Put the bucket in the path instead of the host name.
    #[arg(long, alias = "use-path-request-style", help_heading = "Connection")]
    pub path_style: bool,

    /// Use plain HTTP to COS's domains (HTTPS otherwise).
    #[arg(long, help_heading = "Connection")]
    pub http: bool,

    /// Use the global accelerate domain `<bucket>.cos.accelerate.myqcloud.com`
    /// (acceleration must be enabled on the bucket).
    #[arg(long, help_heading = "Connection")]
    pub accelerate: bool,

    /// Use the static-website domain `<bucket>.cos-website.<region>.myqcloud.com`
    /// (or --endpoint as a website): read-only, and names are found by HEAD
    /// only, never by listing.
    #[arg(long, help_heading = "Connection")]
    pub website: bool,

    /// Send requests for HOST to IP:PORT instead of asking DNS, keeping the
    /// Host header (like curl's --resolve).
    #[arg(long, value_name = "HOST:IP:PORT", help_heading = "Connection")]
    pub resolve: Option<String>,

    /// Serve DIR with the embedded COS server in-process and mount it.
    #[arg(long, value_name = "DIR", help_heading = "Connection")]
    pub local: Option<PathBuf>,

    /// Longest wait for the first byte of an answer after the request was
    /// sent: the ceiling of the deadline learned from recent answers of
    /// the same kind (1 s at least). A late answer's request is hedged
    /// sooner; one past this is abandoned and retried on a new connection.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = SPAN,
        default_value_t = Span(ClientConfig::DEFAULT_REQUEST_TIMEOUT),
        help_heading = "Connection"
    )]
    pub request_timeout: Span,

    /// Longest time an upload or a download may move no byte before the
    /// attempt is abandoned and retried (both learn a shorter limit, 1 s
    /// at least, from recent transfers; a slow but moving transfer never
    /// times out).
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = SPAN,
        default_value_t = Span(ClientConfig::DEFAULT_STALL_TIMEOUT),
        help_heading = "Connection"
    )]
    pub stall_timeout: Span,

    /// Longest time one COS operation may take, all attempts and waits
    /// between them included; then it fails (EIO, or ETIMEDOUT when the
    /// last attempt timed out), so no file operation hangs on the network.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = SPAN,
        default_value_t = Span(ClientConfig::DEFAULT_OP_TIMEOUT),
        help_heading = "Connection"
    )]
    pub op_timeout: Span,

    /// Attempts per request before giving up (retryable errors only).
    #[arg(
        long,
        value_name = "N",
        default_value_t = RetryPolicy::default().max_attempts,
        help_heading = "Connection"
    )]
    pub retries: u32,

    /// Where credentials come from: cli, env, passwd, cam_role, sts, process,
    /// profile (S3 targets) or anonymous.
    ///
    /// Without this option the first configured source wins: role_arn (STS,
    /// with the first keys found below), --secret-id/--secret-key, the
    /// environment (COS_SECRET_ID/COS_SECRET_KEY/COS_SESSION_TOKEN, then
    /// TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY/TENCENTCLOUD_SESSION_TOKEN),
    /// passwd_file, cam_role, credential_process, then ~/.passwd-cosfs and
    /// /etc/passwd-cosfs. For S3 targets: --secret-id/--secret-key, the
    /// environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN,
    /// then AWSACCESSKEYID/AWSSECRETACCESSKEY/AWSSESSIONTOKEN), passwd_file,
    /// --profile, credential_process, the AWS_PROFILE (else default) profile,
    /// then ~/.passwd-s3fs and /etc/passwd-s3fs. Anonymous access is only
    /// used when asked for.
    #[arg(
        long,
        value_name = "NAME",
        value_parser = SOURCE_KIND,
        help_heading = "Credentials"
    )]
    pub credential_source: Option<SourceKind>,

    /// SecretId (permanent or temporary); the environment's COS_SECRET_ID or
    /// TENCENTCLOUD_SECRET_ID is used when no keys are given here.
    #[arg(long, help_heading = "Credentials")]
    pub secret_id: Option<String>,

    /// SecretKey (environment: COS_SECRET_KEY or TENCENTCLOUD_SECRET_KEY).
    #[arg(long, value_name = "SECRET_KEY", help_heading = "Credentials")]
    pub secret_key: Option<Secret>,

    /// Session token of temporary keys (environment: COS_SESSION_TOKEN or
    /// TENCENTCLOUD_SESSION_TOKEN).
    #[arg(long, value_name = "TOKEN", help_heading = "Credentials")]
    pub session_token: Option<Secret>,

    /// cosfs passwd file: `bucket:SecretId:SecretKey` lines, or temporary keys
    /// (COSAccessKeyId=, COSSecretKey=, COSAccessToken=, COSAccessTokenExpire=),
    /// re-read before they expire.
    #[arg(long, value_name = "FILE", help_heading = "Credentials")]
    pub passwd_file: Option<PathBuf>,

    /// CAM role of this CVM instance, whose temporary keys the metadata
    /// service hands out (`sts` means the temporary passwd file, as in cosfs).
    #[arg(long, value_name = "ROLE", help_heading = "Credentials")]
    pub cam_role: Option<String>,

    /// Base URL of the metadata service's role credentials
    /// [default: http://metadata.tencentyun.com/latest/meta-data/cam/security-credentials].
    #[arg(long, value_name = "URL", help_heading = "Credentials")]
    pub cam_role_endpoint: Option<String>,

    /// Role to assume with STS AssumeRole, using the permanent keys found
    /// (e.g. qcs::cam::uin/100000000001:roleName/NAME).
    #[arg(long, value_name = "ARN", help_heading = "Credentials")]
    pub role_arn: Option<String>,

    /// RoleSessionName for AssumeRole [default: cosmount].
    #[arg(long, value_name = "NAME", help_heading = "Credentials")]
    pub role_session_name: Option<String>,

    /// STS endpoint URL [default: https://sts.tencentcloudapi.com/].
    #[arg(long, value_name = "URL", help_heading = "Credentials")]
    pub sts_endpoint: Option<String>,

    /// Region sent to STS [default: --region, else ap-guangzhou].
    #[arg(long, value_name = "REGION", help_heading = "Credentials")]
    pub sts_region: Option<String>,

    /// Lifetime asked of STS, e.g. `2h` or `7200` (at most 12h) [default: 2h].
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = SPAN,
        help_heading = "Credentials"
    )]
    pub sts_duration: Option<Span>,

    /// Command (run with `sh -c`) printing JSON
    /// {"TmpSecretId","TmpSecretKey","Token","ExpiredTime"} or AWS's
    /// {"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"};
    /// run again before the keys expire. Inside -o it cannot contain commas.
    #[arg(long, value_name = "COMMAND", help_heading = "Credentials")]
    pub credential_process: Option<String>,

    /// AWS profile (S3 targets): [NAME] in ~/.aws/credentials
    /// ($AWS_SHARED_CREDENTIALS_FILE), else [profile NAME] in ~/.aws/config
    /// ($AWS_CONFIG_FILE), with aws_access_key_id/aws_secret_access_key or
    /// credential_process.
    #[arg(long, value_name = "NAME", help_heading = "Credentials")]
    pub profile: Option<String>,

    /// Send unsigned requests (public buckets); same as --credential-source anonymous.
    #[arg(long, alias = "public-bucket", help_heading = "Credentials")]
    pub anonymous: bool,

    /// Stay in the foreground instead of daemonizing.
    #[arg(short, long, help_heading = "Mount")]
    pub foreground: bool,

    /// Mount read-only.
    #[arg(long, alias = "ro", help_heading = "Mount")]
    pub read_only: bool,

    /// Allow other users to access the mount.
    #[arg(long, help_heading = "Mount")]
    pub allow_other: bool,

    /// Allow root to access the mount.
    #[arg(long, help_heading = "Mount")]
    pub allow_root: bool,

    /// Let the kernel check permissions from mode/uid/gid (default with allow_other).
    #[arg(long, help_heading = "Mount")]
    pub default_permissions: bool,

    /// Do not let the kernel check permissions, even with allow_other.
    #[arg(long, help_heading = "Mount")]
    pub no_default_permissions: bool,

    /// Owner of every file (default: the stored uid, else the mounting user).
    #[arg(long, help_heading = "Mount")]
    pub uid: Option<u32>,

    /// Group of every file (default: the stored gid, else the mounting user's).
    #[arg(long, help_heading = "Mount")]
    pub gid: Option<u32>,

    /// Octal bits removed from every mode, e.g. 022.
    #[arg(long, value_name = "OCTAL", value_parser = MODE, help_heading = "Mount")]
    pub umask: Option<Mode>,

    /// Octal permissions of files without stored mode (default 0644).
    #[arg(long, value_name = "OCTAL", value_parser = MODE, help_heading = "Mount")]
    pub file_mode: Option<Mode>,

    /// Octal permissions of directories without stored mode (default 0755).
    #[arg(long, value_name = "OCTAL", value_parser = MODE, help_heading = "Mount")]
    pub dir_mode: Option<Mode>,

    /// How long attributes and listings are trusted, e.g. `1s`, `5m`.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = SPAN,
        default_value_t = Span(FsConfig::default().metadata_ttl),
        help_heading = "Caching"
    )]
    pub metadata_ttl: Span,

    /// How long a missing name is remembered.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = SPAN,
        default_value_t = Span(FsConfig::default().negative_ttl),
        help_heading = "Caching"
    )]
    pub negative_ttl: Span,

    /// List without a HEAD per entry: size and time only, modes from options.
    #[arg(long, help_heading = "Caching")]
    pub fast_list: bool,

    /// Trust cached attributes on open for --metadata-ttl instead of asking
    /// the bucket (one HEAD per open): what another client closed may stay
    /// unseen that long (NFS's `nocto`).
    #[arg(long, visible_alias = "nocto", help_heading = "Caching")]
    pub no_close_to_open: bool,

    /// Storage class of the objects this mount writes (cosfs's
    /// `storage_class=`): standard, standard_ia, intelligent_tiering or a
    /// maz_ class. Renames and metadata changes keep the class their
    /// object is in. Default: the server's (STANDARD).
    #[arg(long, value_name = "CLASS", value_parser = StorageClass::parse_writable, help_heading = "Mount")]
    pub storage_class: Option<StorageClass>,

    /// Server-side encryption of the objects this mount writes (cosfs's
    /// `use_sse`): aes256 (SSE-COS; a bare `--sse` too), kms or kms:KEY_ID
    /// (SSE-KMS). Renames and metadata changes keep the encryption their
    /// object has. Default: none named (a bucket's default encryption
    /// still applies).
    #[arg(
        long,
        visible_alias = "use-sse",
        value_name = "KIND",
        value_parser = Encryption::parse_option,
        num_args = 0..=1,
        default_missing_value = SSE_BARE,
        help_heading = "Mount"
    )]
    pub sse: Option<Encryption>,

    /// Refuse extended attributes (cosfs's `noxattr`): the kernel then
    /// stops asking, and user.* attributes stored by others stay hidden.
    #[arg(long, visible_alias = "noxattr", help_heading = "Mount")]
    pub no_xattr: bool,

    /// One memory budget for cached blocks, write parts and idle buffers
    /// kept for reuse; the daemon stays within it plus ~48 MiB.
    #[arg(
        long,
        value_name = "SIZE",
        value_parser = SIZE,
        default_value_t = Size(FsConfig::default().memory_bytes),
        help_heading = "Caching"
    )]
    pub cache_size: Size,

    /// Most bytes read ahead for one sequential reader.
    #[arg(
        long,
        value_name = "SIZE",
        value_parser = SIZE,
        default_value_t = Size(CacheConfig::default().max_prefetch),
        help_heading = "Caching"
    )]
    pub max_prefetch: Size,

    /// Size of a cached block (a random reader's largest GET; sequential
    /// readers fetch runs of up to 16 MiB of blocks in one GET).
    #[arg(
        long,
        value_name = "SIZE",
        value_parser = SIZE,
        default_value_t = Size(CacheConfig::default().block_size),
        help_heading = "Caching"
    )]
    pub block_size: Size,

    /// Keep fetched blocks on local disk too, in DIR/BUCKET (created 0700),
    /// so a second read is local, also after a remount (s3fs's and cosfs's
    /// `use_cache`). Off unless given; one mount per bucket folder.
    #[arg(
        long,
        value_name = "DIR",
        visible_alias = "use-cache",
        help_heading = "Caching"
    )]
    pub cache_dir: Option<PathBuf>,

    /// Most disk space the blocks in --cache-dir may use.
    #[arg(
        long,
        value_name = "SIZE",
        value_parser = SIZE,
        default_value_t = Size(DEFAULT_DISK_CACHE_BYTES),
        help_heading = "Caching"
    )]
    pub disk_cache_size: Size,

    /// Most HEADs in flight at once for listings: the mount widens or
    /// narrows its window by how fast HEADs finish, up to this.
    #[arg(
        long,
        value_name = "N",
        default_value_t = FsConfig::default().head_concurrency,
        help_heading = "Caching"
    )]
    pub max_requests: usize,

    /// Threads reading FUSE requests.
    #[arg(
        long,
        value_name = "N",
        default_value_t = crate::mount::DEFAULT_FUSE_THREADS,
        help_heading = "Caching"
    )]
    pub fuse_threads: usize,

    /// Kernel read-ahead of the mount in KiB.
    #[arg(
        long,
        value_name = "KIB",
        default_value_t = 1024,
        help_heading = "Caching"
    )]
    pub read_ahead_kb: u32,

    /// Bypass the kernel page cache (FOPEN_DIRECT_IO): `auto` for files of
    /// 32 MiB and more (when the kernel still allows mmap of them), `always`
    /// (the same as a bare `--direct-io` or `-o direct_io`) or `never`.
    /// Large sequential reads get much faster; re-reads are served from
    /// cosmount's own block cache.
    #[arg(
        long,
        value_name = "MODE",
        value_enum,
        default_value_t = DirectIoMode::Auto,
        hide_possible_values = true,
        num_args = 0..=1,
        default_missing_value = DIRECT_IO_BARE,
        help_heading = "Caching"
    )]
    pub direct_io: DirectIoMode,

    /// Part size of multipart uploads (grows for very large files).
    #[arg(
        long,
        value_name = "SIZE",
        value_parser = SIZE,
        default_value_t = Size(UploadConfig::default().part_size),
        help_heading = "Writing"
    )]
    pub part_size: Size,

    /// Parts of one file uploading at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = UploadConfig::default().part_concurrency,
        help_heading = "Writing"
    )]
    pub upload_concurrency: usize,

    /// Folder for staging files of files changed in place [default: $TMPDIR/cosmount-staging].
    #[arg(long, value_name = "DIR", help_heading = "Writing")]
    pub staging_dir: Option<PathBuf>,

    /// Most disk space staging files may use (writes fail with ENOSPC past it).
    #[arg(
        long,
        value_name = "SIZE",
        value_parser = SIZE,
        default_value_t = Size(FsConfig::default().staging_bytes),
        help_heading = "Writing"
    )]
    pub staging_size: Size,

    /// At mount, abort the multipart uploads under the mounted prefix that
    /// were initiated more than AGE before (left by a crash or a lost
    /// answer); `off` keeps them (see `cosmount cleanup`).
    #[arg(
        long,
        value_name = "AGE",
        value_parser = AGE_LIMIT,
        default_value_t = AgeLimit(Some(DEFAULT_STALE_AGE)),
        help_heading = "Writing"
    )]
    pub abort_stale_uploads: AgeLimit,

    /// Log debug messages (same as `--log-level debug`).
    #[arg(short, long, help_heading = "Logging")]
    pub debug: bool,

    /// Log level: error, warn, info, debug, trace.
    #[arg(
        long,
        value_name = "LEVEL",
        value_enum,
        ignore_case = true,
        hide_possible_values = true,
        help_heading = "Logging"
    )]
    pub log_level: Option<LogLevel>,

    /// Write the log to FILE (default: stderr in the foreground, syslog as
    /// a daemon). SIGUSR2 toggles debug logging at runtime.
    #[arg(long, value_name = "FILE", help_heading = "Logging")]
    pub log_file: Option<PathBuf>,

    /// Serve Prometheus metrics at http://ADDR/metrics and the mount's
    /// status as JSON at /status, e.g. `127.0.0.1:9464` (port 0: any free
    /// port, logged). A loopback address unless --metrics-allow-remote.
    #[arg(long, value_name = "ADDR", help_heading = "Monitoring")]
    pub metrics_listen: Option<SocketAddr>,

    /// Let --metrics-listen use an address other hosts can reach.
    #[arg(long, help_heading = "Monitoring")]
    pub metrics_allow_remote: bool,

    /// Write one JSON line per change (create, write-close, truncate,
    /// unlink, rename, mkdir, rmdir, symlink, setattr, setxattr) to FILE;
    /// SIGHUP reopens it (for logrotate). Lines that cannot be written are
    /// dropped and counted; file operations never wait for the audit log.
    #[arg(long, value_name = "FILE", help_heading = "Monitoring")]
    pub audit_log: Option<PathBuf>,

    /// With --audit-log, also write a line for every open for reading.
    #[arg(long, requires = "audit_log", help_heading = "Monitoring")]
    pub audit_reads: bool,
}

/// What a bare `--direct-io` (or `-o direct_io`) means.
pub const DIRECT_IO_BARE: &str = "always";
/// What a bare `--sse` (or cosfs's `-o use_sse`) means.
pub const SSE_BARE: &str = "aes256";
