//! The COS request signer (`q-sign-algorithm=sha1`), shared by the client and
//! the embedded server. Pure: no clock and no I/O, the caller passes the key
//! time, so it can be checked against the SDKs' published vectors.

use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};

type HmacSha1 = Hmac<Sha1>;

/// The validity window of a signature, in Unix seconds (`start;end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyTime {
    /// First second the signature is valid.
    pub start: u64,
    /// Last second the signature is valid.
    pub end: u64,
}

impl KeyTime {
    /// The window the client signs with: from a minute before `now`
    /// (clocks drift) to an hour after it.
    pub fn around(now: std::time::SystemTime) -> KeyTime {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .max(60);
        KeyTime {
            start: now - 60,
            end: now + 3600,
        }
    }

    /// Parses `"start;end"`.
    pub fn parse(s: &str) -> Option<KeyTime> {
        let (start, end) = s.split_once(';')?;
        Some(KeyTime {
            start: start.parse().ok()?,
            end: end.parse().ok()?,
        })
    }
}

impl std::fmt::Display for KeyTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{};{}", self.start, self.end)
    }
}

/// What gets signed: the method, the raw (decoded) path, the decoded query
/// parameters and the headers chosen for signing.
#[derive(Clone, Copy, Debug)]
pub struct StringToSign<'a> {
    /// HTTP method, any case.
    pub method: &'a str,
    /// `/` followed by the raw object key (or just `/` for bucket operations).
    pub path: &'a str,
    /// Decoded query parameters; a valueless parameter has value `""`.
    pub params: &'a [(String, String)],
    /// Headers to sign, with their values as sent.
    pub headers: &'a [(String, String)],
}

/// Every intermediate value of one signature, for tests and diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Hex HMAC-SHA1 of the key time, keyed by the secret key.
    pub sign_key: String,
    /// `method\npath\nparams\nheaders\n`.
    pub http_string: String,
    /// `sha1\nkeytime\nsha1(http_string)\n`.
    pub string_to_sign: String,
    /// Sorted, `;`-joined encoded header names.
    pub header_list: String,
    /// Sorted, `;`-joined encoded parameter names.
    pub url_param_list: String,
    /// Hex HMAC-SHA1 of `string_to_sign` keyed by `sign_key`.
    pub signature: String,
    /// The complete `Authorization` header value.
    pub authorization: String,
}

/// Signs a request with `secret_id`/`secret_key` for the window `key_time`.
pub fn sign(req: &StringToSign, secret_id: &str, secret_key: &str, key_time: KeyTime) -> Signature {
    let key_time_str = key_time.to_string();
    let sign_key = hmac_hex(secret_key.as_bytes(), key_time_str.as_bytes());
    let (url_param_list, http_params) = canonical_pairs(req.params);
    let (header_list, http_headers) = canonical_pairs(req.headers);
    let http_string = format!(
        "{}\n{}\n{}\n{}\n",
        req.method.to_ascii_lowercase(),
        req.path,
        http_params,
        http_headers
    );
    let string_to_sign = format!(
        "sha1\n{}\n{}\n",
        key_time_str,
        hex::encode(Sha1::digest(http_string.as_bytes()))
    );
    let signature = hmac_hex(sign_key.as_bytes(), string_to_sign.as_bytes());
    let authorization = format!(
        "q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={key_time_str}&q-key-time={key_time_str}\
         &q-header-list={header_list}&q-url-param-list={url_param_list}&q-signature={signature}"
    );
    Signature {
        sign_key,
        http_string,
        string_to_sign,
        header_list,
        url_param_list,
        signature,
        authorization,
    }
}

/// Encodes, sorts and joins name/value pairs: returns (`n1;n2`, `n1=v1&n2=v2`).
fn canonical_pairs(pairs: &[(String, String)]) -> (String, String) {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| (url_encode(n).to_ascii_lowercase(), url_encode(v)))
        .collect();
    encoded.sort();
    let names: Vec<&str> = encoded.iter().map(|(n, _)| n.as_str()).collect();
    let joined: Vec<String> = encoded.iter().map(|(n, v)| format!("{n}={v}")).collect();
    (names.join(";"), joined.join("&"))
}

fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// Percent-encodes every byte except `A-Z a-z 0-9 - _ . ~`, with uppercase hex.
pub fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Bytes left as they are by [`url_encode`].
pub const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The fields of a parsed `Authorization` value (server side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationFields {
    /// `q-ak`: the SecretId.
    pub secret_id: String,
    /// `q-key-time`.
    pub key_time: KeyTime,
    /// `q-header-list`, split on `;`.
    pub header_list: Vec<String>,
    /// `q-url-param-list`, split on `;`.
    pub url_param_list: Vec<String>,
    /// `q-signature`.
    pub signature: String,
}

/// Parses an `Authorization` value; fields are read by name in any order.
pub fn parse_authorization(value: &str) -> Option<AuthorizationFields> {
    let mut algorithm = None;
    let mut secret_id = None;
    let mut key_time = None;
    let mut header_list = None;
    let mut url_param_list = None;
    let mut signature = None;
    for field in value.trim().split('&') {
        let (name, v) = field.split_once('=')?;
        match name {
            "q-sign-algorithm" => algorithm = Some(v),
            "q-ak" => secret_id = Some(v.to_string()),
            "q-key-time" => key_time = KeyTime::parse(v),
            "q-header-list" => header_list = Some(split_list(v)),
            "q-url-param-list" => url_param_list = Some(split_list(v)),
            "q-signature" => signature = Some(v.to_string()),
            _ => {}
        }
    }
    if algorithm? != "sha1" {
        return None;
    }
    Some(AuthorizationFields {
        secret_id: secret_id?,
        key_time: key_time?,
        header_list: header_list?,
        url_param_list: url_param_list?,
        signature: signature?,
    })
}

fn split_list(v: &str) -> Vec<String> {
    v.split(';')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_sdks() {
        assert_eq!(
            url_encode("a b+c/%=;\"*!'()~"),
            "a%20b%2Bc%2F%25%3D%3B%22%2A%21%27%28%29~"
        );
        assert_eq!(url_encode("腾"), "%E8%85%BE");
        assert_eq!(url_encode("A-z_0.9"), "A-z_0.9");
    }

    #[test]
    fn parses_authorization_in_any_field_order() {
        let a = "q-sign-algorithm=sha1&q-ak=AK&q-sign-time=1;2&q-key-time=1;2\
                 &q-url-param-list=&q-header-list=host;range&q-signature=ab";
        let f = parse_authorization(a).unwrap();
        assert_eq!(f.secret_id, "AK");
        assert_eq!(f.key_time, KeyTime { start: 1, end: 2 });
        assert_eq!(f.header_list, vec!["host", "range"]);
        assert!(f.url_param_list.is_empty());
        assert!(parse_authorization("garbage").is_none());
        assert!(parse_authorization("q-sign-algorithm=md5&q-ak=a").is_none());
    }
}
