//! Avatars and screenshots: where they are kept and who sent them. Not an entity, like
//! the score pipeline: every node runs the same service over the shared object store
//! (the images) and the database (who uploaded which screenshot, when), so any node
//! serves what another node received.
//!
//! This service stores bytes it is given and hands them back; it never looks inside.
//! Checking that an upload is an image, and re-encoding it so that no uploaded file is
//! ever served as it came, is the HTTP edge's work (`peace_gateway::media`), done before
//! anything reaches here.
//!
//! Keys in the store: `avatars/<user id>.png` (one per player, replaced by a new
//! upload) and `screenshots/<id>.<png|jpg>`.

use std::sync::Arc;

use bytes::Bytes;
pub use peace_db::SCREENSHOT_ID_LEN;
use peace_db::{Database, DbError};

use crate::scores::storage::{Storage, StorageError};

/// A screenshot's metadata (the gateway names no database type).
pub use peace_db::Screenshot;

/// Why a media request could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The image format of a stored screenshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenshotFormat {
    Png,
    Jpeg,
}

impl ScreenshotFormat {
    /// The extension, as stored in `screenshots.format` and used in keys and file names.
    pub fn extension(self) -> &'static str {
        match self {
            ScreenshotFormat::Png => "png",
            ScreenshotFormat::Jpeg => "jpg",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ScreenshotFormat::Png => "image/png",
            ScreenshotFormat::Jpeg => "image/jpeg",
        }
    }

    /// The format stored under this extension.
    pub fn from_extension(extension: &str) -> Option<Self> {
        match extension {
            "png" => Some(ScreenshotFormat::Png),
            "jpg" => Some(ScreenshotFormat::Jpeg),
            _ => None,
        }
    }
}

/// The avatar and screenshot store, cheap to clone.
#[derive(Debug, Clone)]
pub struct MediaService {
    db: Arc<Database>,
    storage: Storage,
}

impl MediaService {
    pub fn new(db: Arc<Database>, storage: Storage) -> Self {
        Self { db, storage }
    }

    fn avatar_key(user_id: i32) -> String {
        format!("avatars/{user_id}.png")
    }

    fn screenshot_key(id: &str, format: ScreenshotFormat) -> String {
        format!("screenshots/{id}.{}", format.extension())
    }

    /// The player's avatar (a PNG written by [`MediaService::set_avatar`]), or `None`
    /// when they have none.
    pub async fn avatar(&self, user_id: i32) -> Result<Option<Bytes>, MediaError> {
        Ok(self.storage.get(&Self::avatar_key(user_id)).await?)
    }

    /// Replaces the player's avatar with `png` (already checked and re-encoded).
    pub async fn set_avatar(&self, user_id: i32, png: Bytes) -> Result<(), MediaError> {
        Ok(self.storage.put(&Self::avatar_key(user_id), png).await?)
    }

    /// Removes the player's avatar (the default is served again). Removing none is fine.
    pub async fn remove_avatar(&self, user_id: i32) -> Result<(), MediaError> {
        Ok(self.storage.delete(&Self::avatar_key(user_id)).await?)
    }

    /// Stores a screenshot (already checked and re-encoded) under a new random id and
    /// records who sent it. The image is written before its record, so that a record
    /// never names a missing image.
    pub async fn add_screenshot(
        &self,
        user_id: i32,
        format: ScreenshotFormat,
        image: Bytes,
    ) -> Result<Screenshot, MediaError> {
        let id = hex::encode(rand::random::<[u8; SCREENSHOT_ID_LEN / 2]>());
        let screenshot = Screenshot {
            id,
            user_id,
            format: format.extension().to_owned(),
            size_bytes: i32::try_from(image.len()).unwrap_or(i32::MAX),
            created_at: peace_db::unix_now(),
        };
        self.storage
            .put(&Self::screenshot_key(&screenshot.id, format), image)
            .await?;
        self.db.add_screenshot(&screenshot).await?;
        Ok(screenshot)
    }

    /// The screenshot with this id: its format and bytes, or `None` if there is none.
    pub async fn screenshot(
        &self,
        id: &str,
    ) -> Result<Option<(ScreenshotFormat, Bytes)>, MediaError> {
        let Some(record) = self.db.screenshot(id).await? else {
            return Ok(None);
        };
        let Some(format) = ScreenshotFormat::from_extension(&record.format) else {
            tracing::warn!(
                id,
                format = record.format,
                "screenshot of an unknown format"
            );
            return Ok(None);
        };
        let bytes = self
            .storage
            .get(&Self::screenshot_key(&record.id, format))
            .await?;
        Ok(bytes.map(|bytes| (format, bytes)))
    }

    /// A player's screenshots, newest first.
    pub async fn screenshots_of(
        &self,
        user_id: i32,
        limit: i64,
    ) -> Result<Vec<Screenshot>, MediaError> {
        Ok(self.db.screenshots_of(user_id, limit).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn formats_round_trip_through_their_extensions() {
        for format in [ScreenshotFormat::Png, ScreenshotFormat::Jpeg] {
            assert_eq!(
                ScreenshotFormat::from_extension(format.extension()),
                Some(format)
            );
        }
        assert_eq!(ScreenshotFormat::from_extension("gif"), None);
    }
}
