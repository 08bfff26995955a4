//! A seeded random-operation model test: the same operations applied to the
//! fs core (over the in-memory client) and to a plain in-memory tree must
//! give the same results and the same final tree, for many seeds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::attr::Kind;
use super::*;
use crate::cos::memory::MemoryClient;
use crate::upload::UploadConfig;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Model {
    File(Vec<u8>),
    Dir,
}

const NAMES: &[&str] = &["a", "b", "c", "d"];

struct Harness {
    fs: Fs<MemoryClient>,
    model: BTreeMap<String, Model>,
    rng: StdRng,
    _staging: tempfile::TempDir,
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

fn name_of(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, n)| n)
}

impl Harness {
    fn new(seed: u64) -> Harness {
        let staging = tempfile::tempdir().unwrap();
        let config = FsConfig {
            metadata_ttl: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(3600),
            upload: UploadConfig {
                part_size: 1 << 20,
                part_concurrency: 2,
            },
            staging_dir: staging.path().to_path_buf(),
            ..FsConfig::default()
        };
        Harness {
            fs: Fs::new(Arc::new(MemoryClient::new()), config).unwrap(),
            model: BTreeMap::new(),
            rng: StdRng::seed_from_u64(seed),
            _staging: staging,
        }
    }

    /// A random path: an existing directory plus a name from a small set.
    fn random_path(&mut self) -> String {
        let dirs: Vec<String> = std::iter::once(String::new())
            .chain(
                self.model
                    .iter()
                    .filter(|(_, n)| **n == Model::Dir)
                    .map(|(p, _)| p.clone()),
            )
            .collect();
        let dir = &dirs[self.rng.random_range(0..dirs.len())];
        let name = NAMES[self.rng.random_range(0..NAMES.len())];
        if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        }
    }

    async fn ino(&self, path: &str) -> FsResult<u64> {
        let mut ino = ROOT;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            ino = self.fs.lookup(ino, part).await?.ino;
        }
        Ok(ino)
    }

    fn is_empty_dir(&self, path: &str) -> bool {
        let prefix = format!("{path}/");
        !self.model.keys().any(|k| k.starts_with(&prefix))
    }

    async fn step(&mut self) {
        let path = self.random_path();
        let exists = self.model.get(&path).cloned();
        match self.rng.random_range(0..8) {
            0 if exists.is_none() => {
                let parent = self.ino(parent_of(&path)).await.unwrap();
                let (_, opened) = self
                    .fs
                    .create(
                        parent,
                        name_of(&path),
                        0o644,
                        0,
                        CreateFlags::default(),
                        Caller::default(),
                    )
                    .await
                    .unwrap();
                self.fs.flush(opened.fh).await.unwrap();
                self.fs.release(opened.fh).await.unwrap();
                self.model.insert(path, Model::File(Vec::new()));
            }
            1 if matches!(exists, Some(Model::File(_))) => {
                let offset = self.rng.random_range(0..3_000_000u64);
                let len = self.rng.random_range(1..1_500_000usize);
                let byte: u8 = self.rng.random();
                let ino = self.ino(&path).await.unwrap();
                let mode = OpenMode {
                    write: true,
                    truncate: false,
                    append: false,
                    caller: None,
                    set_id: SetIdBits::Keep,
                };
                let opened = self.fs.open(ino, mode).await.unwrap();
                let data = vec![byte; len];
                self.fs
                    .write(opened.fh, offset, &data, SetIdBits::Keep)
                    .await
                    .unwrap();
                self.fs.flush(opened.fh).await.unwrap();
                self.fs.release(opened.fh).await.unwrap();
                let Some(Model::File(content)) = self.model.get_mut(&path) else {
                    unreachable!()
                };
                let end = offset as usize + len;
                if content.len() < end {
                    content.resize(end, 0);
                }
                content[offset as usize..end].fill(byte);
            }
            2 if matches!(exists, Some(Model::File(_))) => {
                let size = self.rng.random_range(0..3_000_000u64);
                let ino = self.ino(&path).await.unwrap();
                let changes = SetAttr {
                    size: Some(size),
                    ..SetAttr::default()
                };
                assert_eq!(self.fs.setattr(ino, changes).await.unwrap().size, size);
                let Some(Model::File(content)) = self.model.get_mut(&path) else {
                    unreachable!()
                };
                content.resize(size as usize, 0);
            }
            3 if exists.is_none() => {
                let parent = self.ino(parent_of(&path)).await.unwrap();
                self.fs
                    .mkdir(parent, name_of(&path), 0o755, 0, Caller::default())
                    .await
                    .unwrap();
                self.model.insert(path, Model::Dir);
            }
            4 if exists.is_some() => {
                let parent = self.ino(parent_of(&path)).await.unwrap();
                let result = self.fs.unlink(parent, name_of(&path)).await;
                if exists == Some(Model::Dir) {
                    assert_eq!(result, Err(FsError::IsDir));
                } else {
                    result.unwrap();
                    self.model.remove(&path);
                }
            }
            5 if exists.is_some() => {
                let parent = self.ino(parent_of(&path)).await.unwrap();
                let result = self.fs.rmdir(parent, name_of(&path)).await;
                match exists {
                    Some(Model::File(_)) => assert_eq!(result, Err(FsError::NotDir)),
                    _ if !self.is_empty_dir(&path) => assert_eq!(result, Err(FsError::NotEmpty)),
                    _ => {
                        result.unwrap();
                        self.model.remove(&path);
                    }
                }
            }
            6 if exists.is_some() => self.rename(path, exists.unwrap()).await,
            _ => self.check_read(&path, exists).await,
        }
    }

    async fn rename(&mut self, from: String, kind: Model) {
        let to = self.random_path();
        if to == from || to.starts_with(&format!("{from}/")) {
            return; // the kernel refuses moving a directory into itself
        }
        let target = self.model.get(&to).cloned();
        let (p1, p2) = (
            self.ino(parent_of(&from)).await.unwrap(),
            self.ino(parent_of(&to)).await.unwrap(),
        );
        let result = self
            .fs
            .rename(p1, name_of(&from), p2, name_of(&to), false)
            .await;
        let expected = match (&kind, &target) {
            (Model::Dir, Some(Model::File(_))) => Err(FsError::NotDir),
            (Model::File(_), Some(Model::Dir)) => Err(FsError::IsDir),
            (Model::Dir, Some(Model::Dir)) if !self.is_empty_dir(&to) => Err(FsError::NotEmpty),
            _ => Ok(()),
        };
        assert_eq!(result, expected, "rename {from} -> {to}");
        if expected.is_ok() {
            let moved: Vec<(String, Model)> = self
                .model
                .iter()
                .filter(|(k, _)| **k == from || k.starts_with(&format!("{from}/")))
                .map(|(k, v)| (format!("{to}{}", &k[from.len()..]), v.clone()))
                .collect();
            self.model
                .retain(|k, _| *k != from && !k.starts_with(&format!("{from}/")) && *k != to);
            self.model.extend(moved);
        }
    }

    async fn check_read(&self, path: &str, exists: Option<Model>) {
        match (exists, self.ino(path).await) {
            (None, r) => assert_eq!(r.unwrap_err(), FsError::NotFound, "{path} should not exist"),
            (Some(Model::Dir), r) => {
                assert_eq!(self.fs.getattr(r.unwrap()).await.unwrap().kind, Kind::Dir)
            }
            (Some(Model::File(content)), r) => {
                let ino = r.unwrap();
                assert_eq!(
                    self.fs.getattr(ino).await.unwrap().size,
                    content.len() as u64,
                    "{path}"
                );
                let opened = self.fs.open(ino, OpenMode::default()).await.unwrap();
                let got = self
                    .fs
                    .read(opened.fh, 0, content.len() as u32 + 10)
                    .await
                    .unwrap();
                self.fs.release(opened.fh).await.unwrap();
                assert!(got[..] == content[..], "{path}: content differs");
            }
        }
    }

    /// The whole tree through readdir, compared with the model.
    async fn check_tree(&self) {
        let mut seen = BTreeMap::new();
        let mut stack = vec![(String::new(), ROOT)];
        while let Some((path, ino)) = stack.pop() {
            let fh = self.fs.opendir(ino).unwrap();
            for e in self.fs.readdir(ino, fh, 0).await.unwrap().iter().skip(2) {
                let child = if path.is_empty() {
                    e.name.clone()
                } else {
                    format!("{path}/{}", e.name)
                };
                if e.entry.attr.kind == Kind::Dir {
                    stack.push((child.clone(), e.entry.ino));
                    seen.insert(child, Model::Dir);
                } else {
                    seen.insert(child, Model::File(Vec::new()));
                }
            }
            self.fs.releasedir(fh);
        }
        let shape: BTreeMap<String, bool> = self
            .model
            .iter()
            .map(|(k, v)| (k.clone(), *v == Model::Dir))
            .collect();
        let seen: BTreeMap<String, bool> = seen
            .into_iter()
            .map(|(k, v)| (k, v == Model::Dir))
            .collect();
        assert_eq!(seen, shape);
        for (path, node) in &self.model {
            self.check_read(path, Some(node.clone())).await;
        }
    }
}

#[tokio::test]
async fn random_operations_match_the_model() {
    for seed in 0..40 {
        let mut h = Harness::new(seed);
        for _ in 0..60 {
            h.step().await;
        }
        h.check_tree().await;
    }
}
