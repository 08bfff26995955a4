//! Browsing and reading a seeded bucket with ordinary tools: the tree,
//! attributes, names that cannot be shown, and every byte.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use bytes::Bytes;
use cosmount::cos::{ObjectAttrs, ObjectClient};

use crate::common::TestServer;
use crate::common::mount::TestMount;

fn meta(pairs: &[(&str, &str)]) -> ObjectAttrs {
    ObjectAttrs {
        meta: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ObjectAttrs::default()
    }
}

/// Seeds keys through the client; returns key → body for the plain files.
async fn seed(server: &TestServer) -> BTreeMap<String, Vec<u8>> {
    let client = server.client();
    let mut files = BTreeMap::new();
    let plain: Vec<(&str, Vec<u8>)> = vec![
        ("readme.txt", b"hello cosmount\n".to_vec()),
        ("docs/a.md", b"# A\nneedle here\n".to_vec()),
        (
            "docs/nested/deep/b.bin",
            (0..70_000u32).map(|i| (i * 31 % 256) as u8).collect(),
        ),
        ("implicit/only/child.txt", b"child\n".to_vec()),
        ("empty.dat", Vec::new()),
        ("space name/中文 file+%.txt", b"unicode\n".to_vec()),
    ];
    for (key, body) in plain {
        client
            .put(key, Bytes::from(body.clone()), &ObjectAttrs::default())
            .await
            .unwrap();
        files.insert(key.to_string(), body);
    }
    let dir_attrs = ObjectAttrs {
        content_type: Some("application/x-directory".into()),
        ..meta(&[("mode", "16832")])
    };
    client.put("docs/", Bytes::new(), &dir_attrs).await.unwrap();
    client
        .put("emptydir/", Bytes::new(), &ObjectAttrs::default())
        .await
        .unwrap();
    let cosfs = meta(&[
        ("mode", "33184"),
        ("uid", "1234"),
        ("gid", "4321"),
        ("mtime", "1500000000"),
    ]);
    client
        .put("cosfs-file", Bytes::from_static(b"from cosfs"), &cosfs)
        .await
        .unwrap();
    files.insert("cosfs-file".into(), b"from cosfs".to_vec());
    let link = meta(&[("mode", "41471")]);
    client
        .put("link-to-readme", Bytes::from_static(b"readme.txt"), &link)
        .await
        .unwrap();
    for hostile in ["bad//double", "bad/./dot", "bad/../dotdot"] {
        client
            .put(hostile, Bytes::from_static(b"x"), &ObjectAttrs::default())
            .await
            .unwrap();
    }
    let long = format!("bad/{}", "L".repeat(300));
    client
        .put(&long, Bytes::from_static(b"x"), &ObjectAttrs::default())
        .await
        .unwrap();
    client
        .put(
            "bad/fine",
            Bytes::from_static(b"ok"),
            &ObjectAttrs::default(),
        )
        .await
        .unwrap();
    client
        .put(
            "clash",
            Bytes::from_static(b"file"),
            &ObjectAttrs::default(),
        )
        .await
        .unwrap();
    client
        .put(
            "clash/inner",
            Bytes::from_static(b"dir wins"),
            &ObjectAttrs::default(),
        )
        .await
        .unwrap();
    files
}

#[test]
fn browse_and_read_a_seeded_bucket() {
    let server = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let files = rt.block_on(seed(&server));
    let m = TestMount::start(&server, &[]);

    let listing = m.sh_ok("ls -1A");
    let names: Vec<&str> = listing.lines().collect();
    assert_eq!(
        names,
        vec![
            "bad",
            "clash",
            "cosfs-file",
            "docs",
            "empty.dat",
            "emptydir",
            "implicit",
            "link-to-readme",
            "readme.txt",
            "space name"
        ]
    );
    assert_eq!(
        m.sh_ok("ls -1A bad"),
        "fine\n",
        "unusable names are skipped"
    );
    assert!(
        m.log_text().contains("is not shown"),
        "skipped keys are reported"
    );
    assert_eq!(m.sh_ok("cat clash/inner"), "dir wins");

    // Every byte of every plain file, through cat, sha256sum and std::fs.
    for (key, body) in &files {
        assert_eq!(&std::fs::read(m.join(key)).unwrap(), body, "{key}");
    }
    let sums = m.sh_ok("find . -type f -name '*.bin' -exec sha256sum {} +");
    assert!(sums.contains("docs/nested/deep/b.bin"));
    assert_eq!(m.sh_ok("head -c 5 readme.txt"), "hello");
    assert_eq!(m.sh_ok("tail -c 9 readme.txt"), "cosmount\n");
    assert_eq!(m.sh_ok("grep -rl needle . | sort"), "./docs/a.md\n");

    // Attributes: cosfs metadata, markers, symlinks, defaults.
    let cosfs = std::fs::metadata(m.join("cosfs-file")).unwrap();
    assert_eq!(
        (cosfs.mode(), cosfs.uid(), cosfs.gid(), cosfs.mtime()),
        (0o100640, 1234, 4321, 1_500_000_000)
    );
    let docs = std::fs::metadata(m.join("docs")).unwrap();
    assert_eq!(docs.mode(), 0o40700, "the marker's mode");
    assert!(std::fs::metadata(m.join("implicit/only")).unwrap().is_dir());
    assert_eq!(
        std::fs::read_link(m.join("link-to-readme"))
            .unwrap()
            .to_str(),
        Some("readme.txt")
    );
    assert_eq!(
        std::fs::read(m.join("link-to-readme")).unwrap(),
        b"hello cosmount\n"
    );
    let readme = std::fs::metadata(m.join("readme.txt")).unwrap();
    assert_eq!((readme.len(), readme.mode() & 0o777), (15, 0o644));
    assert_eq!(std::fs::metadata(m.join("empty.dat")).unwrap().len(), 0);
    assert!(
        std::fs::read_dir(m.join("emptydir"))
            .unwrap()
            .next()
            .is_none()
    );

    // Whole-tree tools.
    let found = m.sh_ok("find . | sort | wc -l");
    assert_eq!(found.trim(), "20");
    m.sh_ok("ls -laR > /dev/null && du -s . > /dev/null");
    let out = tempfile::tempdir().unwrap();
    m.sh_ok(&format!("cp -r docs '{}/copy'", out.path().display()));
    assert_eq!(
        std::fs::read(out.path().join("copy/nested/deep/b.bin")).unwrap(),
        files["docs/nested/deep/b.bin"]
    );
}
