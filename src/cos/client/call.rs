//! One logical request ([`Call`]): what to send, built once and sent as
//! many times as the retry loop decides. A call never changes between
//! attempts; what differs (credentials, the signing time) is added at send
//! time.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::HeaderMap;

use crate::cos::endpoint::Endpoint;
use crate::cos::provider::{Header, Provider};
use crate::cos::sign::{self, KeyTime, StringToSign};
use crate::cos::sigv4::{self, Payload, Rules, Scope, V4Request};
use crate::cos::{BodyBuffers, CosError, CosResult, ObjectAttrs};
use crate::creds::Credentials;

/// One logical request, sent possibly several times.
pub(super) struct Call<'a> {
    /// The operation's name in logs.
    pub op: &'static str,
    /// The HTTP method.
    pub method: Method,
    /// The object, or `None` for a bucket operation.
    pub key: Option<&'a str>,
    /// Query parameters, decoded, in the order sent.
    pub params: Vec<(String, String)>,
    /// Request headers (lowercase names) besides Host, Content-Length and
    /// the session token.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Bytes,
    /// The answer is an XML document that may be `<Error>` even with 200.
    pub xml_result: bool,
    /// Where the response body's memory comes from.
    pub buffers: Option<std::sync::Arc<dyn BodyBuffers>>,
    /// Checks a successful answer; a failure is retried like a damaged body.
    pub check: Option<&'a Check<'a>>,
    /// A duplicate may be sent when the answer is slow (the request is
    /// idempotent and cheap to repeat).
    pub hedge: bool,
    /// Bytes the server copies before it answers (Copy, Complete): it
    /// gets time for them on top of the first-byte deadline.
    pub server_work: u64,
}

/// A check of a successful answer's headers and body.
pub(super) type Check<'a> = dyn Fn(&HeaderMap, &Bytes) -> CosResult<()> + Sync + 'a;

impl<'a> Call<'a> {
    /// A call of `op` with no parameters, headers or body.
    pub fn new(op: &'static str, method: Method, key: Option<&'a str>) -> Call<'a> {
        Call {
            op,
            method,
            key,
            params: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            xml_result: false,
            buffers: None,
            check: None,
            hedge: false,
            server_work: 0,
        }
    }

    /// Allows hedging: the request may be sent twice at once.
    pub fn hedged(mut self) -> Self {
        self.hedge = true;
        self
    }

    /// Notes that the server copies `bytes` before it answers.
    pub fn server_work(mut self, bytes: u64) -> Self {
        self.server_work = bytes;
        self
    }

    /// Adds a query parameter.
    pub fn param(mut self, name: &str, value: impl Into<String>) -> Self {
        self.params.push((name.to_string(), value.into()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Adds the headers that describe a new object, user metadata in
    /// `provider`'s dialect.
    pub fn attrs(mut self, attrs: &ObjectAttrs, provider: Provider) -> Self {
        if let Some(ct) = &attrs.content_type {
            self.headers.push(("content-type".into(), ct.clone()));
        }
        for (name, value) in &attrs.headers {
            self.headers.push((name.clone(), value.clone()));
        }
        let prefix = provider.meta_prefix();
        for (k, v) in &attrs.meta {
            self.headers.push((format!("{prefix}{k}"), v.clone()));
        }
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }

    /// Marks the answer as an XML result that may be an `<Error>`.
    pub fn xml(mut self) -> Self {
        self.xml_result = true;
        self
    }

    /// Checks every successful answer with `check`.
    pub fn check(mut self, check: &'a Check<'a>) -> Self {
        self.check = Some(check);
        self
    }

    /// The URL to send to (query string included) and the path to sign.
    pub(super) fn target(&self, endpoint: &Endpoint) -> CosResult<(String, String)> {
        let (url, signed_path) = match self.key {
            Some(key) => (endpoint.object_url(key)?, endpoint.signed_path(key)),
            None => (endpoint.bucket_url(), endpoint.bucket_path()),
        };
        Ok((with_query(url, &self.params), signed_path))
    }

    /// Every header of an attempt but the signature's: the call's own,
    /// `host`, Content-Length for PUT and POST, and for COS the session
    /// token when there is one (SigV4 adds its own as it signs).
    pub(super) fn wire_headers(
        &self,
        host: &str,
        provider: Provider,
        token: Option<&str>,
    ) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        headers.push(("host".into(), host.to_string()));
        if self.has_body() {
            headers.push(("content-length".into(), self.body.len().to_string()));
        }
        if let (Provider::Cos, Some(token)) = (provider, token) {
            let name = provider.header(Header::SecurityToken);
            headers.push((name.to_string(), token.to_string()));
        }
        headers
    }

    /// Whether the body is sent: always for PUT and POST, even when empty.
    pub(super) fn sends_body(&self) -> bool {
        !self.body.is_empty() || self.has_body()
    }

    fn has_body(&self) -> bool {
        self.method == Method::PUT || self.method == Method::POST
    }

    /// The headers that sign an attempt in `provider`'s dialect: COS's
    /// Authorization for the window around `now`, or SigV4's (which also
    /// carries the date, the payload hash and the session token). `url` is
    /// exactly what goes on the wire; `https` says whether TLS protects
    /// the body (then SigV4 signs `UNSIGNED-PAYLOAD` instead of hashing it).
    pub(super) fn signature(
        &self,
        provider: Provider,
        target: &Signed<'_>,
        creds: &Credentials,
        now: std::time::SystemTime,
    ) -> CosResult<Vec<(String, String)>> {
        match provider {
            Provider::Cos => {
                let key_time = KeyTime::around(now);
                let authorization =
                    self.authorization(target.path, target.headers, creds, key_time);
                Ok(vec![("authorization".into(), authorization)])
            }
            Provider::S3 => {
                let payload = match target.https {
                    true if !self.body.is_empty() => Payload::Unsigned,
                    _ => Payload::Bytes(&self.body),
                };
                let request = V4Request {
                    method: self.method.as_str(),
                    url: target.url,
                    headers: target.headers,
                    payload,
                };
                let scope = Scope {
                    region: target.region,
                    service: "s3",
                    rules: Rules::S3,
                };
                sigv4::sign(&request, creds, &scope, now)
                    .map(sigv4::SignedHeaders::into_vec)
                    .map_err(|e| CosError::InvalidRequest(format!("cannot sign: {e}")))
            }
        }
    }

    /// The COS Authorization header of an attempt with `headers`, signed
    /// with `creds` for `key_time`.
    fn authorization(
        &self,
        signed_path: &str,
        headers: &[(String, String)],
        creds: &Credentials,
        key_time: KeyTime,
    ) -> String {
        let signed: Vec<(String, String)> = headers
            .iter()
            .filter(|(n, _)| is_signed_header(n))
            .cloned()
            .collect();
        let to_sign = StringToSign {
            method: self.method.as_str(),
            path: signed_path,
            params: &self.params,
            headers: &signed,
        };
        sign::sign(&to_sign, &creds.secret_id, &creds.secret_key, key_time).authorization
    }
}

/// What an attempt is signed for.
pub(super) struct Signed<'a> {
    /// The URL as sent (SigV4 signs it).
    pub url: &'a str,
    /// The raw path (COS signs it).
    pub path: &'a str,
    /// The headers as sent.
    pub headers: &'a [(String, String)],
    /// The bucket's region (SigV4's scope).
    pub region: &'a str,
    /// TLS protects the body.
    pub https: bool,
}

/// Headers COS requests sign: host, the content headers, range and every
/// `x-cos-*`.
fn is_signed_header(name: &str) -> bool {
    matches!(
        name,
        "host" | "content-type" | "content-length" | "content-md5" | "range"
    ) || name.starts_with("x-cos-")
}

fn with_query(mut url: String, params: &[(String, String)]) -> String {
    for (i, (name, value)) in params.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&sign::url_encode(name));
        url.push('=');
        url.push_str(&sign::url_encode(value));
    }
    url
}
