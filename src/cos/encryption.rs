//! Server-side encryption of objects. COS encrypts an object when the
//! write asks for it (`x-cos-server-side-encryption`), and a server-side
//! copy is a write: a copy that names no encryption is stored in plain
//! ("the destination object will not use SSE", COS's PUT Object - Copy
//! page), unless the bucket encrypts by default. So copies name the
//! encryption their source has, and new objects the mount's `--sse`
//! (cosfs's `use_sse`). Keys the customer provides (SSE-C) are not
//! supported: every read would have to send the key.

use super::Provider;
use super::provider::Header;

/// An object's server-side encryption, or the one a write asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Encryption {
    /// Written by this mount: the mount's `--sse`.
    #[default]
    MountDefault,
    /// Stored unencrypted (the server names no encryption).
    Plain,
    /// AES-256 with keys the server manages (SSE-COS, SSE-S3).
    Aes256,
    /// Keys kept in the cloud's key management service (SSE-KMS): the key's
    /// id, or `None` for the account's default key.
    Kms(Option<String>),
    /// Another algorithm, as the server names it (COS's `SM4`).
    Other(String),
}

/// The algorithm names of SSE-KMS in each dialect.
const KMS_NAMES: [&str; 2] = ["cos/kms", "aws:kms"];

impl Encryption {
    /// The encryption HEAD's headers name: `algorithm` is
    /// `x-cos-server-side-encryption` (or S3's), `kms_key_id` the key id
    /// header of SSE-KMS.
    pub fn from_server(algorithm: Option<&str>, kms_key_id: Option<&str>) -> Encryption {
        match algorithm.map(str::trim) {
            None | Some("") => Encryption::Plain,
            Some(a) if a.eq_ignore_ascii_case("AES256") => Encryption::Aes256,
            Some(a) if KMS_NAMES.iter().any(|k| a.eq_ignore_ascii_case(k)) => Encryption::Kms(
                kms_key_id
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(Into::into),
            ),
            Some(a) => Encryption::Other(a.to_string()),
        }
    }

    /// The encryption `--sse` names: `aes256` (or cosfs's `1`), `kms`, or
    /// `kms:KEY_ID` (s3fs's `kmsid` and `kmsid:KEY_ID` too).
    pub fn parse_option(value: &str) -> Result<Encryption, String> {
        let value = value.trim();
        let (kind, key) = match value.split_once(':') {
            Some((kind, key)) => (kind, Some(key.trim())),
            None => (value, None),
        };
        match (kind.to_ascii_lowercase().as_str(), key) {
            ("aes256" | "1" | "sse-cos" | "sse-s3", None) => Ok(Encryption::Aes256),
            ("kms" | "kmsid" | "sse-kms", None) => Ok(Encryption::Kms(None)),
            ("kms" | "kmsid" | "sse-kms", Some(key)) if !key.is_empty() => {
                Ok(Encryption::Kms(Some(key.to_string())))
            }
            ("custom" | "c" | "sse-c", _) => Err(format!(
                "server-side encryption with your own keys (SSE-C, {value:?}) is not supported: \
                 every read would have to send the key; use aes256 or kms"
            )),
            _ => Err(format!(
                "unknown server-side encryption {value:?}: use aes256, kms or kms:KEY_ID"
            )),
        }
    }

    /// The headers a request names this encryption with, `mount` standing
    /// for [`MountDefault`](Self::MountDefault): the algorithm header, and
    /// the key id for SSE-KMS with one. Nothing for plain objects.
    pub fn headers(&self, mount: &Encryption, provider: Provider) -> Vec<(&'static str, String)> {
        let own = match self {
            Encryption::MountDefault => mount,
            own => own,
        };
        let algorithm_header = provider.header(Header::Encryption);
        let key_header = provider.header(Header::KmsKeyId);
        let kms = match provider {
            Provider::Cos => KMS_NAMES[0],
            Provider::S3 => KMS_NAMES[1],
        };
        match own {
            Encryption::MountDefault | Encryption::Plain => Vec::new(),
            Encryption::Aes256 => vec![(algorithm_header, "AES256".into())],
            Encryption::Kms(key) => {
                let mut headers = vec![(algorithm_header, kms.to_string())];
                headers.extend(key.iter().map(|k| (key_header, k.clone())));
                headers
            }
            Encryption::Other(algorithm) => vec![(algorithm_header, algorithm.clone())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_is_read_and_named_in_each_dialect() {
        assert_eq!(Encryption::from_server(None, None), Encryption::Plain);
        assert_eq!(
            Encryption::from_server(Some("AES256"), None),
            Encryption::Aes256
        );
        let kms = Encryption::from_server(Some("cos/kms"), Some("48ba38aa"));
        assert_eq!(kms, Encryption::Kms(Some("48ba38aa".into())));
        assert_eq!(
            kms.headers(&Encryption::MountDefault, Provider::S3),
            [
                ("x-amz-server-side-encryption", "aws:kms".to_string()),
                (
                    "x-amz-server-side-encryption-aws-kms-key-id",
                    "48ba38aa".to_string()
                ),
            ]
        );
        let sm4 = Encryption::from_server(Some("SM4"), None);
        assert_eq!(
            sm4.headers(&Encryption::Plain, Provider::Cos),
            [("x-cos-server-side-encryption", "SM4".to_string())]
        );
        assert!(
            Encryption::Plain
                .headers(&Encryption::Aes256, Provider::Cos)
                .is_empty()
        );
        assert_eq!(
            Encryption::MountDefault.headers(&Encryption::Aes256, Provider::Cos),
            [("x-cos-server-side-encryption", "AES256".to_string())]
        );
    }

    #[test]
    fn the_option_takes_cosfs_and_s3fs_spellings_and_refuses_customer_keys() {
        assert_eq!(Encryption::parse_option("1"), Ok(Encryption::Aes256));
        assert_eq!(Encryption::parse_option("AES256"), Ok(Encryption::Aes256));
        assert_eq!(Encryption::parse_option("kms"), Ok(Encryption::Kms(None)));
        assert_eq!(
            Encryption::parse_option("kmsid:key-1"),
            Ok(Encryption::Kms(Some("key-1".into())))
        );
        assert!(
            Encryption::parse_option("custom:/etc/keys")
                .unwrap_err()
                .contains("SSE-C")
        );
        assert!(Encryption::parse_option("kms:").is_err());
        assert!(
            Encryption::parse_option("des")
                .unwrap_err()
                .contains("aes256")
        );
    }
}
