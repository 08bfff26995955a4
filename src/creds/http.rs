//! The small HTTP client the metadata and STS providers share: short
//! timeouts, no proxy for loopback or metadata addresses, and error text
//! that follows the cause chain (reqwest's top-level message alone is
//! rarely enough to act on).

use std::time::Duration;

use super::CredsError;

/// A client for credential endpoints; `proxy` false bypasses any
/// `HTTP(S)_PROXY` (the metadata service and loopback must be reached directly).
pub fn client(timeout: Duration, proxy: bool, origin: &str) -> Result<reqwest::Client, CredsError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .timeout(timeout)
        .user_agent(concat!("cosmount/", env!("CARGO_PKG_VERSION")));
    if !proxy {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| CredsError::unavailable(origin, format!("cannot build an HTTP client: {e}")))
}

/// True for `http(s)://127.x`, `[::1]` and `localhost` URLs.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Parses an endpoint URL given in an option, naming the option on error.
pub fn parse_url(option: &str, value: &str) -> Result<reqwest::Url, CredsError> {
    let url = reqwest::Url::parse(value)
        .map_err(|e| CredsError::Config(format!("{option} {value:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CredsError::Config(format!(
            "{option} {value:?} must be an http:// or https:// URL"
        )));
    }
    Ok(url)
}

/// A transport error with its causes but without the URL (callers name
/// it once themselves), e.g. `error sending request: ...: Connection refused`.
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_loopback_urls() {
        let loopback = |u: &str| is_loopback(&parse_url("x", u).unwrap());
        assert!(loopback("http://127.0.0.1:8080/x"));
        assert!(loopback("http://[::1]:80/"));
        assert!(loopback("http://localhost/"));
        assert!(!loopback("https://sts.tencentcloudapi.com/"));
        assert!(!loopback("http://metadata.tencentyun.com/latest"));
    }

    #[test]
    fn endpoint_options_must_be_http_urls() {
        let e = parse_url("sts_endpoint", "ftp://x/")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sts_endpoint") && e.contains("http://"), "{e}");
        assert!(parse_url("sts_endpoint", "nonsense").is_err());
    }
}
