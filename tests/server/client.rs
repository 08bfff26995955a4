//! `cosmount serve` driven by the real HTTP client over loopback: every
//! `ObjectClient` operation, with keys that break naive servers.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::common::{BUCKET, SECRET_ID, ServerOptions, TestServer};
use cosmount::cos::client::HttpClient;
use cosmount::cos::endpoint::{Endpoint, Style};
use cosmount::cos::{
    Encryption, GetOptions, ListRequest, ListWalker, MetadataDirective, ObjectAttrs, ObjectClient,
    ObjectInfo, PartInfo, StorageClass, crc64,
};
use cosmount::creds::Credentials;

/// Keys with every character class that trips path handling.
pub const TRICKY_KEYS: &[&str] = &[
    "plain.txt",
    "with space.txt",
    "plus+sign",
    "per%cent",
    "hash#tag",
    "question?mark",
    "tilde~x",
    "中文/文件.txt",
    "a//b",
    "a/./b",
    "a/../b",
    "dir/",
    "dir",
    "./lead",
    "trail/..",
    "semi;colon=eq&amp",
];

fn attrs(mode: &str) -> ObjectAttrs {
    ObjectAttrs {
        content_type: Some("text/plain".into()),
        meta: BTreeMap::from([
            ("mode".to_string(), mode.to_string()),
            ("uid".to_string(), "1000".to_string()),
        ]),
        ..ObjectAttrs::default()
    }
}

fn body_for(key: &str) -> Bytes {
    Bytes::from(format!("contents of {key:?}\n").repeat(3))
}

async fn list_all(
    client: &HttpClient,
    prefix: &str,
    delimiter: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let mut walker = ListWalker::new(prefix, delimiter);
    let (mut keys, mut prefixes) = (Vec::new(), Vec::new());
    while let Some(page) = walker.next_page(client).await.unwrap() {
        keys.extend(page.objects.into_iter().map(|o| o.key));
        prefixes.extend(page.common_prefixes);
    }
    (keys, prefixes)
}

#[tokio::test]
async fn every_simple_operation_works_with_tricky_keys() {
    let server = TestServer::start();
    let client = server.client();
    client.head_bucket().await.unwrap();
    for key in TRICKY_KEYS {
        let data = body_for(key);
        let put = client
            .put(key, data.clone(), &attrs("33188"))
            .await
            .unwrap();
        assert_eq!(put.crc64, Some(crc64::checksum(&data)), "{key}");
        assert_eq!(
            put.etag,
            hex::encode(<md5::Md5 as md5::Digest>::digest(&data)),
            "{key}"
        );

        let info = client.head(key).await.unwrap();
        assert_eq!(info.size, data.len() as u64, "{key}");
        assert_eq!(info.etag, put.etag);
        assert_eq!(info.content_type.as_deref(), Some("text/plain"));
        assert_eq!(
            info.meta.get("mode").map(String::as_str),
            Some("33188"),
            "{key}"
        );

        let got = client.get(key, &GetOptions::default()).await.unwrap();
        assert_eq!(got.body, data, "{key}");
        let range = GetOptions {
            range: Some(3..10),
            ..GetOptions::default()
        };
        let part = client.get(key, &range).await.unwrap();
        assert_eq!(part.body, data.slice(3..10), "{key}");
        assert_eq!(part.info.size, data.len() as u64);
    }
    let (keys, _) = list_all(&client, "", None).await;
    let mut expected: Vec<String> = TRICKY_KEYS.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(keys, expected);

    for key in TRICKY_KEYS {
        let copy = format!("{key}.copy");
        let r = client
            .copy(
                key,
                &copy,
                None,
                MetadataDirective::Copy,
                &ObjectAttrs::default(),
                0,
            )
            .await
            .unwrap();
        assert_eq!(r.crc64, Some(crc64::checksum(&body_for(key))));
        let info = client.head(&copy).await.unwrap();
        assert_eq!(
            info.meta.get("mode").map(String::as_str),
            Some("33188"),
            "Copy keeps metadata of {key}"
        );
        let stale = client
            .copy(
                &copy,
                &copy,
                Some("0123456789abcdef0123456789abcdef"),
                MetadataDirective::Replaced,
                &attrs("16877"),
                0,
            )
            .await
            .unwrap_err();
        assert_eq!(stale.status(), Some(412), "{key}: {stale}");
        let current = client.head(&copy).await.unwrap();
        assert_eq!(
            current.meta.get("mode").map(String::as_str),
            Some("33188"),
            "a failed precondition writes nothing ({key})"
        );
        let current = current.etag;
        client
            .copy(
                &copy,
                &copy,
                Some(&current),
                MetadataDirective::Replaced,
                &attrs("16877"),
                0,
            )
            .await
            .unwrap();
        let info = client.head(&copy).await.unwrap();
        assert_eq!(
            info.meta.get("mode").map(String::as_str),
            Some("16877"),
            "Replaced changes metadata of {key}"
        );
        assert_eq!(
            client
                .get(&copy, &GetOptions::default())
                .await
                .unwrap()
                .body,
            body_for(key)
        );
    }
    let copies: Vec<String> = TRICKY_KEYS.iter().map(|k| format!("{k}.copy")).collect();
    assert!(client.delete_many(&copies).await.unwrap().is_empty());
    for key in TRICKY_KEYS {
        client.delete(key).await.unwrap();
        let err = client.head(key).await.unwrap_err();
        assert!(err.is_not_found(), "{key}: {err}");
        let err = client.get(key, &GetOptions::default()).await.unwrap_err();
        assert_eq!(err.code(), "NoSuchKey", "{key}");
    }
    client.delete("never-existed").await.unwrap();
    assert!(list_all(&client, "", None).await.0.is_empty());
}

/// 1 MiB + a little, so every part but the last is big enough.
const PART: usize = (1 << 20) + 4096;

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

#[tokio::test]
async fn multipart_upload_of_three_parts_verifies_crc64() {
    let server = TestServer::start();
    let client = server.client();
    let key = "big dir/中文 multi+part";
    let parts_data = [pattern(PART, 1), pattern(PART, 2), pattern(12345, 3)];
    let id = client.create_multipart(key, &attrs("33188")).await.unwrap();
    let uploads = client.list_uploads("big").await.unwrap();
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        (uploads[0].key.as_str(), uploads[0].upload_id.as_str()),
        (key, id.as_str())
    );
    let mut parts = Vec::new();
    for (i, data) in parts_data.iter().enumerate().rev() {
        let p = client
            .upload_part(key, &id, i as u32 + 1, data.clone())
            .await
            .unwrap();
        parts.push(p);
    }
    parts.reverse();
    let listed = client.list_parts(key, &id).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|p| (p.part_number, p.size))
            .collect::<Vec<_>>(),
        vec![(1, PART as u64), (2, PART as u64), (3, 12345)]
    );
    // The client checks the answer's CRC64 against the parts' CRCs.
    let done = client.complete_multipart(key, &id, &parts).await.unwrap();
    assert!(done.etag.ends_with("-3"), "{}", done.etag);
    let whole: Vec<u8> = parts_data.concat();
    assert_eq!(done.crc64, Some(crc64::checksum(&whole)));
    let got = client.get(key, &GetOptions::default()).await.unwrap();
    assert_eq!(got.body.len(), whole.len());
    assert!(got.body == whole);
    assert_eq!(got.info.meta.get("mode").map(String::as_str), Some("33188"));
    assert_eq!(got.info.content_type.as_deref(), Some("text/plain"));
    assert!(client.list_uploads("").await.unwrap().is_empty());
    assert_eq!(
        client.list_parts(key, &id).await.unwrap_err().code(),
        "NoSuchUpload"
    );
}

#[tokio::test]
async fn upload_part_copy_assembles_ranges_of_another_object() {
    let server = TestServer::start();
    let client = server.client();
    let src = pattern(2 * PART + 777, 9);
    client
        .put("src/a b", src.clone(), &ObjectAttrs::default())
        .await
        .unwrap();
    let id = client
        .create_multipart("dst/c+d", &ObjectAttrs::default())
        .await
        .unwrap();
    let cut = PART as u64 + 5;
    let p1 = client
        .upload_part_copy("dst/c+d", &id, 1, "src/a b", None, 0..cut)
        .await
        .unwrap();
    let stale = client
        .upload_part_copy("dst/c+d", &id, 2, "src/a b", Some("not-the-etag"), 0..cut)
        .await
        .unwrap_err();
    assert_eq!(stale.status(), Some(412), "a changed source is refused");
    let p2 = client
        .upload_part_copy("dst/c+d", &id, 2, "src/a b", None, cut..src.len() as u64)
        .await
        .unwrap();
    assert_eq!(p1.crc64, Some(crc64::checksum(&src[..cut as usize])));
    let done = client
        .complete_multipart("dst/c+d", &id, &[p1, p2])
        .await
        .unwrap();
    assert_eq!(done.crc64, Some(crc64::checksum(&src)));
    assert_eq!(
        client
            .get("dst/c+d", &GetOptions::default())
            .await
            .unwrap()
            .body,
        src
    );
}

#[tokio::test]
async fn complete_refuses_bad_part_lists_and_abort_cleans_up() {
    let server = TestServer::start();
    let client = server.client();
    let id = client
        .create_multipart("k", &ObjectAttrs::default())
        .await
        .unwrap();
    let small1 = client
        .upload_part("k", &id, 1, pattern(1000, 1))
        .await
        .unwrap();
    let small2 = client
        .upload_part("k", &id, 2, pattern(1000, 2))
        .await
        .unwrap();
    let err = client
        .complete_multipart("k", &id, &[small1.clone(), small2.clone()])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "EntityTooSmall");
    let err = client
        .complete_multipart("k", &id, &[small2.clone(), small1.clone()])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidPartOrder");
    let wrong = PartInfo {
        etag: "0".repeat(32),
        ..small1.clone()
    };
    let err = client
        .complete_multipart("k", &id, &[wrong])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidPart");
    let missing = PartInfo {
        part_number: 7,
        ..small1.clone()
    };
    assert_eq!(
        client
            .complete_multipart("k", &id, &[missing])
            .await
            .unwrap_err()
            .code(),
        "InvalidPart"
    );
    // A single small part is fine: the last part may be small.
    client.abort_multipart("k", &id).await.unwrap();
    assert!(client.list_uploads("").await.unwrap().is_empty());
    let err = client
        .upload_part("k", &id, 1, pattern(10, 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "NoSuchUpload");
    assert!(client.head("k").await.unwrap_err().is_not_found());
    let id = client
        .create_multipart("k", &ObjectAttrs::default())
        .await
        .unwrap();
    let only = client
        .upload_part("k", &id, 1, pattern(10, 1))
        .await
        .unwrap();
    client.complete_multipart("k", &id, &[only]).await.unwrap();
    assert_eq!(client.head("k").await.unwrap().size, 10);
}

#[tokio::test]
async fn listing_paginates_over_thousands_of_keys() {
    let server = TestServer::start();
    let client = server.client();
    let mut keys: Vec<String> = (0..2500).map(|i| format!("d{}/f{i:05}", i % 3)).collect();
    keys.push("top".into());
    futures_util::stream::iter(keys.clone())
        .for_each_concurrent(16, |k| {
            let client = &client;
            async move {
                client
                    .put(&k, Bytes::from_static(b"x"), &ObjectAttrs::default())
                    .await
                    .unwrap();
            }
        })
        .await;
    keys.sort();
    let (listed, prefixes) = list_all(&client, "", None).await;
    assert!(prefixes.is_empty());
    assert_eq!(listed, keys);
    let (listed, prefixes) = list_all(&client, "", Some("/")).await;
    assert_eq!(listed, ["top"]);
    assert_eq!(prefixes, ["d0/", "d1/", "d2/"]);
    let (listed, _) = list_all(&client, "d1/", Some("/")).await;
    assert_eq!(listed.len(), 833);
    server.reset_stats();
    let page = client
        .list_page(&ListRequest {
            prefix: "d2/".into(),
            delimiter: None,
            marker: "d2/f00100".into(),
            max_keys: 7,
        })
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 7);
    assert!(page.truncated);
    assert_eq!(page.objects[0].key, "d2/f00101");
    assert_eq!(
        page.next_marker.as_deref(),
        Some(page.objects[6].key.as_str())
    );
    assert_eq!(server.stats()["ListObjects"], 1);
}

#[tokio::test]
async fn objects_and_uploads_survive_a_restart() {
    let mut server = TestServer::start();
    let client = server.client();
    client
        .put("kept/one", Bytes::from_static(b"1"), &attrs("1"))
        .await
        .unwrap();
    client
        .put("gone", Bytes::from_static(b"2"), &ObjectAttrs::default())
        .await
        .unwrap();
    client.delete("gone").await.unwrap();
    let id = client
        .create_multipart("pending", &ObjectAttrs::default())
        .await
        .unwrap();
    let part = client
        .upload_part("pending", &id, 1, pattern(100, 1))
        .await
        .unwrap();
    server.restart();
    let client = server.client();
    let got = client
        .get("kept/one", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(&got.body[..], b"1");
    assert_eq!(got.info.meta.get("mode").map(String::as_str), Some("1"));
    assert!(client.head("gone").await.unwrap_err().is_not_found());
    assert_eq!(client.list_uploads("").await.unwrap().len(), 1);
    client
        .complete_multipart("pending", &id, &[part])
        .await
        .unwrap();
    assert_eq!(list_all(&client, "", None).await.0, ["kept/one", "pending"]);
}

#[tokio::test]
async fn path_style_and_virtual_hosted_addressing_work() {
    let server = TestServer::with(ServerOptions {
        buckets: vec![BUCKET.to_string(), "second-1250000000".to_string()],
        ..ServerOptions::default()
    });
    let creds = || Some(Credentials::permanent(SECRET_ID, crate::common::SECRET_KEY));
    let url = server.url();
    let path_style = Endpoint::custom(
        &url,
        "second-1250000000",
        crate::common::REGION,
        Style::PathStyle,
    )
    .unwrap();
    let second = server.client_at(path_style, creds());
    second
        .put("a/./b c", Bytes::from_static(b"2"), &ObjectAttrs::default())
        .await
        .unwrap();
    let first = server.client_virtual_hosted(BUCKET, creds());
    first
        .put("a/./b c", Bytes::from_static(b"1"), &ObjectAttrs::default())
        .await
        .unwrap();
    let hosted = server.client_virtual_hosted("second-1250000000", creds());
    assert_eq!(
        &hosted
            .get("a/./b c", &GetOptions::default())
            .await
            .unwrap()
            .body[..],
        b"2"
    );
    assert_eq!(
        &first
            .get("a/./b c", &GetOptions::default())
            .await
            .unwrap()
            .body[..],
        b"1"
    );
    assert_eq!(list_all(&second, "", None).await.0, ["a/./b c"]);
    // With two buckets, a request naming neither is refused.
    let err = server.client().head_bucket().await.unwrap_err();
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn wrong_keys_are_refused() {
    let server = TestServer::start();
    let wrong = server.client_for(
        BUCKET,
        Some(Credentials::permanent(SECRET_ID, "not-the-key")),
    );
    let err = wrong.head_bucket().await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), ""),
        "HEAD has no body"
    );
    let err = wrong
        .put("k", Bytes::from_static(b"x"), &ObjectAttrs::default())
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), "SignatureDoesNotMatch")
    );
    let unknown = server.client_for(BUCKET, Some(Credentials::permanent("AKIDnobody", "x")));
    let err = unknown
        .list_page(&ListRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidAccessKeyId");
    let anonymous = server.client_for(BUCKET, None);
    let err = anonymous
        .get("k", &GetOptions::default())
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), "AccessDenied"));
    let creds = Some(Credentials::permanent(SECRET_ID, crate::common::SECRET_KEY));
    server
        .client_virtual_hosted(BUCKET, creds.clone())
        .head_bucket()
        .await
        .unwrap();
    let other_bucket = server.client_virtual_hosted("other-1250000000", creds);
    let err = other_bucket
        .get("k", &GetOptions::default())
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), "NoSuchBucket"));
}

#[tokio::test]
async fn public_buckets_admit_anonymous_requests() {
    let read = TestServer::with(ServerOptions::public(crate::common::Public::Read));
    read.client()
        .put("k", Bytes::from_static(b"hi"), &ObjectAttrs::default())
        .await
        .unwrap();
    let anonymous = read.client_for(BUCKET, None);
    assert_eq!(
        &anonymous
            .get("k", &GetOptions::default())
            .await
            .unwrap()
            .body[..],
        b"hi"
    );
    assert_eq!(
        anonymous
            .list_page(&ListRequest::default())
            .await
            .unwrap()
            .objects
            .len(),
        1
    );
    anonymous.head_bucket().await.unwrap();
    let err = anonymous
        .put("k2", Bytes::from_static(b"x"), &ObjectAttrs::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "AccessDenied");
    assert_eq!(
        anonymous.delete("k").await.unwrap_err().code(),
        "AccessDenied"
    );

    let rw = TestServer::with(ServerOptions {
        keys: None,
        ..ServerOptions::public(crate::common::Public::ReadWrite)
    });
    let anonymous = rw.client_for(BUCKET, None);
    anonymous
        .put("k", Bytes::from_static(b"x"), &ObjectAttrs::default())
        .await
        .unwrap();
    anonymous
        .copy(
            "k",
            "k2",
            None,
            MetadataDirective::Copy,
            &ObjectAttrs::default(),
            0,
        )
        .await
        .unwrap();
    anonymous.delete("k").await.unwrap();
    assert_eq!(list_all(&anonymous, "", None).await.0, ["k2"]);
}

#[tokio::test]
async fn preconditions_ranges_and_stats() {
    let server = TestServer::start();
    let client = server.client();
    let put = client
        .put("k", pattern(100, 0), &ObjectAttrs::default())
        .await
        .unwrap();
    server.reset_stats();
    let ok = GetOptions {
        if_match: Some(put.etag.clone()),
        ..GetOptions::default()
    };
    client.get("k", &ok).await.unwrap();
    let stale = GetOptions {
        if_match: Some("0".repeat(32)),
        ..GetOptions::default()
    };
    assert_eq!(
        client.get("k", &stale).await.unwrap_err().code(),
        "PreconditionFailed"
    );
    let beyond = GetOptions {
        range: Some(100..200),
        ..GetOptions::default()
    };
    let err = client.get("k", &beyond).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(416), "InvalidRange"));
    let tail = GetOptions {
        range: Some(90..200),
        ..GetOptions::default()
    };
    assert_eq!(client.get("k", &tail).await.unwrap().body.len(), 10);
    client.head("k").await.unwrap();
    let stats = server.stats();
    assert_eq!(stats["GetObject"], 4);
    assert_eq!(stats["HeadObject"], 1);
    assert_eq!(stats["PutObject"], 0);
    assert_eq!(stats.as_object().unwrap().len(), 15);
}

/// Copies the one-byte `src` to `dst` (metadata kept) asking for `attrs`'
/// class and encryption; what HEAD then says of `dst`.
async fn copy_as(client: &HttpClient, src: &str, dst: &str, attrs: &ObjectAttrs) -> ObjectInfo {
    let copy = MetadataDirective::Copy;
    client.copy(src, dst, None, copy, attrs, 1).await.unwrap();
    client.head(dst).await.unwrap()
}

#[tokio::test]
async fn storage_classes_are_kept_and_copies_take_the_one_they_name() {
    let server = TestServer::start();
    let client = server.client();
    let in_class = |class: StorageClass| ObjectAttrs {
        storage_class: class,
        ..ObjectAttrs::default()
    };
    let ia = StorageClass::Named("STANDARD_IA".into());
    let body = Bytes::from_static(b"x");
    client
        .put("ia", body.clone(), &in_class(ia.clone()))
        .await
        .unwrap();
    assert_eq!(client.head("ia").await.unwrap().storage_class, ia);
    let page = client.list_page(&ListRequest::default()).await.unwrap();
    assert_eq!(page.objects[0].storage_class, ia);
    // As COS: a copy that names no class is STANDARD, whatever the directive.
    for (dst, class) in [("plain", StorageClass::Standard), ("kept", ia.clone())] {
        let copied = copy_as(&client, "ia", dst, &in_class(class.clone())).await;
        assert_eq!(copied.storage_class, class, "{dst}");
    }
    let archived = StorageClass::Named("ARCHIVE".into());
    client
        .put("cold", body.clone(), &in_class(archived.clone()))
        .await
        .unwrap();
    assert_eq!(client.head("cold").await.unwrap().storage_class, archived);
    let read = client
        .get("cold", &GetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        (read.status(), read.code()),
        (Some(403), "InvalidObjectState")
    );
    let bad = client
        .put("bad", body, &in_class(StorageClass::Named("COLD".into())))
        .await
        .unwrap_err();
    assert_eq!((bad.status(), bad.code()), (Some(400), "InvalidArgument"));
}

#[tokio::test]
async fn encryption_is_kept_and_copies_take_the_one_they_name() {
    let server = TestServer::start();
    let client = server.client();
    let encrypted = |encryption: Encryption| ObjectAttrs {
        encryption,
        ..ObjectAttrs::default()
    };
    let kms = Encryption::Kms(Some("key-1".into()));
    let body = Bytes::from_static(b"x");
    client
        .put("kms", body.clone(), &encrypted(kms.clone()))
        .await
        .unwrap();
    assert_eq!(client.head("kms").await.unwrap().encryption, kms);
    // As COS: a copy that names no encryption is stored in plain.
    for (dst, encryption) in [("plain", Encryption::Plain), ("aes", Encryption::Aes256)] {
        let copied = copy_as(&client, "kms", dst, &encrypted(encryption.clone())).await;
        assert_eq!(copied.encryption, encryption, "{dst}");
    }
    let bad = client
        .put("bad", body, &encrypted(Encryption::Other("DES".into())))
        .await
        .unwrap_err();
    assert_eq!((bad.status(), bad.code()), (Some(400), "InvalidArgument"));
}

#[tokio::test]
async fn concurrent_puts_and_deletes_of_one_key_never_corrupt_it() {
    let server = TestServer::start();
    let client = server.client();
    let rounds = futures_util::stream::iter(0..60u8).for_each_concurrent(12, |i| {
        let client = &client;
        async move {
            if i % 4 == 3 {
                client.delete("hot").await.unwrap();
            } else {
                client
                    .put(
                        "hot",
                        pattern(50_000 + i as usize, i),
                        &ObjectAttrs::default(),
                    )
                    .await
                    .unwrap();
            }
            // A whole-object GET checks the CRC64 of what it received.
            match client.get("hot", &GetOptions::default()).await {
                Ok(got) => assert_eq!(got.info.crc64, Some(crc64::checksum(&got.body))),
                Err(e) => assert!(e.is_not_found(), "{e}"),
            }
        }
    });
    rounds.await;
    let files = walk(server.root());
    assert!(
        files.iter().all(|f| !f.to_string_lossy().ends_with(".tmp")),
        "{files:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
