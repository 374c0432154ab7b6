//! Where replays and `.osu` files live: one port over an object store, so that any node
//! serves what another node received. A local folder by default (`object_store`'s local
//! file system); the same keys work on any store `object_store` speaks.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

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
}

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

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
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
}
