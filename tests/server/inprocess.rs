//! The library API the mount command uses for `--local DIR`: start the
//! server inside the caller's tokio runtime, use it, shut it down.

use std::sync::Arc;

use bytes::Bytes;

use cosmount::cos::client::{ClientConfig, HttpClient};
use cosmount::cos::endpoint::{Endpoint, Style};
use cosmount::cos::{GetOptions, ObjectAttrs, ObjectClient};
use cosmount::creds::{CredentialStore, Credentials};
use cosmount::server::{Server, ServerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_in_process_takes_new_keys_and_shuts_down() {
    let root = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        root: root.path().join("data"),
        buckets: vec!["local-1".to_string()],
        keys: vec![Credentials::permanent("AKIDfirst", "first-secret")],
        ..ServerConfig::default()
    };
    let server = Server::start(config.clone()).await.unwrap();
    assert!(server.addr().ip().is_loopback() && server.addr().port() != 0);
    assert!(server.admin_addr().is_none());
    let client = |id: &str, key: &str| {
        let url = format!("http://{}", server.addr());
        let endpoint =
            Endpoint::custom(&url, "local-1", "ap-guangzhou", Style::VirtualHosted).unwrap();
        let creds = CredentialStore::fixed(Credentials::permanent(id, key));
        HttpClient::new(ClientConfig::new(endpoint), Arc::new(creds)).unwrap()
    };
    client("AKIDfirst", "first-secret")
        .put("k", Bytes::from_static(b"v"), &ObjectAttrs::default())
        .await
        .unwrap();
    let later = client("AKIDlater", "later-secret");
    assert_eq!(later.head("k").await.unwrap_err().status(), Some(403));
    server
        .keyring()
        .insert(Credentials::permanent("AKIDlater", "later-secret"));
    assert_eq!(
        &later.get("k", &GetOptions::default()).await.unwrap().body[..],
        b"v"
    );
    let addr = server.addr();
    server.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port is closed after shutdown"
    );

    let err = Server::start(ServerConfig {
        keys: Vec::new(),
        ..config.clone()
    })
    .await
    .err()
    .expect("no keys and no public access is refused");
    assert!(err.to_string().contains("--secret-id"), "{err}");
    let again = Server::start(config).await.unwrap();
    let url = format!("http://{}", again.addr());
    let endpoint = Endpoint::custom(&url, "local-1", "ap-guangzhou", Style::VirtualHosted).unwrap();
    let creds = CredentialStore::fixed(Credentials::permanent("AKIDfirst", "first-secret"));
    let client = HttpClient::new(ClientConfig::new(endpoint), Arc::new(creds)).unwrap();
    assert_eq!(
        client.head("k").await.unwrap().size,
        1,
        "data survives a restart"
    );
    again.shutdown().await;
}
