//! `Storage` against a real S3-compatible server (moto or MinIO in CI: `.ci/run` starts
//! `moto_server` and sets `PEACE_TEST_S3_ENDPOINT`). Without that variable the tests
//! say so on stderr and pass without doing anything. The credentials come from the
//! environment like in production (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`; any
//! values for moto).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};
use peace_actors::scores::storage::{MAX_OBJECT_BYTES, S3Location, Storage, StorageError};

const ENDPOINT_VAR: &str = "PEACE_TEST_S3_ENDPOINT";

/// The server's url, or `None` (with a note) when the tests are not to run.
fn endpoint() -> Option<String> {
    match std::env::var(ENDPOINT_VAR) {
        Ok(url) if !url.is_empty() => {
            for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
                assert!(
                    std::env::var_os(var).is_some(),
                    "{ENDPOINT_VAR} is set but {var} is not: set dummy credentials for moto"
                );
            }
            Some(url.trim_end_matches('/').to_owned())
        }
        _ => {
            eprintln!("skipped: set {ENDPOINT_VAR} (e.g. http://127.0.0.1:5000 for moto_server)");
            None
        }
    }
}

/// A new bucket with a name of its own (moto creates one on an unsigned PUT).
async fn new_bucket(endpoint: &str) -> String {
    let bucket = format!("peace-test-{:016x}", rand::random::<u64>());
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("the S3 server answers");
    assert!(
        response.status().is_success(),
        "creating bucket {bucket}: {}",
        response.status()
    );
    bucket
}

fn location(endpoint: &str, bucket: &str, prefix: &str) -> S3Location {
    S3Location {
        bucket: bucket.to_owned(),
        endpoint: endpoint.to_owned(),
        region: "us-east-1".into(),
        prefix: prefix.to_owned(),
        allow_http: endpoint.starts_with("http://"),
    }
}

#[tokio::test]
async fn replays_and_osu_files_round_trip_through_a_bucket() {
    let Some(endpoint) = endpoint() else { return };
    let bucket = new_bucket(&endpoint).await;
    let storage = Storage::s3(&location(&endpoint, &bucket, "")).unwrap();

    let replay_key = Storage::replay_key("0123456789abcdef0123456789abcdef");
    let osu_key = Storage::osu_file_key("fedcba9876543210fedcba9876543210");
    assert_eq!(storage.get(&replay_key).await.unwrap(), None, "missing key");
    assert!(storage.list("").await.unwrap().is_empty());

    // Bytes as they are: an LZMA header with bytes that are not UTF-8.
    let replay = Bytes::from_static(&[0x5d, 0, 0, 0x20, 0, 0xff, 0xfe, 0x80]);
    let osu = Bytes::from_static(b"osu file format v14\r\n\r\n[General]\r\nMode: 0\r\n");
    storage.put(&replay_key, replay.clone()).await.unwrap();
    storage.put(&osu_key, osu.clone()).await.unwrap();
    assert_eq!(storage.get(&replay_key).await.unwrap(), Some(replay));
    assert_eq!(storage.get(&osu_key).await.unwrap(), Some(osu));

    assert_eq!(
        storage.list("").await.unwrap(),
        vec![osu_key.clone(), replay_key.clone()]
    );
    assert_eq!(
        storage.list("replays/").await.unwrap(),
        vec![replay_key.clone()]
    );
    assert_eq!(storage.list("osu").await.unwrap(), vec![osu_key.clone()]);

    // Another node on the same bucket sees it, and a put replaces the object.
    let other = Storage::s3(&location(&endpoint, &bucket, "")).unwrap();
    other
        .put(&replay_key, Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(
        storage.get(&replay_key).await.unwrap(),
        Some(Bytes::from_static(b"second"))
    );
    assert_eq!(storage.get("replays/none.lzma").await.unwrap(), None);
}

#[tokio::test]
async fn a_prefix_keeps_the_keys_under_it() {
    let Some(endpoint) = endpoint() else { return };
    let bucket = new_bucket(&endpoint).await;
    let whole = Storage::s3(&location(&endpoint, &bucket, "")).unwrap();
    let prefixed = Storage::s3(&location(&endpoint, &bucket, "/peace/eu/")).unwrap();
    let key = Storage::replay_key("00000000000000000000000000000001");
    prefixed
        .put(&key, Bytes::from_static(b"frames"))
        .await
        .unwrap();
    assert_eq!(prefixed.list("").await.unwrap(), vec![key.clone()]);
    assert_eq!(
        whole.list("").await.unwrap(),
        vec![format!("peace/eu/{key}")]
    );
    assert_eq!(whole.get(&key).await.unwrap(), None);
    assert!(
        whole
            .get(&format!("peace/eu/{key}"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn an_object_over_the_limit_is_refused_both_ways() {
    let Some(endpoint) = endpoint() else { return };
    let bucket = new_bucket(&endpoint).await;
    let storage = Storage::s3(&location(&endpoint, &bucket, "")).unwrap();
    let key = Storage::replay_key("00000000000000000000000000000002");
    let too_large = Bytes::from(vec![7u8; usize::try_from(MAX_OBJECT_BYTES).unwrap() + 1]);

    let refused = storage.put(&key, too_large.clone()).await.unwrap_err();
    assert!(matches!(refused, StorageError::TooLarge(_)), "{refused}");
    assert_eq!(storage.get(&key).await.unwrap(), None, "nothing was sent");

    // One written by something else is not read into memory.
    let raw = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .with_endpoint(&endpoint)
        .with_region("us-east-1")
        .with_allow_http(true)
        .build()
        .unwrap();
    raw.put(&Key::from(key.as_str()), PutPayload::from_bytes(too_large))
        .await
        .unwrap();
    let refused = storage.get(&key).await.unwrap_err();
    assert!(matches!(refused, StorageError::TooLarge(_)), "{refused}");
    // Exactly the limit is fine.
    let at_limit = Storage::new(Arc::new(raw));
    let limit = Bytes::from(vec![1u8; usize::try_from(MAX_OBJECT_BYTES).unwrap()]);
    at_limit.put(&key, limit.clone()).await.unwrap();
    assert_eq!(
        storage.get(&key).await.unwrap().map(|b| b.len()),
        Some(limit.len())
    );
}

#[tokio::test]
async fn a_server_that_is_not_there_is_an_error_not_a_missing_replay() {
    let Some(_) = endpoint() else { return };
    // A port nothing listens on (bound then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let storage = Storage::s3(&location(
        &format!("http://127.0.0.1:{port}"),
        "peace-none",
        "",
    ))
    .unwrap();
    let err = storage
        .get(&Storage::replay_key("00000000000000000000000000000003"))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Store(_)), "{err}");
}
