//! The database record of a player's session (`sessions` table): what it takes to
//! rebuild the session on another node when the node that held it dies, so that the
//! player keeps playing without logging in again.
//!
//! The record is written at login, follows the session's channels, is refreshed now and
//! then while the session lives, and is deleted when the session really ends (logout,
//! time-out, kick). A session that moves to another node keeps its record. Only a
//! player's own session has one; a tournament client's extra sessions are not rebuilt.

use std::collections::BTreeSet;
use std::time::Duration;

use peace_db::SessionRecord;

use super::{Session, UserState};

/// How often a living session refreshes its record.
pub const REFRESH_EVERY: Duration = Duration::from_secs(3600);
/// A record not refreshed for this long belongs to a session that is gone: it is not
/// rebuilt, and the sweeper deletes it.
pub const RECORD_TTL_SECS: i64 = 3 * 3600;

/// What the record keeps of the session's channels: the channels that exist by
/// themselves (an instance channel of a room or match goes with the room or match).
pub(crate) fn lasting_channels(state: &UserState) -> BTreeSet<String> {
    state
        .channels
        .iter()
        .filter(|c| {
            crate::spectate::host_of_channel(c).is_none()
                && crate::match_room::match_of_channel(c).is_none()
        })
        .cloned()
        .collect()
}

/// The record of a session that starts now.
pub(crate) fn record_of(state: &UserState) -> SessionRecord {
    let now = peace_db::unix_now();
    SessionRecord {
        user_id: state.id,
        session_id: state.session_id,
        utc_offset: i16::from(state.utc_offset),
        block_non_friend_dms: state.block_non_friend_dms,
        channels: lasting_channels(state).into_iter().collect(),
        created_at: now,
        refreshed_at: now,
    }
}

/// What a session last wrote to its record.
#[derive(Debug, Clone)]
pub(crate) struct RecordSync {
    channels: BTreeSet<String>,
    refreshed_ms: i64,
}

impl RecordSync {
    pub(crate) fn new(state: &UserState) -> Self {
        Self {
            channels: lasting_channels(state),
            refreshed_ms: crate::unix_millis(),
        }
    }
}

impl Session {
    /// After a message: writes the record if the session's channels changed, or if it is
    /// due for a refresh. The write runs on its own task; the session does not wait.
    pub(super) fn sync_record(&mut self) {
        let Some(sync) = &mut self.record else {
            return;
        };
        let channels = lasting_channels(&self.state);
        let now = crate::unix_millis();
        let changed = channels != sync.channels;
        let due = now - sync.refreshed_ms >= REFRESH_EVERY.as_millis() as i64;
        if !changed && !due {
            return;
        }
        sync.refreshed_ms = now;
        let db = self.world.db().clone();
        let (user_id, session_id) = (self.state.id, self.state.session_id);
        if changed {
            sync.channels = channels.clone();
            let channels: Vec<String> = channels.into_iter().collect();
            tokio::spawn(async move {
                if let Err(e) = db
                    .set_session_channels(user_id, session_id, &channels)
                    .await
                {
                    tracing::debug!(user = user_id, "session record not updated: {e}");
                }
            });
        } else {
            tokio::spawn(async move {
                if let Err(e) = db.refresh_session_record(user_id, session_id).await {
                    tracing::debug!(user = user_id, "session record not refreshed: {e}");
                }
            });
        }
    }
}
