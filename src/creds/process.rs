//! `credential_process`: a command (run with `sh -c`) that prints keys as
//! JSON on stdout, in Tencent Cloud's shape
//! `{"TmpSecretId","TmpSecretKey","Token","ExpiredTime":<unix seconds>}` or
//! in AWS's (`credential_process` in `~/.aws/config`)
//! `{"Version":1,"AccessKeyId","SecretAccessKey","SessionToken",
//! "Expiration":"<RFC 3339>"}`; the shape is told by its keys, so either
//! works for either kind of bucket. The token and the expiry may be left
//! out for permanent keys. Stdout is never quoted in errors (it holds
//! keys); the last line of stderr is, because that is where a command says
//! what went wrong.

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;

use super::clock::{from_unix, parse_time};
use super::error::describe_json_error;
use super::{Credentials, CredsError, FetchFuture, Provider};

/// The longest a command may run.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest piece of a command or of its stderr quoted in a message.
const QUOTE_LIMIT: usize = 200;

/// Runs a credential command.
pub struct ProcessProvider {
    command: String,
}

impl ProcessProvider {
    /// A provider running `command` with `sh -c`.
    pub fn new(command: &str) -> ProcessProvider {
        ProcessProvider {
            command: command.to_string(),
        }
    }

    async fn run(&self) -> Result<Credentials, CredsError> {
        let name = self.name();
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CredsError::unavailable(&name, format!("cannot start sh: {e}")))?;
        let output = tokio::time::timeout(PROCESS_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| {
                CredsError::unavailable(
                    &name,
                    format!(
                        "did not finish within {}s and was killed",
                        PROCESS_TIMEOUT.as_secs()
                    ),
                )
            })?
            .map_err(|e| CredsError::unavailable(&name, format!("cannot read its output: {e}")))?;
        if !output.status.success() {
            let stderr = last_line(&output.stderr);
            let said = if stderr.is_empty() {
                String::new()
            } else {
                format!(" ({stderr})")
            };
            return Err(CredsError::refused(
                &name,
                format!(
                    "exited with {}{said}: run the command by hand to see why",
                    output.status
                ),
            ));
        }
        parse_output(&output.stdout, &name)
    }
}

impl Provider for ProcessProvider {
    fn name(&self) -> String {
        format!("credential_process `{}`", shorten(&self.command))
    }

    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(self.run())
    }
}

/// What the command prints (not `Debug`: it holds keys).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessOutput {
    tmp_secret_id: String,
    tmp_secret_key: String,
    token: Option<String>,
    expired_time: Option<u64>,
}

/// What an AWS `credential_process` prints (not `Debug`: it holds keys).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AwsProcessOutput {
    version: u32,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expiration: Option<String>,
}

/// The key that tells AWS's shape from Tencent Cloud's.
const AWS_SHAPE_KEY: &str = "AccessKeyId";

/// Parses the command's stdout; `origin` names the source in errors.
pub fn parse_output(stdout: &[u8], origin: &str) -> Result<Credentials, CredsError> {
    let json: serde_json::Value =
        serde_json::from_slice(stdout).map_err(|e| bad_json(&e, origin))?;
    if json.get(AWS_SHAPE_KEY).is_some() {
        let out: AwsProcessOutput =
            serde_json::from_value(json).map_err(|e| bad_json(&e, origin))?;
        return aws_credentials(out, origin);
    }
    let out: ProcessOutput = serde_json::from_value(json).map_err(|e| bad_json(&e, origin))?;
    Ok(Credentials {
        secret_id: out.tmp_secret_id,
        secret_key: out.tmp_secret_key,
        session_token: out.token.filter(|t| !t.is_empty()),
        expires_at: out.expired_time.map(from_unix),
    })
}

fn bad_json(e: &serde_json::Error, origin: &str) -> CredsError {
    CredsError::invalid(
        origin,
        format!(
            "printed {}; it must print {{\"TmpSecretId\":..,\"TmpSecretKey\":..,\"Token\":..,\"ExpiredTime\":<unix seconds>}} \
             or {{\"Version\":1,\"AccessKeyId\":..,\"SecretAccessKey\":..,\"SessionToken\":..,\"Expiration\":\"<RFC 3339 time>\"}}",
            describe_json_error(e)
        ),
    )
}

fn aws_credentials(out: AwsProcessOutput, origin: &str) -> Result<Credentials, CredsError> {
    if out.version != 1 {
        return Err(CredsError::invalid(
            origin,
            format!("printed Version {}; only Version 1 is known", out.version),
        ));
    }
    let expires_at = match out.expiration.as_deref().filter(|e| !e.is_empty()) {
        Some(text) => Some(parse_time(text).ok_or_else(|| {
            CredsError::invalid(
                origin,
                "printed an Expiration that is not an RFC 3339 time like 2026-01-01T00:00:00Z",
            )
        })?),
        None => None,
    };
    Ok(Credentials {
        secret_id: out.access_key_id,
        secret_key: out.secret_access_key,
        session_token: out.session_token.filter(|t| !t.is_empty()),
        expires_at,
    })
}

fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    shorten(
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim(),
    )
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creds::clock::unix_seconds;

    #[test]
    fn parses_temporary_and_permanent_output() {
        let c = parse_output(
            br#"{"TmpSecretId":"AKIDp","TmpSecretKey":"PK","Token":"PT","ExpiredTime":1615590047}"#,
            "x",
        )
        .unwrap();
        assert_eq!(c.session_token.as_deref(), Some("PT"));
        assert_eq!(unix_seconds(c.expires_at.unwrap()), 1615590047);
        let c = parse_output(br#"{"TmpSecretId":"AKIDp","TmpSecretKey":"PK"}"#, "x").unwrap();
        assert_eq!((c.session_token, c.expires_at), (None, None));
    }

    #[test]
    fn parses_the_aws_shape() {
        let c = parse_output(
            br#"{"Version":1,"AccessKeyId":"AKIAP","SecretAccessKey":"SK","SessionToken":"ST","Expiration":"2026-03-01T12:00:00Z"}"#,
            "x",
        )
        .unwrap();
        assert_eq!(
            (c.secret_id.as_str(), c.secret_key.as_str()),
            ("AKIAP", "SK")
        );
        assert_eq!(c.session_token.as_deref(), Some("ST"));
        assert_eq!(unix_seconds(c.expires_at.unwrap()), 1772366400);
        let c = parse_output(
            br#"{"Version":1,"AccessKeyId":"AKIAP","SecretAccessKey":"SK"}"#,
            "x",
        )
        .unwrap();
        assert_eq!((c.session_token, c.expires_at), (None, None));
    }

    #[test]
    fn bad_aws_output_is_explained_without_quoting_it() {
        let e = parse_output(br#"{"Version":1,"AccessKeyId":"AKIAP"}"#, "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `SecretAccessKey`"), "{e}");
        let e = parse_output(
            br#"{"Version":2,"AccessKeyId":"AKIAP","SecretAccessKey":"SECRETSTUFF"}"#,
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("Version 2"), "{e}");
        let e = parse_output(
            br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"SECRETSTUFF","Expiration":"soon"}"#,
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("RFC 3339"), "{e}");
        assert!(!e.contains("SECRETSTUFF") && !e.contains("soon"), "{e}");
    }

    #[test]
    fn bad_output_is_explained_without_quoting_it() {
        let e = parse_output(br#"{"TmpSecretId":"AKIDp"}"#, "credential_process `x`")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `TmpSecretKey`"), "{e}");
        let e = parse_output(b"SECRETSTUFF", "x").unwrap_err().to_string();
        assert!(
            e.contains("not valid JSON") && e.contains("\"TmpSecretId\""),
            "{e}"
        );
        assert!(!e.contains("SECRETSTUFF"));
    }

    #[tokio::test]
    async fn runs_the_command_with_sh() {
        let p = ProcessProvider::new(
            r#"printf '{"TmpSecretId":"%s","TmpSecretKey":"K","Token":"T","ExpiredTime":4102444800}' "AKID$((40+2))""#,
        );
        let c = p.fetch().await.unwrap();
        assert_eq!(c.secret_id, "AKID42");
        assert_eq!(unix_seconds(c.expires_at.unwrap()), 4102444800);
    }

    #[tokio::test]
    async fn failures_name_the_command_and_quote_stderr() {
        let p = ProcessProvider::new(
            r#"printf '{"TmpSecretKey":"%s"}' $((1000+337)); echo 'token service says: login first' >&2; exit 3"#,
        );
        let e = p.fetch().await.unwrap_err();
        assert!(matches!(e, CredsError::Refused { .. }));
        let text = e.to_string();
        assert!(text.starts_with("credential_process `printf"), "{text}");
        assert!(
            text.contains(
                "exit status: 3 (token service says: login first): run the command by hand"
            ),
            "{text}"
        );
        assert!(!text.contains("1337"), "stdout is never quoted: {text}");
        let e = ProcessProvider::new("echo not-json")
            .fetch()
            .await
            .unwrap_err();
        assert!(matches!(e, CredsError::Invalid { .. }), "{e}");
        assert_eq!(shorten(&"x".repeat(300)).chars().count(), QUOTE_LIMIT + 1);
    }
}
