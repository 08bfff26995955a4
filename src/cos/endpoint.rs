//! Where a bucket lives: base URL, Host and how keys map onto paths.
//! Virtual-hosted (`<bucket>.cos.<region>.myqcloud.com`, the default),
//! path-style (`cos.<region>.myqcloud.com/<bucket>`), a custom URL (a private
//! gateway or `cosmount serve`), the accelerate domain, and the static-website
//! domain (read-only).

use super::{CosError, Provider, path};

/// How the bucket is addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// The bucket is in the Host (or the URL already names the bucket).
    VirtualHosted,
    /// The bucket is the first path segment.
    PathStyle,
}

/// The resolved location of one bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    /// Host and optional port, as sent in `Host`.
    pub host: String,
    /// Bucket `name-appid`.
    pub bucket: String,
    /// Region (used in copy sources).
    pub region: String,
    /// Addressing style.
    pub style: Style,
    /// True for the static-website domain: GET/HEAD only, no listing.
    pub read_only: bool,
}

impl Endpoint {
    /// The default virtual-hosted domain `<bucket>.cos.<region>.myqcloud.com`.
    pub fn virtual_hosted(bucket: &str, region: &str, https: bool) -> Endpoint {
        Endpoint::new(
            https,
            format!("{bucket}.cos.{region}.myqcloud.com"),
            bucket,
            region,
            Style::VirtualHosted,
        )
    }

    /// Path-style `cos.<region>.myqcloud.com/<bucket>`.
    pub fn path_style(bucket: &str, region: &str, https: bool) -> Endpoint {
        Endpoint::new(
            https,
            format!("cos.{region}.myqcloud.com"),
            bucket,
            region,
            Style::PathStyle,
        )
    }

    /// The global accelerate domain.
    pub fn accelerate(bucket: &str, region: &str, https: bool) -> Endpoint {
        Endpoint::new(
            https,
            format!("{bucket}.cos.accelerate.myqcloud.com"),
            bucket,
            region,
            Style::VirtualHosted,
        )
    }

    /// The static-website domain: read-only, anonymous browsing.
    pub fn website(bucket: &str, region: &str, https: bool) -> Endpoint {
        let mut e = Endpoint::new(
            https,
            format!("{bucket}.cos-website.{region}.myqcloud.com"),
            bucket,
            region,
            Style::VirtualHosted,
        );
        e.read_only = true;
        e
    }

    /// A custom endpoint URL such as `http://127.0.0.1:9000`. With
    /// [`Style::VirtualHosted`] the URL itself is the bucket's address;
    /// with [`Style::PathStyle`] the bucket follows as the first segment.
    /// A COS regional domain (`cos.<region>.myqcloud.com`, as cosfs's
    /// `url=` takes it) cannot address a bucket by itself: virtual-hosted,
    /// the bucket is put in front of it, as cosfs does.
    pub fn custom(
        url: &str,
        bucket: &str,
        region: &str,
        style: Style,
    ) -> Result<Endpoint, CosError> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            CosError::InvalidRequest(format!(
                "endpoint {url:?} must start with http:// or https://"
            ))
        })?;
        if scheme != "http" && scheme != "https" {
            return Err(CosError::InvalidRequest(format!(
                "endpoint {url:?} must use http or https"
            )));
        }
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            return Err(CosError::InvalidRequest(format!(
                "endpoint {url:?} must be a scheme and host[:port] only"
            )));
        }
        let host = match style {
            Style::VirtualHosted if regional_domain(host).is_some() || aws_service_domain(host) => {
                format!("{bucket}.{host}")
            }
            _ => host.to_string(),
        };
        Ok(Endpoint::new(
            scheme == "https",
            host,
            bucket,
            region,
            style,
        ))
    }

    fn new(https: bool, host: String, bucket: &str, region: &str, style: Style) -> Endpoint {
        Endpoint {
            scheme: if https { "https" } else { "http" }.to_string(),
            host,
            bucket: bucket.to_string(),
            region: region.to_string(),
            style,
            read_only: false,
        }
    }

    /// The path of the bucket itself (`/` or `/<bucket>/`), unencoded, as signed.
    pub fn bucket_path(&self) -> String {
        match self.style {
            Style::VirtualHosted => "/".to_string(),
            Style::PathStyle => format!("/{}/", self.bucket),
        }
    }

    /// The path of an object as signed: raw, not percent-encoded.
    pub fn signed_path(&self, key: &str) -> String {
        format!("{}{key}", self.bucket_path())
    }

    /// The URL of an object, without a query string.
    pub fn object_url(&self, key: &str) -> Result<String, CosError> {
        Ok(format!("{}{}", self.bucket_url(), path::encode_key(key)?))
    }

    /// The URL of the bucket (ends with `/`).
    pub fn bucket_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.bucket_path())
    }

    /// The copy-source header's value for a key of this bucket: COS's
    /// documented `<bucket>.cos.<region>.myqcloud.com/<key>`, or S3's
    /// `/<bucket>/<key>`.
    pub fn copy_source(&self, key: &str, provider: Provider) -> Result<String, CosError> {
        let key = path::encode_key(key)?;
        Ok(match provider {
            Provider::Cos => format!("{}.cos.{}.myqcloud.com/{key}", self.bucket, self.region),
            Provider::S3 => format!("/{}/{key}", self.bucket),
        })
    }
}

/// Splits `host[:port]` into the host and the port, when one is given and
/// is a number. An IPv6 address is written in brackets (`[::1]:9000`) and
/// comes back without them (`::1`).
pub fn split_host_port(host: &str) -> (&str, Option<u16>) {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let (ip, after) = rest.split_once(']').unwrap_or((rest, ""));
            (ip, after.strip_prefix(':'))
        }
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    (name, port.and_then(|p| p.parse().ok()))
}

/// The host of `host[:port]`, without the port (nor an IPv6 address's
/// brackets).
pub fn host_without_port(host: &str) -> &str {
    split_host_port(host).0
}

/// The region of a COS regional domain (`cos.<region>.myqcloud.com`,
/// `cos-internal.<region>.tencentcos.cn`, ...), without a bucket in front.
pub fn regional_domain(host: &str) -> Option<&str> {
    let name = host_without_port(host);
    let rest = name
        .strip_prefix("cos.")
        .or_else(|| name.strip_prefix("cos-internal."))?;
    let region = rest
        .strip_suffix(".myqcloud.com")
        .or_else(|| rest.strip_suffix(".tencentcos.cn"))?;
    let plain = !region.is_empty()
        && region != "accelerate"
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    plain.then_some(region)
}

/// Whether `host` is AWS S3's service domain without a bucket
/// (`s3.amazonaws.com`, `s3.<region>.amazonaws.com`, `s3-<region>...`).
pub fn aws_service_domain(host: &str) -> bool {
    let name = host_without_port(host);
    let service = name
        .strip_suffix(".amazonaws.com")
        .or_else(|| name.strip_suffix(".amazonaws.com.cn"));
    service.is_some_and(|s| s == "s3" || s.starts_with("s3.") || s.starts_with("s3-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_each_style() {
        let v = Endpoint::virtual_hosted("b-125", "ap-beijing", true);
        assert_eq!(
            v.object_url("a b/./c").unwrap(),
            "https://b-125.cos.ap-beijing.myqcloud.com/a%20b/.%2Fc"
        );
        assert_eq!(v.signed_path("a b"), "/a b");
        let p = Endpoint::path_style("b-125", "ap-beijing", false);
        assert_eq!(
            p.object_url("k").unwrap(),
            "http://cos.ap-beijing.myqcloud.com/b-125/k"
        );
        assert_eq!(p.signed_path("k"), "/b-125/k");
        assert_eq!(p.bucket_url(), "http://cos.ap-beijing.myqcloud.com/b-125/");
        let w = Endpoint::website("b-125", "ap-beijing", true);
        assert!(w.read_only);
        assert_eq!(w.host, "b-125.cos-website.ap-beijing.myqcloud.com");
        assert_eq!(
            v.copy_source("x/y z", Provider::Cos).unwrap(),
            "b-125.cos.ap-beijing.myqcloud.com/x/y%20z"
        );
        assert_eq!(
            v.copy_source("x/y z", Provider::S3).unwrap(),
            "/b-125/x/y%20z"
        );
    }

    #[test]
    fn recognises_regional_domains() {
        assert_eq!(
            regional_domain("cos.ap-beijing.myqcloud.com"),
            Some("ap-beijing")
        );
        assert_eq!(
            regional_domain("cos-internal.ap-shanghai.tencentcos.cn:8080"),
            Some("ap-shanghai")
        );
        assert_eq!(regional_domain("b-1.cos.ap-beijing.myqcloud.com"), None);
        assert_eq!(regional_domain("cos.accelerate.myqcloud.com"), None);
        assert_eq!(regional_domain("127.0.0.1:9000"), None);
        assert_eq!(regional_domain("gateway.example.com"), None);
    }

    #[test]
    fn splits_host_and_port() {
        assert_eq!(split_host_port("example.com"), ("example.com", None));
        assert_eq!(
            split_host_port("example.com:9000"),
            ("example.com", Some(9000))
        );
        assert_eq!(split_host_port("127.0.0.1:80"), ("127.0.0.1", Some(80)));
        assert_eq!(split_host_port("[::1]:9000"), ("::1", Some(9000)));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
        assert_eq!(split_host_port("example.com:x"), ("example.com", None));
        for (host, name) in [
            ("example.com", "example.com"),
            ("example.com:9000", "example.com"),
            ("127.0.0.1:80", "127.0.0.1"),
            ("[::1]:9000", "::1"),
            ("[::1]", "::1"),
        ] {
            assert_eq!(host_without_port(host), name, "{host}");
        }
    }

    #[test]
    fn parses_custom_urls() {
        let c =
            Endpoint::custom("http://127.0.0.1:9000/", "b-1", "r", Style::VirtualHosted).unwrap();
        assert_eq!(c.host, "127.0.0.1:9000");
        assert_eq!(c.object_url("k").unwrap(), "http://127.0.0.1:9000/k");
        assert!(Endpoint::custom("127.0.0.1:9000", "b", "r", Style::PathStyle).is_err());
        let cosfs = Endpoint::custom(
            "https://cos.ap-guangzhou.myqcloud.com",
            "b-1",
            "ap-guangzhou",
            Style::VirtualHosted,
        )
        .unwrap();
        assert_eq!(
            cosfs.bucket_url(),
            "https://b-1.cos.ap-guangzhou.myqcloud.com/"
        );
        let path = Endpoint::custom(
            "https://cos.ap-guangzhou.myqcloud.com",
            "b-1",
            "ap-guangzhou",
            Style::PathStyle,
        )
        .unwrap();
        assert_eq!(
            path.bucket_url(),
            "https://cos.ap-guangzhou.myqcloud.com/b-1/"
        );
        let aws = Endpoint::custom(
            "https://s3.eu-west-1.amazonaws.com",
            "my.bucket",
            "eu-west-1",
            Style::VirtualHosted,
        )
        .unwrap();
        assert_eq!(
            aws.bucket_url(),
            "https://my.bucket.s3.eu-west-1.amazonaws.com/"
        );
        assert!(!aws_service_domain("my.bucket.s3.eu-west-1.amazonaws.com"));
        assert!(Endpoint::custom("ftp://x", "b", "r", Style::PathStyle).is_err());
        assert!(Endpoint::custom("http://x/y", "b", "r", Style::PathStyle).is_err());
    }
}
