//! Straight to the server over HTTP with cosmount's own client, path-style
//! and anonymous or signed like the mounts: seeding the bucket, and the
//! "raw" column (the ceiling a mounter could approach) for the same sizes
//! and request shapes the workloads cause.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use cosmount::cos::client::{ClientConfig, HttpClient};
use cosmount::cos::endpoint::{Endpoint, Style};
use cosmount::cos::provider::Provider;
use cosmount::cos::{GetOptions, ListWalker, ObjectAttrs, ObjectClient, PartInfo};
use cosmount::creds::{CredentialStore, Credentials};

use crate::server::{Keys, S3_REGION};
use crate::sys::{Measured, Skip, median};

const MIB: u64 = 1 << 20;
/// Part size and in-flight parts of raw multipart writes (cosmount's defaults).
const PART: u64 = 8 * MIB;
const PARTS_IN_FLIGHT: usize = 4;
/// Ranged GET size and GETs in flight per object for raw sequential reads.
const RANGE: u64 = 8 * MIB;
const RANGES_IN_FLIGHT: usize = 4;

fn err(e: impl std::fmt::Display) -> Skip {
    Skip::Failed(e.to_string())
}

/// A path-style client of the served bucket: anonymous in COS's dialect
/// without `keys`, signed in S3's (SigV4) with them.
pub fn client(url: &str, bucket: &str, keys: Option<Keys>) -> Measured<HttpClient> {
    let (region, provider, creds) = match keys {
        None => ("ap-guangzhou", Provider::Cos, CredentialStore::anonymous()),
        Some(k) => (
            S3_REGION,
            Provider::S3,
            CredentialStore::fixed(Credentials::permanent(k.id, k.secret)),
        ),
    };
    let endpoint = Endpoint::custom(url, bucket, region, Style::PathStyle).map_err(err)?;
    let config = ClientConfig {
        provider,
        ..ClientConfig::new(endpoint)
    };
    HttpClient::new(config, Arc::new(creds)).map_err(err)
}

/// A body of `len` bytes that is not all zeros.
pub fn pattern(len: usize) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
            .collect::<Vec<u8>>(),
    )
}

/// Multipart upload of `size` bytes (8 MiB parts, 4 in flight).
pub async fn put_large(client: &HttpClient, key: &str, size: u64) -> Measured<()> {
    let part = pattern(PART as usize);
    let id = client
        .create_multipart(key, &ObjectAttrs::default())
        .await
        .map_err(err)?;
    let count = size.div_ceil(PART);
    let mut parts: Vec<PartInfo> = futures_util::stream::iter(0..count)
        .map(|n| {
            let len = PART.min(size - n * PART) as usize;
            let (body, id) = (part.slice(..len), id.clone());
            async move { client.upload_part(key, &id, n as u32 + 1, body).await }
        })
        .buffer_unordered(PARTS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(err)?;
    parts.sort_by_key(|p| p.part_number);
    client
        .complete_multipart(key, &id, &parts)
        .await
        .map_err(err)?;
    Ok(())
}

/// PUTs `count` objects named by `key(i)` holding `body(i)`, 32 at a time.
pub async fn put_many(
    client: &HttpClient,
    count: usize,
    key: impl Fn(usize) -> String,
    body: impl Fn(usize) -> Bytes,
) -> Measured<()> {
    futures_util::stream::iter(0..count)
        .map(|i| {
            let (k, b) = (key(i), body(i));
            async move { client.put(&k, b, &ObjectAttrs::default()).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(())
}

/// Deletes every key under `prefix`.
pub async fn delete_prefix(client: &HttpClient, prefix: &str) -> Measured<()> {
    let keys = list_keys(client, prefix).await?;
    for chunk in keys.chunks(1000) {
        client.delete_many(chunk).await.map_err(err)?;
    }
    Ok(())
}

/// Every key under `prefix` with its size (no delimiter).
pub async fn list_keys_sizes(client: &HttpClient, prefix: &str) -> Measured<Vec<(String, u64)>> {
    let mut walk = ListWalker::new(prefix, None);
    let mut out = Vec::new();
    while let Some(page) = walk.next_page(client).await.map_err(err)? {
        out.extend(page.objects.into_iter().map(|o| (o.key, o.size)));
    }
    Ok(out)
}

async fn list_keys(client: &HttpClient, prefix: &str) -> Measured<Vec<String>> {
    Ok(list_keys_sizes(client, prefix)
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .collect())
}

/// Sequential reads of `keys` (each `size` bytes) at once, each as 8 MiB
/// ranged GETs with 4 in flight; aggregate MiB/s.
pub async fn read(client: &HttpClient, keys: &[String], size: u64) -> Measured<f64> {
    let start = Instant::now();
    let reads = keys.iter().map(|key| async move {
        let got: Vec<usize> = futures_util::stream::iter(0..size.div_ceil(RANGE))
            .map(|i| async move {
                let opts = GetOptions {
                    range: Some(i * RANGE..((i + 1) * RANGE).min(size)),
                    ..GetOptions::default()
                };
                client.get(key, &opts).await.map(|g| g.body.len())
            })
            .buffer_unordered(RANGES_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(err)?;
        Ok::<u64, Skip>(got.iter().map(|&n| n as u64).sum())
    });
    let total: u64 = futures_util::future::join_all(reads)
        .await
        .into_iter()
        .sum::<Measured<u64>>()?;
    if total != size * keys.len() as u64 {
        return Err(Skip::Failed(format!("raw read got {total} bytes")));
    }
    Ok(total as f64 / MIB as f64 / start.elapsed().as_secs_f64())
}

/// Latency of a GET of the first 4 KiB of each key; median ms.
pub async fn first_byte(client: &HttpClient, keys: &[String]) -> Measured<f64> {
    let mut ms = Vec::new();
    for key in keys {
        let start = Instant::now();
        let opts = GetOptions {
            range: Some(0..4096),
            ..GetOptions::default()
        };
        client.get(key, &opts).await.map_err(err)?;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(median(&ms))
}

/// 4 KiB ranged GETs at random aligned offsets of `key`, `in_flight` at a
/// time for `secs`; requests per second.
pub async fn random_reads(
    client: &HttpClient,
    key: &str,
    size: u64,
    in_flight: usize,
    secs: f64,
) -> Measured<f64> {
    let start = Instant::now();
    let limit = Duration::from_secs_f64(secs);
    let workers = (0..in_flight).map(|_| async move {
        let mut done = 0u64;
        while start.elapsed() < limit {
            let block = rand::random::<u64>() % (size / 4096);
            let opts = GetOptions {
                range: Some(block * 4096..(block + 1) * 4096),
                ..GetOptions::default()
            };
            client.get(key, &opts).await.map_err(err)?;
            done += 1;
        }
        Ok::<u64, Skip>(done)
    });
    let total: u64 = futures_util::future::join_all(workers)
        .await
        .into_iter()
        .sum::<Measured<u64>>()?;
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// A multipart upload of `size` bytes to `key`; MiB/s. The object is deleted.
pub async fn write(client: &HttpClient, key: &str, size: u64) -> Measured<f64> {
    let start = Instant::now();
    put_large(client, key, size).await?;
    let rate = size as f64 / MIB as f64 / start.elapsed().as_secs_f64();
    client.delete(key).await.map_err(err)?;
    Ok(rate)
}

/// One listing of `prefix` with `/` as delimiter, all pages; ms.
pub async fn list(client: &HttpClient, prefix: &str, expect: usize) -> Measured<f64> {
    let start = Instant::now();
    let mut walk = ListWalker::new(prefix, Some("/"));
    let mut n = 0;
    while let Some(page) = walk.next_page(client).await.map_err(err)? {
        n += page.objects.len() + page.common_prefixes.len();
    }
    if n != expect {
        return Err(Skip::Failed(format!(
            "raw list saw {n} entries, not {expect}"
        )));
    }
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

/// What an exact `ls -l` needs from the server: one listing of `prefix`
/// (all pages), then a HEAD of every object, `concurrency` at a time; ms.
pub async fn list_and_head(
    client: &HttpClient,
    prefix: &str,
    expect: usize,
    concurrency: usize,
) -> Measured<f64> {
    let start = Instant::now();
    let keys = list_keys(client, prefix).await?;
    if keys.len() != expect {
        return Err(Skip::Failed(format!(
            "raw list saw {} objects, not {expect}",
            keys.len()
        )));
    }
    futures_util::stream::iter(keys)
        .map(|key| async move { client.head(&key).await })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

/// A directory walk under `prefix` (one listing per folder, in order);
/// seconds and the number of entries.
pub async fn walk(client: &HttpClient, prefix: &str) -> Measured<(f64, usize)> {
    let start = Instant::now();
    let mut dirs = vec![prefix.to_string()];
    let mut entries = 0;
    while let Some(dir) = dirs.pop() {
        let mut walk = ListWalker::new(&dir, Some("/"));
        while let Some(page) = walk.next_page(client).await.map_err(err)? {
            entries += page.objects.len() + page.common_prefixes.len();
            dirs.extend(page.common_prefixes);
        }
    }
    Ok((start.elapsed().as_secs_f64(), entries))
}

/// PUTs the files one at a time (what a sequential `tar x` asks of a
/// mounter that uploads at close); seconds. The objects stay.
pub async fn put_files(
    client: &HttpClient,
    prefix: &str,
    files: &[(String, usize)],
) -> Measured<f64> {
    let body = pattern(files.iter().map(|f| f.1).max().unwrap_or(0));
    let start = Instant::now();
    for (name, len) in files {
        client
            .put(
                &format!("{prefix}{name}"),
                body.slice(..*len),
                &ObjectAttrs::default(),
            )
            .await
            .map_err(err)?;
    }
    Ok(start.elapsed().as_secs_f64())
}
