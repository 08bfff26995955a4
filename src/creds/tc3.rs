//! TC3-HMAC-SHA256, the Tencent Cloud API 3.0 signature (used for STS).
//! A pure function: the caller passes the timestamp, nothing here reads a
//! clock or does I/O. Only JSON `POST /` requests are signed, with the
//! `content-type;host` header set the SDKs use. Checked against every
//! vector in `tests/data/sts-tc3-vectors.json`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::clock;

/// The algorithm name in the string to sign and the Authorization value.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// What is signed: a JSON `POST /` to one service.
pub struct Tc3Request<'a> {
    /// Service name, e.g. `sts`.
    pub service: &'a str,
    /// The Host header exactly as sent (with `:port` when not the default).
    pub host: &'a str,
    /// The Content-Type header exactly as sent.
    pub content_type: &'a str,
    /// The request body.
    pub payload: &'a [u8],
    /// `X-TC-Timestamp`, Unix seconds.
    pub timestamp: u64,
}

/// The signature and the steps leading to it (for tests and debugging;
/// deliberately not `Debug`, so an Authorization value is never logged).
pub struct Tc3Signature {
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// Lowercase hex signature.
    pub signature: String,
    /// The Authorization header value.
    pub authorization: String,
}

/// Signs `req` with the SecretId/SecretKey pair.
pub fn sign(req: &Tc3Request<'_>, secret_id: &str, secret_key: &str) -> Tc3Signature {
    let canonical_request = format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\ncontent-type;host\n{}",
        req.content_type,
        req.host,
        hex::encode(Sha256::digest(req.payload))
    );
    let date = utc_date(req.timestamp);
    let scope = format!("{date}/{}/tc3_request", req.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        req.timestamp,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac256(&k_date, req.service.as_bytes());
    let k_signing = hmac256(&k_service, b"tc3_request");
    let signature = hex::encode(hmac256(&k_signing, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"
    );
    Tc3Signature {
        canonical_request,
        string_to_sign,
        signature,
        authorization,
    }
}

/// `YYYY-MM-DD` of a Unix timestamp, in UTC.
fn utc_date(timestamp: u64) -> String {
    clock::format_time(clock::from_unix(timestamp))[..10].to_string()
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../tests/data/sts-tc3-vectors.json");

    fn field<'a>(v: &'a Value, name: &str) -> &'a str {
        v[name]
            .as_str()
            .unwrap_or_else(|| panic!("vector field {name}"))
    }

    #[test]
    fn reproduces_every_vector() {
        let vectors: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
        assert_eq!(vectors.len(), 3);
        for v in &vectors {
            let id = field(v, "id");
            let headers = &v["headers"];
            let content_type = v["content_type"]
                .as_str()
                .or_else(|| headers["Content-Type"].as_str())
                .unwrap();
            let payload = v["payload"]
                .as_str()
                .or_else(|| v["body"].as_str())
                .unwrap();
            let req = Tc3Request {
                service: field(v, "service"),
                host: field(v, "host"),
                content_type,
                payload: payload.as_bytes(),
                timestamp: v["timestamp"].as_u64().unwrap(),
            };
            let secret_id = v["secret_id"].as_str().unwrap_or("AKIDEXAMPLE");
            let signed = sign(&req, secret_id, field(v, "secret_key"));
            if let Some(expected) = headers["Authorization"].as_str() {
                assert_eq!(signed.authorization, expected, "{id}");
                assert_eq!(headers["X-TC-Timestamp"], req.timestamp.to_string(), "{id}");
                assert_eq!(headers["Host"], req.host, "{id}");
            } else {
                assert_eq!(
                    signed.canonical_request,
                    field(v, "canonical_request"),
                    "{id}"
                );
                assert_eq!(signed.string_to_sign, field(v, "string_to_sign"), "{id}");
                assert_eq!(signed.signature, field(v, "signature"), "{id}");
                let suffix = field(v, "authorization_suffix");
                assert_eq!(
                    signed.authorization,
                    format!("TC3-HMAC-SHA256 Credential=AKIDEXAMPLE{suffix}"),
                    "{id}"
                );
            }
        }
    }

    #[test]
    fn dates_are_utc() {
        // 1551113065 is 2019-02-25T16:44:25Z; east of UTC it is already the 26th.
        assert_eq!(utc_date(1551113065), "2019-02-25");
        assert_eq!(utc_date(1700000000), "2023-11-14");
        assert_eq!(utc_date(0), "1970-01-01");
    }
}
