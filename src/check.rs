//! `cosmount check BUCKET [options]`: says whether a mount with the same
//! options would work, and if not, why, in the order things go wrong:
//! the endpoint's addresses (private network, loopback or public), TCP
//! connections and their latency, the credentials, an anonymous HEAD (is
//! the bucket public? how far is our clock from COS's?), then HEAD Bucket
//! and a one-key List signed as the mount would sign them. Each step is one
//! line of plain words; the last line starts with `OK:` or `FAIL:`.
//! Output goes to a writer the caller passes (stdout in `main.rs`).

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::MountConfig;
use crate::cos::client::{ClientConfig, HttpClient};
use crate::cos::dialect::{COS_REQUEST_ID, SUPPORTED_SERVERS, ServerKind};
use crate::cos::endpoint::Style;
use crate::cos::{CosError, ListRequest, ObjectClient, Provider};
use crate::creds::Selected;
use crate::retry::RetryPolicy;

/// TCP connections opened per address.
const TCP_SAMPLES: usize = 5;
/// Addresses probed with TCP.
const MAX_PROBED: usize = 3;
/// Limit of one connection attempt, DNS lookup or probe request.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Clock differences up to this are not worth a word.
const CLOCK_SLACK: Duration = Duration::from_secs(30);

/// What kind of network an address belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// 127.0.0.0/8 or ::1.
    Loopback,
    /// Tencent Cloud's private network: 10.0.0.0/8, 100.64.0.0/10, 169.254.0.0/16.
    Private,
    /// Another private range (172.16.0.0/12, 192.168.0.0/16, fc00::/7,
    /// fe80::/10): a LAN or a proxy, not Tencent Cloud's network.
    OtherPrivate,
    /// Everything else: the public Internet.
    Public,
}

impl Network {
    /// Classifies `ip`.
    pub fn of(ip: IpAddr) -> Network {
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                match (a, b) {
                    (127, _) => Network::Loopback,
                    (10, _) | (169, 254) => Network::Private,
                    (100, 64..=127) => Network::Private,
                    (172, 16..=31) | (192, 168) => Network::OtherPrivate,
                    _ => Network::Public,
                }
            }
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Network::of(IpAddr::V4(v4)),
                None if v6.is_loopback() => Network::Loopback,
                None if (v6.segments()[0] & 0xfe00) == 0xfc00 => Network::OtherPrivate,
                None if (v6.segments()[0] & 0xffc0) == 0xfe80 => Network::OtherPrivate,
                None => Network::Public,
            },
        }
    }

    /// Plain words for the address list.
    pub fn describe(self) -> &'static str {
        match self {
            Network::Loopback => "loopback (this machine)",
            Network::Private => "private network (Tencent Cloud internal)",
            Network::OtherPrivate => "private address, but not Tencent Cloud's internal network",
            Network::Public => "public network",
        }
    }
}

/// Runs every check, writing one line per step to `out`. Returns true
/// only when a mount with `config` would work.
pub async fn run(config: &MountConfig, out: &mut dyn Write) -> io::Result<bool> {
    let mut report = Report { out };
    match check(config, &mut report).await? {
        Ok(summary) => {
            report.line("OK:", &summary)?;
            Ok(true)
        }
        Err(reason) => {
            report.line("FAIL:", &reason)?;
            Ok(false)
        }
    }
}

/// Where the lines go.
struct Report<'a> {
    out: &'a mut dyn Write,
}

impl Report<'_> {
    fn line(&mut self, label: &str, text: &str) -> io::Result<()> {
        writeln!(self.out, "{label:<12} {text}")?;
        self.out.flush()
    }
}

/// The steps; the inner `Err` is the failure explained in plain words.
async fn check(
    config: &MountConfig,
    report: &mut Report<'_>,
) -> io::Result<Result<String, String>> {
    let mut client_config = match config.target.endpoint(&config.bucket, &config.region) {
        Ok(endpoint) => config.client_config(endpoint),
        Err(e) => return Ok(Err(e)),
    };
    let endpoint = client_config.endpoint.clone();
    report.line(
        "bucket",
        &format!("{} in region {}", config.bucket, config.region),
    )?;
    report.line(
        "endpoint",
        &format!("{} ({})", endpoint.bucket_url(), describe_style(config)),
    )?;
    report.line(
        "dialect",
        match config.provider {
            Provider::Cos => "cos (q-sign-algorithm=sha1 signatures, x-cos-* headers)",
            Provider::S3 => "s3 (SigV4 signatures, x-amz-* headers)",
        },
    )?;
    let (host, port) = host_and_port(&endpoint.host, &endpoint.scheme);
    let addrs = match addresses(config, &host, port).await {
        Ok(addrs) => addrs,
        Err(reason) => return Ok(Err(reason)),
    };
    for (addr, how) in &addrs {
        report.line(
            "address",
            &format!(
                "{}: {} ({how})",
                addr.ip(),
                Network::of(addr.ip()).describe()
            ),
        )?;
    }
    report.line("network", &network_summary(&addrs))?;
    if let Err(reason) = probe_tcp(&addrs, &host, report).await? {
        return Ok(Err(reason));
    }
    let creds = match config.credentials.store().await {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    report.line("credentials", &describe_credentials(config, &creds))?;
    let public = probe_anonymous(&client_config, report).await?;
    // Fail fast: one retry at most (the progress deadlines are short already).
    client_config.retry = RetryPolicy {
        max_attempts: 2,
        ..client_config.retry.clone()
    };
    let client = match HttpClient::new(client_config, Arc::new(creds)) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e.to_string())),
    };
    signed_requests(config, &client, public, report).await
}

fn describe_style(config: &MountConfig) -> String {
    let style = match config.target.endpoint(&config.bucket, &config.region) {
        Ok(e) if e.style == Style::PathStyle => "path-style",
        _ => "virtual-hosted",
    };
    match (config.website, &config.resolve) {
        (true, _) => format!("{style}, static website: read-only, no listing"),
        (false, Some(r)) => format!("{style}, {} resolved by --resolve", r.host),
        (false, None) => style.to_string(),
    }
}

/// `host[:port]` and the scheme's port when none is given.
fn host_and_port(host: &str, scheme: &str) -> (String, u16) {
    let default = if scheme == "https" { 443 } else { 80 };
    let (host, port) = crate::cos::endpoint::split_host_port(host);
    (host.to_string(), port.unwrap_or(default))
}

/// The addresses requests go to: `--resolve`'s, a literal IP, or DNS's.
async fn addresses(
    config: &MountConfig,
    host: &str,
    port: u16,
) -> Result<Vec<(SocketAddr, &'static str)>, String> {
    if let Some(r) = &config.resolve {
        let addr = if r.addr.port() == 0 {
            SocketAddr::new(r.addr.ip(), port)
        } else {
            r.addr
        };
        return Ok(vec![(addr, "from --resolve")]);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![(SocketAddr::new(ip, port), "literal address")]);
    }
    let looked_up = tokio::time::timeout(STEP_TIMEOUT, tokio::net::lookup_host((host, port))).await;
    let found: Vec<SocketAddr> = match looked_up {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(e)) => {
            return Err(format!(
                "cannot resolve {host}: {e}; check the region (--region {}), --endpoint and DNS",
                config.region
            ));
        }
        Err(_) => {
            return Err(format!(
                "DNS did not answer for {host} within {STEP_TIMEOUT:?}: check the DNS servers"
            ));
        }
    };
    if found.is_empty() {
        return Err(format!(
            "{host} has no address: check --region and --endpoint"
        ));
    }
    Ok(found.into_iter().map(|a| (a, "from DNS")).collect())
}

fn network_summary(addrs: &[(SocketAddr, &str)]) -> String {
    let kinds: Vec<Network> = addrs.iter().map(|(a, _)| Network::of(a.ip())).collect();
    if kinds.iter().all(|k| *k == Network::Private) {
        "requests stay on Tencent Cloud's private network".to_string()
    } else if kinds.iter().all(|k| *k == Network::Loopback) {
        "requests stay on this machine (a local server or proxy)".to_string()
    } else if kinds.iter().all(|k| *k == Network::Public) {
        "requests cross the public network (from a CVM in the bucket's region, the private network needs its internal DNS)".to_string()
    } else {
        "addresses of several kinds; requests may take either path".to_string()
    }
}

/// Opens a few TCP connections to each address and reports latency.
/// Fails only when no address accepts any connection.
async fn probe_tcp(
    addrs: &[(SocketAddr, &str)],
    host: &str,
    report: &mut Report<'_>,
) -> io::Result<Result<(), String>> {
    let mut errors = Vec::new();
    let mut reachable = false;
    for (addr, _) in addrs.iter().take(MAX_PROBED) {
        let mut times = Vec::new();
        let mut last_error = None;
        for _ in 0..TCP_SAMPLES {
            let started = Instant::now();
            match tokio::time::timeout(STEP_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_stream)) => times.push(started.elapsed()),
                Ok(Err(e)) => last_error = Some(e.to_string()),
                Err(_) => last_error = Some(format!("no answer within {STEP_TIMEOUT:?}")),
            }
        }
        if times.is_empty() {
            let e = last_error.unwrap_or_default();
            report.line("tcp", &format!("{addr}: cannot connect: {e}"))?;
            errors.push(format!("{addr}: {e}"));
            continue;
        }
        reachable = true;
        times.sort();
        report.line(
            "tcp",
            &format!(
                "{addr}: {}/{TCP_SAMPLES} connections, min {}, median {}",
                times.len(),
                millis(times[0]),
                millis(times[times.len() / 2])
            ),
        )?;
    }
    if reachable {
        return Ok(Ok(()));
    }
    Ok(Err(format!(
        "cannot connect to {host} ({}): check --endpoint/--region, that the server is running, and firewalls",
        errors.join("; ")
    )))
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn describe_credentials(config: &MountConfig, store: &crate::creds::CredentialStore) -> String {
    let origin = config.credentials.origin();
    match (store.snapshot(), origin) {
        (Some(c), Some(origin)) => format!("{origin}: {c}"),
        (Some(c), None) => c.to_string(),
        (None, _) => "none: anonymous requests (public buckets only)".to_string(),
    }
}

/// An unsigned HEAD Bucket: whether the bucket is public, and COS's clock
/// (its `Date`). Returns true when anonymous requests may read.
async fn probe_anonymous(config: &ClientConfig, report: &mut Report<'_>) -> io::Result<bool> {
    let mut builder = reqwest::Client::builder().timeout(STEP_TIMEOUT);
    if let Some(addr) = config.resolve {
        let (host, _) = host_and_port(&config.endpoint.host, &config.endpoint.scheme);
        builder = builder.resolve(&host, addr);
    }
    let answer = match builder.build() {
        Ok(http) => http.head(config.endpoint.bucket_url()).send().await,
        Err(e) => {
            report.line("anonymous", &format!("not tried: {e}"))?;
            return Ok(false);
        }
    };
    let resp = match answer {
        Ok(r) => r,
        Err(e) => {
            report.line("anonymous", &format!("no answer: {}", e.without_url()))?;
            return Ok(false);
        }
    };
    if let Some(date) = resp.headers().get("date").and_then(|d| d.to_str().ok()) {
        report.line("clock", &clock_words(date, SystemTime::now()))?;
    }
    let status = resp.status().as_u16();
    let public = (200..300).contains(&status);
    let words = match status {
        s if (200..300).contains(&s) => {
            "allowed: the bucket is public (readable without keys)".to_string()
        }
        403 => "refused (403): the bucket is private; requests must be signed".to_string(),
        404 => "404: no such bucket at this endpoint".to_string(),
        s => format!("answered HTTP {s}"),
    };
    report.line("anonymous", &words)?;
    Ok(public)
}

/// How far our clock is from a server's `Date`.
fn clock_words(date: &str, now: SystemTime) -> String {
    let Ok(theirs) = httpdate::parse_http_date(date) else {
        return format!("unreadable Date header {date:?}");
    };
    let (ahead, by) = match theirs.duration_since(now) {
        Ok(d) => (false, d),
        Err(e) => (true, e.duration()),
    };
    if by <= CLOCK_SLACK {
        return "our clock agrees with the server's".to_string();
    }
    let side = if ahead { "ahead of" } else { "behind" };
    format!(
        "clock skew: our clock is {}s {side} the server's; COS refuses signatures more than 15 minutes off (cosmount corrects for it, but fix the clock, e.g. enable NTP)",
        by.as_secs()
    )
}

/// HEAD Bucket and a one-key List, signed as the mount signs.
async fn signed_requests(
    config: &MountConfig,
    client: &HttpClient,
    public: bool,
    report: &mut Report<'_>,
) -> io::Result<Result<String, String>> {
    let host = client.endpoint().host.clone();
    let started = Instant::now();
    let head = client.head_bucket().await;
    match &head {
        Ok(()) => report.line(
            "head bucket",
            &format!("ok in {}", millis(started.elapsed())),
        )?,
        Err(e) => report.line("head bucket", &format!("failed: {e}"))?,
    }
    let server = match client.provider() {
        Provider::Cos => server_words(client.server_kind()),
        Provider::S3 => "spoken to in S3's dialect: SigV4 signatures, x-amz-* headers, metadata as s3fs writes it".to_string(),
    };
    report.line("server", &server)?;
    if config.website {
        return Ok(website_verdict(config, head, &host));
    }
    let probe = ListRequest {
        max_keys: 1,
        ..ListRequest::default()
    };
    let started = Instant::now();
    let list = client.list_page(&probe).await;
    match &list {
        Ok(page) => report.line(
            "list",
            &format!(
                "ok in {} ({} entr{} on the first page of one)",
                millis(started.elapsed()),
                page.objects.len() + page.common_prefixes.len(),
                if page.objects.len() + page.common_prefixes.len() == 1 {
                    "y"
                } else {
                    "ies"
                }
            ),
        )?,
        Err(e) => report.line("list", &format!("failed: {e}"))?,
    }
    Ok(verdict(config, head, list.map(|_| ()), public, &host))
}

/// What the answers said about the server, and what follows for a mount.
fn server_words(kind: ServerKind) -> String {
    match kind {
        ServerKind::Cos => format!("speaks COS (answers carry {COS_REQUEST_ID})"),
        ServerKind::Undecided => format!(
            "not known to speak COS (no answer carried {COS_REQUEST_ID}): a mount refuses chmod, chown, touch -d and rename until it does"
        ),
        ServerKind::Other(what) => format!(
            "NOT COS ({what}): a mount reads, lists, writes new files and deletes, but refuses chmod, chown, touch -d and rename (they need COS's server-side copy; supported on {SUPPORTED_SERVERS})"
        ),
    }
}

fn website_verdict(
    config: &MountConfig,
    head: Result<(), CosError>,
    host: &str,
) -> Result<String, String> {
    match head {
        Ok(()) => Ok("the website domain answers; a read-only mount without listing would work".into()),
        Err(e) if e.status() == Some(404) && e.code() != "NoSuchBucket" => {
            Ok("the website domain answers (no index document at /); a read-only mount without listing would work".into())
        }
        Err(e) => Err(explain(&e, config, host)),
    }
}

/// The conclusion from HEAD Bucket and List.
fn verdict(
    config: &MountConfig,
    head: Result<(), CosError>,
    list: Result<(), CosError>,
    public: bool,
    host: &str,
) -> Result<String, String> {
    let anonymous = matches!(config.credentials, Selected::Anonymous);
    match (head, list) {
        (Ok(()), Ok(())) if anonymous => Ok(
            "anonymous requests can read and list this public bucket; the mount would work".into(),
        ),
        (Ok(()), Ok(())) => Ok(
            "the bucket answers HEAD and List with these credentials; the mount would work".into(),
        ),
        (Ok(()), Err(e)) if e.status() == Some(403) => Err(format!(
            "permission denied for list ({}): the credentials{} reach bucket {} but may not list it, and a mount lists directories: grant GetBucket (cos:GetBucket) on the bucket",
            e.code(),
            origin_words(config),
            config.bucket
        )),
        (Ok(()), Err(e)) => Err(explain(&e, config, host)),
        (Err(head), list) => {
            // A HEAD answer has no body; the List's error names the cause.
            let error = match list {
                Err(e) if !e.code().is_empty() => e,
                _ => head,
            };
            let mut reason = explain(&error, config, host);
            if public && !anonymous {
                reason.push_str(
                    "; note: the bucket is public, so --anonymous would work for reading",
                );
            }
            Err(reason)
        }
    }
}

fn origin_words(config: &MountConfig) -> String {
    config
        .credentials
        .origin()
        .map(|o| format!(" (from {o})"))
        .unwrap_or_default()
}

/// Plain words for a failed bucket check.
pub fn explain(error: &CosError, config: &MountConfig, host: &str) -> String {
    let bucket = &config.bucket;
    let origin = match &config.credentials {
        Selected::Static { origin, .. } => format!(" (from {origin})"),
        Selected::Refreshing(spec) => format!(" (from {})", spec.origin()),
        Selected::Anonymous => " (anonymous requests)".to_string(),
        Selected::Generated => String::new(),
    };
    match (error.status(), error.code()) {
        (_, "NoSuchBucket") | (Some(404), _) => format!(
            "bucket {bucket} does not exist in region {} at {host}: check the bucket name and --region",
            config.region
        ),
        (_, "SignatureDoesNotMatch") => {
            format!("the SecretKey{origin} does not match the SecretId: check the key pair")
        }
        (_, "InvalidAccessKeyId") => {
            format!("the SecretId{origin} is not known to COS: check the key pair")
        }
        (_, "ExpiredToken" | "InvalidToken") => {
            format!("the session token{origin} has expired or is invalid: get new temporary keys")
        }
        (_, "RequestTimeTooSkewed") => {
            "the local clock is too far from COS's: fix the time (e.g. enable NTP)".to_string()
        }
        (Some(403), _) => format!(
            "access to bucket {bucket} was denied{origin}: check the keys and that they may read this bucket"
        ),
        (None, _) if error.is_certificate_error() => format!(
            "the TLS certificate of {host} is not trusted ({}): cosmount verifies certificates against the system's trusted CAs; give a URL whose certificate is valid, or add its CA to the system's store (update-ca-certificates)",
            certificate_problem(error)
        ),
        (None, _) => {
            format!("cannot reach {host}: {error} (check --region/--endpoint and the network)")
        }
        _ => format!("bucket {bucket} cannot be used: {error}"),
    }
}

/// The certificate part of a transport error's message.
fn certificate_problem(error: &CosError) -> String {
    let text = error.to_string();
    match text.find("invalid peer certificate") {
        Some(i) => text[i..].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_networks() {
        assert_eq!(Network::of(ip("127.0.0.1")), Network::Loopback);
        assert_eq!(Network::of(ip("127.8.9.1")), Network::Loopback);
        assert_eq!(Network::of(ip("::1")), Network::Loopback);
        for private in [
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.0.23",
        ] {
            assert_eq!(Network::of(ip(private)), Network::Private, "{private}");
        }
        for public in [
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "11.0.0.1",
            "1.1.1.1",
            "2001:db8::1",
        ] {
            assert_eq!(Network::of(ip(public)), Network::Public, "{public}");
        }
        assert_eq!(Network::of(ip("192.168.1.1")), Network::OtherPrivate);
        assert_eq!(Network::of(ip("172.20.0.1")), Network::OtherPrivate);
        assert_eq!(Network::of(ip("fd00::1")), Network::OtherPrivate);
        assert_eq!(Network::of(ip("::ffff:10.1.2.3")), Network::Private);
    }

    #[test]
    fn splits_host_and_port() {
        assert_eq!(
            host_and_port("b.cos.x.myqcloud.com", "https"),
            ("b.cos.x.myqcloud.com".into(), 443)
        );
        assert_eq!(
            host_and_port("127.0.0.1:9000", "http"),
            ("127.0.0.1".into(), 9000)
        );
        assert_eq!(host_and_port("[::1]:81", "http"), ("::1".into(), 81));
        assert_eq!(host_and_port("h", "http"), ("h".into(), 80));
    }

    fn config(args: &[&str]) -> MountConfig {
        use clap::Parser;
        let full = [
            &["cosmount", "b-1250000000", "--region", "ap-guangzhou"][..],
            args,
        ]
        .concat();
        let around = crate::creds::select::Surroundings {
            env: &|_: &str| None,
            default_passwd_files: Vec::new(),
            aws: crate::creds::aws::AwsDefaults::default(),
        };
        let cli = crate::cli::Cli::try_parse_from(full).unwrap();
        MountConfig::for_command("check", &cli.mount, &around, &|_, _| {
            Ok(Some(crate::cos::Provider::Cos))
        })
        .unwrap()
    }

    #[test]
    fn verdicts_name_the_cause() {
        let keys = config(&["--secret-id", "AKIDx", "--secret-key", "k"]);
        let denied = || Err(CosError::service(403, "AccessDenied", "Access Denied."));
        let e = verdict(&keys, Ok(()), denied(), false, "h").unwrap_err();
        assert!(e.starts_with("permission denied for list (AccessDenied): the credentials (from the command line) reach bucket b-1250000000 but may not list it"), "{e}");
        let ok = verdict(&keys, Ok(()), Ok(()), false, "h").unwrap();
        assert!(ok.contains("the mount would work"), "{ok}");
        let skewed = Err(CosError::service(403, "RequestTimeTooSkewed", "skew"));
        let e = verdict(
            &keys,
            Err(CosError::service(403, "", "")),
            skewed,
            false,
            "h",
        )
        .unwrap_err();
        assert!(e.contains("clock is too far"), "{e}");
        let expired = Err(CosError::service(400, "ExpiredToken", "expired"));
        let e = verdict(
            &keys,
            Err(CosError::service(400, "", "")),
            expired,
            true,
            "h",
        )
        .unwrap_err();
        assert!(
            e.contains("session token") && e.contains("--anonymous would work"),
            "{e}"
        );
        let anonymous = config(&["--anonymous"]);
        let ok = verdict(&anonymous, Ok(()), Ok(()), true, "h").unwrap();
        assert!(ok.contains("public bucket"), "{ok}");
        let website = config(&["--anonymous", "--website"]);
        let missing_index = Err(CosError::service(404, "NoSuchKey", ""));
        assert!(website_verdict(&website, missing_index, "h").is_ok());
        let missing_bucket = Err(CosError::service(404, "NoSuchBucket", ""));
        assert!(
            website_verdict(&website, missing_bucket, "h")
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn words_for_clock_differences() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = |offset: i64| {
            let t = if offset >= 0 {
                now + Duration::from_secs(offset as u64)
            } else {
                now - Duration::from_secs((-offset) as u64)
            };
            httpdate::fmt_http_date(t)
        };
        assert_eq!(
            clock_words(&date(5), now),
            "our clock agrees with the server's"
        );
        let w = clock_words(&date(-1200), now);
        assert!(
            w.starts_with("clock skew: our clock is 1200s ahead of the server's"),
            "{w}"
        );
        let w = clock_words(&date(600), now);
        assert!(w.contains("600s behind"), "{w}");
        assert!(clock_words("garbage", now).contains("unreadable"));
    }
}
