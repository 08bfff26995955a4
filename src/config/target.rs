//! Where a mount's requests go: the bucket name and prefix, the region,
//! COS's own domains or a custom endpoint or `--local`, and `--resolve`.
//! Contradictory endpoint flags are refused here, each pair with why.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cli::MountArgs;
use crate::cos::Provider;
use crate::cos::endpoint::{Endpoint, Style};

/// The region of `--endpoint`/`--local` mounts that name none.
const FALLBACK_REGION: &str = "ap-guangzhou";

/// The region of S3 targets that name none (AWS's own default).
const S3_DEFAULT_REGION: &str = "us-east-1";

/// Where requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One of COS's own domains.
    Cos {
        /// Use HTTPS (the default; `--http` turns it off).
        https: bool,
        /// Which domain.
        domain: Domain,
    },
    /// A custom endpoint URL.
    Custom {
        /// The URL.
        url: String,
        /// Path-style addressing.
        path_style: bool,
    },
    /// The embedded server over a local folder.
    Local {
        /// The folder.
        dir: PathBuf,
    },
}

/// COS's own domains for a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// `<bucket>.cos.<region>.myqcloud.com` (the default).
    VirtualHosted,
    /// `cos.<region>.myqcloud.com/<bucket>` (`--path-style`).
    PathStyle,
    /// `<bucket>.cos.accelerate.myqcloud.com` (`--accelerate`).
    Accelerate,
    /// `<bucket>.cos-website.<region>.myqcloud.com` (`--website`).
    Website,
}

impl Target {
    /// Where `bucket` of `region` lives for this target (not for `Local`,
    /// whose address is known only once its server runs).
    pub fn endpoint(&self, bucket: &str, region: &str) -> Result<Endpoint, String> {
        Ok(match self {
            Target::Cos { https, domain } => match domain {
                Domain::VirtualHosted => Endpoint::virtual_hosted(bucket, region, *https),
                Domain::PathStyle => Endpoint::path_style(bucket, region, *https),
                Domain::Accelerate => Endpoint::accelerate(bucket, region, *https),
                Domain::Website => Endpoint::website(bucket, region, *https),
            },
            Target::Custom { url, path_style } => {
                let style = if *path_style {
                    Style::PathStyle
                } else {
                    Style::VirtualHosted
                };
                Endpoint::custom(url, bucket, region, style).map_err(|e| e.to_string())?
            }
            Target::Local { dir } => {
                return Err(format!(
                    "--local {} has no endpoint before its server starts",
                    dir.display()
                ));
            }
        })
    }
}

/// `--resolve HOST:ADDR`: send requests for HOST to ADDR instead of asking DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolve {
    /// The host name (no port).
    pub host: String,
    /// Where its requests go.
    pub addr: SocketAddr,
}

/// The region: `--region`, else the one a COS regional `--endpoint` URL
/// names; required for COS's own domains; `us-east-1` for S3 targets.
pub(super) fn region(
    args: &MountArgs,
    target: &Target,
    provider: Provider,
) -> Result<String, String> {
    match (&args.region, target) {
        (Some(r), _) => validate_region(r),
        (None, Target::Custom { url, .. }) if url_region(url).is_some() => {
            Ok(url_region(url).unwrap_or_default())
        }
        (None, Target::Cos { .. }) => Err("--region is required (e.g. --region ap-guangzhou) unless --endpoint or --local is given".into()),
        (None, _) if provider == Provider::S3 => Ok(S3_DEFAULT_REGION.to_string()),
        (None, _) => Ok(FALLBACK_REGION.to_string()),
    }
}

/// Splits `bucket[:/prefix]` and checks the bucket name by `provider`'s rule.
pub fn parse_bucket_spec(spec: &str, provider: Provider) -> Result<(String, String), String> {
    let (bucket, prefix) = match spec.split_once(':') {
        Some((b, p)) => (b, p.trim_start_matches('/')),
        None => (spec, ""),
    };
    match provider {
        Provider::Cos => validate_bucket(bucket)?,
        Provider::S3 if crate::cos::bucket::is_valid_s3_name(bucket) => {}
        Provider::S3 => {
            return Err(format!(
                "bucket {bucket:?} is not a valid S3 bucket name (3-63 lowercase letters, digits, '.' and '-')"
            ));
        }
    }
    let prefix = match prefix {
        "" => String::new(),
        p if p.ends_with('/') => p.to_string(),
        p => format!("{p}/"),
    };
    Ok((bucket.to_string(), prefix))
}

/// A bucket is `<name>-<appid>`: lowercase letters, digits and `-`, then digits.
pub fn validate_bucket(bucket: &str) -> Result<(), String> {
    if crate::cos::bucket::is_valid_name(bucket) {
        Ok(())
    } else {
        Err(format!(
            "bucket {bucket:?} is not of the form <name>-<appid> (e.g. examplebucket-1250000000), as COS names buckets; for another S3-compatible server, add --provider s3"
        ))
    }
}

fn validate_region(region: &str) -> Result<String, String> {
    let ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(region.to_string())
    } else {
        Err(format!(
            "region {region:?} is not a region name (e.g. ap-guangzhou, us-east-1)"
        ))
    }
}

/// Where requests go; `explicit` is `--provider`, when given (S3 without
/// `--endpoint` means AWS S3).
pub(super) fn target(args: &MountArgs, explicit: Option<Provider>) -> Result<Target, String> {
    refuse_contradictions(args)?;
    if let Some(dir) = &args.local {
        if explicit == Some(Provider::S3) {
            return Err(
                "--local serves a COS bucket: it cannot be combined with --provider s3".into(),
            );
        }
        return Ok(Target::Local { dir: dir.clone() });
    }
    if explicit == Some(Provider::S3) && args.endpoint.is_none() {
        if args.accelerate || args.website {
            return Err("--accelerate and --website name COS's domains: they cannot be combined with --provider s3".into());
        }
        let scheme = if args.http { "http" } else { "https" };
        let region = args.region.as_deref().unwrap_or(S3_DEFAULT_REGION);
        return Ok(Target::Custom {
            url: format!("{scheme}://s3.{region}.amazonaws.com"),
            path_style: args.path_style,
        });
    }
    if let Some(url) = &args.endpoint {
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(format!(
                "--endpoint {url:?} must start with http:// or https://"
            ));
        }
        return Ok(Target::Custom {
            url: url.clone(),
            path_style: args.path_style,
        });
    }
    let domain = if args.accelerate {
        Domain::Accelerate
    } else if args.website {
        Domain::Website
    } else if args.path_style {
        Domain::PathStyle
    } else {
        Domain::VirtualHosted
    };
    Ok(Target::Cos {
        https: !args.http,
        domain,
    })
}

/// Asks a custom endpoint (reached at an address when `--resolve` gives
/// one) which dialect it speaks: `None` when it did not answer (injected
/// by tests; see `cos::provider::probe`).
pub type Probe<'a> = &'a dyn Fn(&str, Option<SocketAddr>) -> Result<Option<Provider>, String>;

/// The dialect: `--provider` (`explicit`), else what the target implies:
/// COS for COS's domains and `--local`, the domain's for a custom endpoint
/// on COS's or AWS's, else what the endpoint itself answers (`probe`; COS
/// when it does not answer, and the mount says why).
pub(super) fn provider(
    args: &MountArgs,
    explicit: Option<Provider>,
    target: &Target,
    probe: Probe<'_>,
) -> Result<Provider, String> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    match target {
        Target::Cos { .. } | Target::Local { .. } => Ok(Provider::Cos),
        Target::Custom { url, .. } => {
            let host = url.split_once("://").map_or("", |(_, r)| r);
            let host = host.split('/').next().unwrap_or_default();
            if let Some(p) = Provider::of_host(host) {
                return Ok(p);
            }
            let resolve_addr = args
                .resolve
                .as_deref()
                .and_then(|r| r.split_once(':'))
                .and_then(|(_, addr)| addr.parse().ok());
            Ok(probe(url.trim_end_matches('/'), resolve_addr)?.unwrap_or(Provider::Cos))
        }
    }
}

/// Refuses endpoint flags that contradict each other, saying why.
fn refuse_contradictions(args: &MountArgs) -> Result<(), String> {
    let named = [
        ("--local", args.local.is_some()),
        ("--endpoint", args.endpoint.is_some()),
        ("--accelerate", args.accelerate),
        ("--website", args.website),
        ("--path-style", args.path_style),
        ("--http", args.http),
        ("--resolve", args.resolve.is_some()),
    ];
    let given = |name: &str| named.iter().any(|(n, on)| *n == name && *on);
    // Pairs that contradict each other, and why.
    let conflicts = [
        (
            "--local",
            "--endpoint",
            "the embedded server is the endpoint",
        ),
        (
            "--local",
            "--accelerate",
            "the embedded server is the endpoint",
        ),
        (
            "--local",
            "--website",
            "the embedded server is the endpoint",
        ),
        (
            "--local",
            "--resolve",
            "the embedded server is the endpoint",
        ),
        (
            "--endpoint",
            "--accelerate",
            "give the accelerate URL as --endpoint instead",
        ),
        (
            "--endpoint",
            "--http",
            "write http:// in the --endpoint URL instead",
        ),
        ("--accelerate", "--website", "they are different domains"),
        (
            "--accelerate",
            "--path-style",
            "the accelerate domain names the bucket in the host",
        ),
        (
            "--website",
            "--path-style",
            "the website domain names the bucket in the host",
        ),
    ];
    for (a, b, why) in conflicts {
        if given(a) && given(b) {
            return Err(format!("{a} and {b} cannot be combined: {why}"));
        }
    }
    Ok(())
}

/// The region a regional-domain URL names: COS's
/// (`https://cos.<region>.myqcloud.com`) or AWS's
/// (`https://s3.<region>.amazonaws.com`, `s3-<region>`, with or without the
/// bucket in front).
fn url_region(url: &str) -> Option<String> {
    let host = url.split_once("://")?.1.split('/').next()?;
    if let Some(region) = crate::cos::endpoint::regional_domain(host) {
        return Some(region.to_string());
    }
    let name = crate::cos::endpoint::host_without_port(host);
    let service = name
        .strip_suffix(".amazonaws.com")
        .or_else(|| name.strip_suffix(".amazonaws.com.cn"))?;
    let (_, after) = service.rsplit_once("s3")?;
    let region = after.trim_start_matches(['.', '-']);
    let region = region.strip_prefix("dualstack.").unwrap_or(region);
    let plain = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    plain.then(|| region.to_string())
}

/// Parses `--resolve HOST:ADDR` (ADDR is `IP:PORT` or `[IPv6]:PORT`) and
/// checks HOST is the host requests go to.
pub(super) fn resolve(
    text: &str,
    target: &Target,
    bucket: &str,
    region: &str,
) -> Result<Resolve, String> {
    let bad = || {
        format!(
            "--resolve {text:?} is not HOST:IP:PORT (e.g. {bucket}.cos.{region}.myqcloud.com:127.0.0.1:8080)"
        )
    };
    let (host, addr) = text.split_once(':').ok_or_else(bad)?;
    let addr: SocketAddr = addr.parse().map_err(|_| bad())?;
    let endpoint = target.endpoint(bucket, region)?;
    let endpoint_host = crate::cos::endpoint::host_without_port(&endpoint.host);
    if host.is_empty() || !host.eq_ignore_ascii_case(endpoint_host) {
        return Err(format!(
            "--resolve names host {host:?}, but requests go to {endpoint_host}"
        ));
    }
    Ok(Resolve {
        host: endpoint_host.to_string(),
        addr,
    })
}
