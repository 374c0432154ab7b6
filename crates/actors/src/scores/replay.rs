//! Replays: the uploaded frame stream as `osu-getreplay.php` returns it, and a whole
//! `.osr` file (header built here) for the JSON API's download.

use bytes::Bytes;
use md5::{Digest, Md5};
use peace_db::DbError;
use peace_scores::grade::{Counts, Grade};
use peace_scores::mode::Mode;
use peace_scores::mods::Mods;
use peace_scores::osr::{self, ReplayHeader};

use super::ScoreService;
use super::storage::{Storage, StorageError};

/// Why a replay could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the stored score cannot be written as an .osr: {0}")]
    Osr(#[from] osr::OsrError),
}

impl ScoreService {
    /// The uploaded replay of score `id`, as uploaded; `None` for an unknown score, a
    /// play that did not pass, or a missing replay. A view is counted unless the owner
    /// (`viewer`) watches their own.
    pub async fn replay(&self, id: i32, viewer: i32) -> Result<Option<Bytes>, ReplayError> {
        let Some(score) = self.db.score_by_id(id).await? else {
            return Ok(None);
        };
        if score.status == 0 {
            return Ok(None);
        }
        let bytes = self
            .beatmaps
            .storage()
            .get(&Storage::replay_key(&score.online_checksum))
            .await?;
        if bytes.is_some() && viewer != score.user_id {
            self.db.count_replay_view(id).await?;
        }
        Ok(bytes)
    }

    /// A whole `.osr` file of score `id`, as osu! and replay tools open it.
    pub async fn osr_file(&self, id: i32) -> Result<Option<(String, Vec<u8>)>, ReplayError> {
        let Some(score) = self.db.score_by_id(id).await? else {
            return Ok(None);
        };
        if score.status == 0 {
            return Ok(None);
        }
        let Some(frames) = self
            .beatmaps
            .storage()
            .get(&Storage::replay_key(&score.online_checksum))
            .await?
        else {
            return Ok(None);
        };
        let player = self
            .db
            .user_by_id(score.user_id)
            .await?
            .map_or_else(String::new, |u| u.name);
        let n = |v: i32| u32::try_from(v).unwrap_or(0);
        let header = ReplayHeader {
            mode: Mode::from_number(i64::from(score.mode)).unwrap_or(Mode::Osu),
            // The build the server speaks to; the client only compares it loosely.
            game_version: 20_231_030,
            beatmap_md5: score.beatmap_md5.clone(),
            player_name: player.clone(),
            // The replay's own hash only tells replays apart in the client's list.
            replay_md5: hex::encode(Md5::digest(format!(
                "{}{}",
                score.online_checksum, score.id
            ))),
            counts: Counts {
                n300: n(score.count_300),
                n100: n(score.count_100),
                n50: n(score.count_50),
                ngeki: n(score.count_geki),
                nkatu: n(score.count_katu),
                nmiss: n(score.count_miss),
            },
            score: u64::try_from(score.score).unwrap_or(0),
            max_combo: n(score.max_combo),
            perfect: score.perfect,
            mods: Mods::from_wire(score.mods as u32),
            played_at_unix: score.submitted_at,
            online_score_id: i64::from(score.id),
        };
        let file = osr::build_osr(&header, &frames)?;
        let grade: Grade = score.grade.parse().unwrap_or(Grade::F);
        let name = format!(
            "{player} - {} ({grade}) [{}].osr",
            score.beatmap_md5, score.id
        );
        Ok(Some((name, file)))
    }
}
