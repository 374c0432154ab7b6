//! Where replays and `.osu` files live: one port over an object store, so that any node
//! serves what another node received. A local folder by default (`object_store`'s local
//! file system), or an S3-compatible bucket (AWS, MinIO, R2, ...); the keys are the same.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

/// The largest object read back (a replay of a very long map is a few MB).
pub const MAX_OBJECT_BYTES: u64 = 32 << 20;

/// Why the store could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("storage: cannot use folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("storage: object {0} is larger than {MAX_OBJECT_BYTES} bytes")]
    TooLarge(String),
    #[error("storage: cannot use S3 bucket {bucket:?}: {source}")]
    Bucket {
        bucket: String,
        source: object_store::Error,
    },
}

/// Where an S3-compatible bucket is. The credentials are not here: they come from the
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optionally
/// `AWS_SESSION_TOKEN`), or from the instance's role on AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// The server's base url (`http://minio:9000`); empty for AWS itself.
    pub endpoint: String,
    /// Empty: `AWS_DEFAULT_REGION` or `AWS_REGION`, else `us-east-1`.
    pub region: String,
    /// Put every key under this one (`peace/` → `peace/replays/...`); empty for none.
    pub prefix: String,
    /// Allow a plain `http://` endpoint (a local MinIO or moto).
    pub allow_http: bool,
}

/// How long a request to the bucket may keep retrying before the error is the caller's
/// (`object_store`'s default is minutes, too long for a player waiting on a replay).
const S3_RETRY_TIMEOUT: Duration = Duration::from_secs(15);
const S3_MAX_RETRIES: usize = 3;

/// The store, cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
}

impl Storage {
    /// A store in a local folder (created if missing).
    pub fn local(folder: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(folder).map_err(|source| StorageError::Folder {
            path: folder.display().to_string(),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(folder)?;
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// A store in an S3-compatible bucket, which must exist. Nothing is sent until the
    /// first request, so a wrong endpoint or missing credentials show on first use.
    pub fn s3(location: &S3Location) -> Result<Self, StorageError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&location.bucket)
            .with_allow_http(location.allow_http)
            .with_retry(RetryConfig {
                max_retries: S3_MAX_RETRIES,
                retry_timeout: S3_RETRY_TIMEOUT,
                ..RetryConfig::default()
            });
        if !location.endpoint.is_empty() {
            builder = builder.with_endpoint(&location.endpoint);
        }
        if !location.region.is_empty() {
            builder = builder.with_region(&location.region);
        }
        let store = builder.build().map_err(|source| StorageError::Bucket {
            bucket: location.bucket.clone(),
            source,
        })?;
        let prefix = location.prefix.trim_matches('/');
        if prefix.is_empty() {
            Ok(Self::new(Arc::new(store)))
        } else {
            Ok(Self::new(Arc::new(PrefixStore::new(store, prefix))))
        }
    }

    /// A store in memory: gone with the process (tests, and nodes configured without
    /// a folder).
    pub fn in_memory() -> Self {
        Self::new(Arc::new(object_store::memory::InMemory::new()))
    }

    /// Any object store (an S3 bucket, memory for tests).
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// The uploaded replay (the LZMA frame stream) of the play with this checksum.
    pub fn replay_key(online_checksum: &str) -> String {
        format!("replays/{online_checksum}.lzma")
    }

    /// The `.osu` file with this md5.
    pub fn osu_file_key(md5: &str) -> String {
        format!("osu/{md5}.osu")
    }

    /// The `.osz` archive of set `set_id`, served to osu!direct's downloads when present
    /// (put there by the operator; archives above [`MAX_OBJECT_BYTES`] are not served).
    pub fn osz_key(set_id: i32) -> String {
        format!("osz/{set_id}.osz")
    }

    /// Stores `bytes` at `key`, replacing what was there. An object larger than
    /// [`MAX_OBJECT_BYTES`] is refused: it could not be read back.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        if bytes.len() as u64 > MAX_OBJECT_BYTES {
            return Err(StorageError::TooLarge(key.to_owned()));
        }
        self.store
            .put(&Key::from(key), PutPayload::from_bytes(bytes))
            .await?;
        Ok(())
    }

    /// The object at `key`, or `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        match self.store.get(&Key::from(key)).await {
            Ok(found) => {
                if found.meta.size > MAX_OBJECT_BYTES {
                    return Err(StorageError::TooLarge(key.to_owned()));
                }
                Ok(Some(found.bytes().await?))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the object at `key`; removing one that is not there is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&Key::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The keys under `prefix` (`"replays/"`, `"osu/"`; `""` for all), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let prefix = prefix.trim_end_matches('/');
        let prefix = (!prefix.is_empty()).then(|| Key::from(prefix));
        let mut keys: Vec<String> = self
            .store
            .list(prefix.as_ref())
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await?;
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn stores_and_reads_back_bytes_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path()).unwrap();
        let key = Storage::replay_key("0123456789abcdef0123456789abcdef");
        assert_eq!(storage.get(&key).await.unwrap(), None);
        let bytes = Bytes::from_static(&[0x5d, 0, 0, 0x20, 0, 0xff, 0xfe]);
        storage.put(&key, bytes.clone()).await.unwrap();
        assert_eq!(storage.get(&key).await.unwrap(), Some(bytes));
        // A second store on the same folder (another node sharing it) sees it too.
        let other = Storage::local(dir.path()).unwrap();
        assert!(other.get(&key).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn lists_keys_and_refuses_what_could_not_be_read_back() {
        let storage = Storage::in_memory();
        let replay = Storage::replay_key("0123456789abcdef0123456789abcdef");
        let osu = Storage::osu_file_key("fedcba9876543210fedcba9876543210");
        storage
            .put(&replay, Bytes::from_static(b"r"))
            .await
            .unwrap();
        storage.put(&osu, Bytes::from_static(b"o")).await.unwrap();
        assert_eq!(
            storage.list("").await.unwrap(),
            vec![osu.clone(), replay.clone()]
        );
        assert_eq!(
            storage.list("replays/").await.unwrap(),
            vec![replay.clone()]
        );
        assert!(storage.list("nothing").await.unwrap().is_empty());
        storage.delete(&replay).await.unwrap();
        storage.delete(&replay).await.unwrap();
        assert_eq!(storage.get(&replay).await.unwrap(), None);
        let too_large = Bytes::from(vec![0u8; usize::try_from(MAX_OBJECT_BYTES).unwrap() + 1]);
        let err = storage.put(&osu, too_large).await.unwrap_err();
        assert!(matches!(err, StorageError::TooLarge(_)), "{err}");
        assert_eq!(
            storage.get(&osu).await.unwrap(),
            Some(Bytes::from_static(b"o"))
        );
    }

    #[test]
    fn a_bucket_is_configured_without_reaching_it() {
        let location = S3Location {
            bucket: "peace".into(),
            endpoint: "http://127.0.0.1:9".into(),
            allow_http: true,
            prefix: "/a/b/".into(),
            ..S3Location::default()
        };
        assert!(Storage::s3(&location).is_ok());
    }
}
