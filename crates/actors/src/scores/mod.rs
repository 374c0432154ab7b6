//! The score pipeline of the stable client: submission, leaderboards, replays and the
//! beatmap lookups they need. Not an entity: every node runs the same service over the
//! shared database (the truth) and the shared store, so a score submitted through one
//! node shows on a board read through any other. The global boards are read from the
//! leaderboard entities (`crate::leaderboard`), which hold their top in memory.
//!
//! * [`submit`] — `osu-submit-modular-selector.php`.
//! * [`board`] — `osu-osz2-getscores.php` and `osu-getbeatmapinfo.php` by file name.
//! * [`beatmap_info`] — the whole `osu-getbeatmapinfo.php` reply (maps by id too).
//! * [`replay`] — `osu-getreplay.php` and the `.osr` download.
//! * [`client`] — ratings, favourites, comments, client reports, star ratings.
//! * [`direct`] — osu!direct: the search, a set's line and the downloads.
//! * [`staff`] — map statuses and score moderation by staff, the bot's score commands.
//! * [`recalc`] — `peace pp recalc`: pp, totals and boards computed again, by shard.
//! * [`beatmaps`] — the provider chain (database, imported files, osu!api sources).
//! * [`storage`] — where replays and `.osu` files live.

pub mod announce;
pub mod beatmap_info;
pub mod beatmaps;
pub mod board;
pub mod client;
pub mod direct;
pub mod recalc;
pub mod replay;
pub mod staff;
pub mod storage;
pub mod submit;

use std::sync::Arc;

use peace_db::Database;

/// An account, as the score endpoints check it (the gateway names no database type).
pub use peace_db::User as Account;

use crate::Router;
use crate::ports::{Mail, Outbox};
use crate::session_msg::UserCast;
use beatmaps::{Beatmaps, BeatmapsConfig};
use storage::Storage;

/// How scores are kept.
#[derive(Debug, Clone)]
pub struct ScoresConfig {
    /// Relax and autopilot plays get boards of their own (off: they are refused).
    pub relax_boards: bool,
    /// Passes above their mode's cap are held for review.
    pub pp_cap: PpCaps,
    /// The server's domain, for the links in the chart after a play.
    pub domain: String,
    pub beatmaps: BeatmapsConfig,
    pub recalc: recalc::RecalcConfig,
}

impl Default for ScoresConfig {
    fn default() -> Self {
        Self {
            relax_boards: true,
            pp_cap: PpCaps::default(),
            domain: String::new(),
            beatmaps: BeatmapsConfig::default(),
            recalc: recalc::RecalcConfig::default(),
        }
    }
}

/// The most pp a pass may be worth per mode (osu!, taiko, catch, mania) before it is held
/// for staff to review instead of ranked; `None` is no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PpCaps(pub [Option<f32>; 4]);

impl PpCaps {
    /// Whether a pass worth `pp` in `mode` (0..=3) is above its mode's cap.
    pub fn exceeded(&self, mode: u8, pp: f64) -> bool {
        self.0
            .get(usize::from(mode))
            .copied()
            .flatten()
            .is_some_and(|cap| pp > f64::from(cap))
    }
}

/// The score pipeline, cheap to clone.
#[derive(Debug, Clone)]
pub struct ScoreService {
    db: Arc<Database>,
    beatmaps: Beatmaps,
    router: Router,
    config: Arc<ScoresConfig>,
}

impl ScoreService {
    pub fn new(db: Arc<Database>, storage: Storage, router: Router, config: ScoresConfig) -> Self {
        Self {
            beatmaps: Beatmaps::new(db.clone(), storage, config.beatmaps.clone()),
            db,
            router,
            config: Arc::new(config),
        }
    }

    pub fn beatmaps(&self) -> &Beatmaps {
        &self.beatmaps
    }

    /// The `.osu` file of the map with this file name (the client's name for it).
    pub async fn osu_file_by_name(
        &self,
        file_name: &str,
    ) -> Result<Option<bytes::Bytes>, peace_db::DbError> {
        let maps = self
            .db
            .beatmaps_by_file_names(&[file_name.to_owned()])
            .await?;
        // The newest version, if the name was reused.
        let Some(map) = maps.into_iter().max_by_key(|m| m.fetched_at) else {
            return Ok(None);
        };
        Ok(self.beatmaps.osu_file(&map).await)
    }

    /// The player's statistics changed: their session (wherever it lives) reloads them
    /// and tells everyone. An offline player has nothing to tell.
    fn notify_stats_changed(&self, user_id: i32) {
        if let Err(e) = self
            .router
            .send(Mail::User(user_id, UserCast::StatsChanged))
        {
            tracing::debug!(user = user_id, "stats changed, session not told: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PpCaps;

    #[test]
    fn a_cap_holds_only_its_own_mode_and_only_above_it() {
        let caps = PpCaps([Some(1500.0), None, Some(800.0), None]);
        assert!(!caps.exceeded(0, 1500.0), "at the cap is fine");
        assert!(caps.exceeded(0, 1500.5));
        assert!(!caps.exceeded(1, 99_999.0), "taiko has no cap");
        assert!(caps.exceeded(2, 801.0));
        assert!(!caps.exceeded(7, 99_999.0), "no such mode");
        assert!(!PpCaps::default().exceeded(0, f64::MAX), "off by default");
    }
}
