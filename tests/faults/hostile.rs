//! 1,000 hostile keys in a bucket (random characters, control characters,
//! 850-byte keys, `.`/`..` segments, `//`, NUL, a file and a folder with
//! one name): `ls -R` and `find` complete, every key that can be a path is
//! shown exactly as the model says, the others are skipped with warnings,
//! and the daemon neither crashes nor hangs. (Keys that are not UTF-8
//! cannot be stored by `cosmount serve`; a listing that carries them
//! percent-encoded is covered in `cos/xml.rs` and `tests/faults/fuzz.rs`.)

use std::collections::BTreeSet;

use bytes::Bytes;
use cosmount::cos::{ObjectAttrs, ObjectClient};
use cosmount::fs::dir::invalid_name;
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::TestServer;
use crate::common::mount::TestMount;

/// Characters hostile keys are made of.
const ALPHABET: &[&str] = &[
    "a", "b", "z", "0", "9", " ", "-", "_", ".", "..", "/", "//", "%", "%2F", "+", "?", "#", "&",
    "=", ";", "\\", "'", "\"", "*", "~", "\n", "\r", "\t", "\x01", "\x1b[31m", "\x7f", "é", "中",
    "文", "😀", "\u{feff}", "\u{202e}", "\u{fffd}", "\u{200b}",
];

fn hostile_keys() -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(1000);
    let mut keys = BTreeSet::new();
    let mut add = |k: String| {
        if !k.is_empty() && k != "." && k != ".." {
            keys.insert(k);
        }
    };
    for i in 0..300 {
        let n = rng.random_range(1..12);
        let body: String = (0..n)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect();
        add(format!("rnd{i}/{body}"));
    }
    for i in 0..60 {
        // 850 bytes, COS's limit: one segment, or four that are valid names.
        add(format!("long{i:02}/{}", "x".repeat(843)));
        let deep: Vec<String> = (0..4).map(|d| format!("{d}{}", "y".repeat(209))).collect();
        add(format!("deep{i:02}/{}", deep.join("/")));
    }
    for i in 0..40 {
        for k in [
            format!("dots/{i}/../x"),
            format!("dots/{i}/./y"),
            format!("dots/{i}/.."),
            format!("dots/{i}/."),
            format!("./dots{i}"),
            format!("../dots{i}"),
            format!("slash/{i}//z"),
            format!("//slash{i}"),
            format!("slash/{i}//"),
            format!("ctl/{i}\nnew\rline\tend"),
            format!("nul/{i}\0x"),
            format!("both/{i}"),
            format!("both/{i}/inside"),
        ] {
            add(k);
        }
    }
    let mut keys: Vec<String> = keys.into_iter().collect();
    let plain = 1000usize.saturating_sub(keys.len());
    keys.extend((0..plain).map(|i| format!("ok/{i}.txt")));
    keys
}

/// The files a mount must show: every segment a valid name, and no other
/// key under `key/` (a folder of that name wins).
fn model(keys: &[String]) -> BTreeSet<String> {
    keys.iter()
        .filter(|k| k.split('/').all(|s| invalid_name(s).is_none()))
        .filter(|k| !keys.iter().any(|o| o.starts_with(&format!("{k}/"))))
        .cloned()
        .collect()
}

#[test]
fn a_thousand_hostile_keys_are_listed_or_skipped_never_fatal() {
    let server = TestServer::start();
    let keys = hostile_keys();
    assert_eq!(keys.len(), 1000);
    let client = server.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        futures_util::stream::iter(&keys)
            .for_each_concurrent(16, |k| {
                let client = &client;
                async move {
                    let body = Bytes::from(k.clone().into_bytes());
                    let put = client.put(k, body, &ObjectAttrs::default()).await;
                    put.unwrap_or_else(|e| panic!("{k:?} ({} bytes): {e}", k.len()));
                }
            })
            .await;
    });
    // Both listing modes: sizes from the listing, or a HEAD per entry.
    for args in [&["--fast-list"][..], &[]] {
        let mut m = TestMount::start(&server, args);
        m.sh_ok("timeout 120 ls -laR . > /dev/null");
        let out = m.sh("timeout 120 find . -type f -print0");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let shown: BTreeSet<String> = out
            .stdout
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8(p.strip_prefix(b"./").unwrap_or(p).to_vec()).unwrap())
            .collect();
        let expected = model(&keys);
        let missing: Vec<_> = expected.difference(&shown).collect();
        let extra: Vec<_> = shown.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing {missing:?}\nextra {extra:?}"
        );
        assert!(
            expected.len() > 300 && expected.len() < 1000,
            "{}",
            expected.len()
        );
        // What is shown reads back as stored.
        for key in expected.iter().step_by(7) {
            let got = std::fs::read(m.join(key)).unwrap_or_else(|e| panic!("{key:?}: {e}"));
            assert_eq!(got, key.as_bytes(), "{key:?}");
        }
        assert!(m.join("nul").is_dir());
        let log = m.log_text();
        let warnings = log.matches("is not shown").count();
        assert!(warnings >= 100, "skipped keys are warned about: {warnings}");
        eprintln!(
            "{} keys: {} shown as files, {} skipped with a warning",
            keys.len(),
            shown.len(),
            warnings
        );
        assert!(m.stop().success(), "the daemon survived");
    }
}
