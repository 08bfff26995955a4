//! The STS/metadata emulation of `cosmount serve --sts-ttl` over HTTP, with
//! the client's own providers: keys it issues work on the COS port only
//! with their token, and only until they expire (`400 ExpiredToken`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cosmount::cos::{CosError, ListRequest, ObjectClient};
use cosmount::creds::metadata::{CamRoleConfig, CamRoleProvider};
use cosmount::creds::sts::{AssumeRoleConfig, AssumeRoleProvider, STS_VERSION};
use cosmount::creds::tc3::{self, Tc3Request};
use cosmount::creds::{Credentials, Provider, SystemClock};
use serde_json::Value;

use super::{issued_to, metadata_url, sts_server, wait_for_issued};
use crate::common::{BUCKET, SECRET_ID, SECRET_KEY};

fn assume_role_config(server_sts: &str, key: &str) -> AssumeRoleConfig {
    AssumeRoleConfig {
        role_arn: "qcs::cam::uin/100000000001:roleName/sts-test".into(),
        session_name: "sts-test".into(),
        endpoint: format!("{server_sts}/"),
        region: "ap-guangzhou".into(),
        duration: Duration::from_secs(7200),
        base: Credentials::permanent(SECRET_ID, key),
        base_origin: "the test".into(),
    }
}

fn one_key() -> ListRequest {
    ListRequest {
        max_keys: 1,
        ..ListRequest::default()
    }
}

fn code(e: &CosError) -> (Option<u16>, &str) {
    (e.status(), e.code())
}

#[tokio::test]
async fn issued_keys_need_their_token_and_expire() {
    let server = sts_server(3);
    let provider = AssumeRoleProvider::new(
        assume_role_config(&server.sts_url(), SECRET_KEY),
        Arc::new(SystemClock),
    )
    .unwrap();
    let creds = provider.fetch().await.unwrap();
    let left = creds
        .expires_at
        .unwrap()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(left <= Duration::from_secs(3), "lives --sts-ttl: {left:?}");
    let caller = "AssumeRole qcs::cam::uin/100000000001:roleName/sts-test";
    wait_for_issued(&server, caller, 1);
    assert_eq!(issued_to(&server.log_text(), caller), 1);
    assert!(
        !server.log_text().contains(&creds.secret_key),
        "the SecretKey is not logged"
    );

    let client = server.client_for(BUCKET, Some(creds.clone()));
    client.head_bucket().await.unwrap();
    client.list_page(&one_key()).await.unwrap();
    let mut wrong = creds.clone();
    wrong.session_token = Some("not-the-token".into());
    let e = server
        .client_for(BUCKET, Some(wrong))
        .list_page(&one_key())
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(403), "InvalidToken"));
    let mut none = creds.clone();
    none.session_token = None;
    let e = server
        .client_for(BUCKET, Some(none))
        .list_page(&one_key())
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(403), "InvalidToken"));

    // Poll until the key's lifetime is over: then COS's 400 ExpiredToken.
    let deadline = Instant::now() + Duration::from_secs(15);
    let expired = loop {
        match client.list_page(&one_key()).await {
            Ok(_) => {
                assert!(Instant::now() < deadline, "the key never expired");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(code(&expired), (Some(400), "ExpiredToken"), "{expired}");
    let auth = server.admin_json("/stats/auth");
    assert_eq!(auth["rejected"]["InvalidToken"], 2, "{auth}");
    assert_eq!(auth["rejected"]["ExpiredToken"], 1, "{auth}");
    assert!(auth["temporary"].as_u64().unwrap() >= 2, "{auth}");
    assert_eq!(auth["permanent"], 0, "{auth}");
}

#[tokio::test]
async fn metadata_service_lists_a_role_and_hands_out_keys_for_any_role() {
    let server = sts_server(60);
    let base = metadata_url(&server);
    let listed = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(listed.status(), 200);
    let role = listed.text().await.unwrap();
    assert_eq!(role, "cosmount-role");
    let provider = CamRoleProvider::new(CamRoleConfig {
        role: "any-name-at-all".into(),
        endpoint: base.clone(),
    })
    .unwrap();
    let creds = provider.fetch().await.unwrap();
    assert!(creds.session_token.is_some());
    server
        .client_for(BUCKET, Some(creds))
        .head_bucket()
        .await
        .unwrap();
    wait_for_issued(&server, "cam_role any-name-at-all", 1);
    assert_eq!(issued_to(&server.log_text(), "cam_role any-name-at-all"), 1);
    let issued = server.admin_json("/sts/issued");
    assert_eq!(issued.as_array().unwrap().len(), 1);
    assert_eq!(issued[0]["Caller"], "cam_role any-name-at-all");
    let not_found = reqwest::get(format!("{}/latest/user-data", server.sts_url()))
        .await
        .unwrap();
    assert_eq!(not_found.status(), 404);
}

/// Signs a JSON API call the way the tencentcloud SDK does.
async fn api_call(sts_url: &str, action: &str, body: &str, key: &str) -> Value {
    let url = reqwest::Url::parse(&format!("{sts_url}/")).unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let timestamp = cosmount::creds::clock::unix_seconds(std::time::SystemTime::now());
    let signed = tc3::sign(
        &Tc3Request {
            service: "sts",
            host: &host,
            content_type: "application/json",
            payload: body.as_bytes(),
            timestamp,
        },
        SECRET_ID,
        key,
    );
    let answer = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-tc-action", action)
        .header("x-tc-version", STS_VERSION)
        .header("x-tc-region", "ap-guangzhou")
        .header("x-tc-timestamp", timestamp.to_string())
        .header("authorization", signed.authorization)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "errors come with 200 too");
    serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn federation_tokens_and_refusals_look_like_tencents() {
    let server = sts_server(20);
    let sts = server.sts_url();
    let ok = api_call(
        &sts,
        "GetFederationToken",
        r#"{"Name":"web","Policy":"%7B%22version%22%3A%222.0%22%7D","DurationSeconds":1800}"#,
        SECRET_KEY,
    )
    .await;
    let r = &ok["Response"];
    for field in ["Token", "TmpSecretId", "TmpSecretKey"] {
        assert!(r["Credentials"][field].is_string(), "{field}: {ok}");
    }
    assert!(
        r["ExpiredTime"].is_u64() && r["Expiration"].is_string(),
        "{ok}"
    );
    assert!(r["RequestId"].is_string(), "{ok}");
    let creds = Credentials::temporary(
        r["Credentials"]["TmpSecretId"].as_str().unwrap(),
        r["Credentials"]["TmpSecretKey"].as_str().unwrap(),
        r["Credentials"]["Token"].as_str().unwrap(),
        std::time::SystemTime::now() + Duration::from_secs(20),
    );
    server
        .client_for(BUCKET, Some(creds))
        .list_page(&one_key())
        .await
        .unwrap();

    let refused = api_call(
        &sts,
        "AssumeRole",
        r#"{"RoleArn":"qcs::cam::uin/1:roleName/r","RoleSessionName":"s1"}"#,
        "wrong-key",
    )
    .await;
    assert_eq!(
        refused["Response"]["Error"]["Code"], "AuthFailure.SignatureFailure",
        "{refused}"
    );
    assert!(refused["Response"]["RequestId"].is_string());
    let unknown = api_call(&sts, "DescribeThings", "{}", SECRET_KEY).await;
    assert_eq!(
        unknown["Response"]["Error"]["Code"], "InvalidAction",
        "{unknown}"
    );

    // The client's provider explains a refusal with STS's code.
    let provider =
        AssumeRoleProvider::new(assume_role_config(&sts, "wrong-key"), Arc::new(SystemClock))
            .unwrap();
    let e = provider.fetch().await.unwrap_err().to_string();
    assert!(
        e.contains("AuthFailure.SignatureFailure") && e.contains("check the SecretId/SecretKey"),
        "{e}"
    );
}
