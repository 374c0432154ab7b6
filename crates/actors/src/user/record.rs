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

use std::sync::Arc;

use peace_db::SessionRecord;

use super::ports::SessionStore;

use super::{Session, UserState};

/// How often, and how far apart at most, a failed deletion of an ended session's record
/// is tried again (a database that was down comes back).
pub const DELETE_ATTEMPTS: u32 = 12;
pub const DELETE_RETRY_MAX: Duration = Duration::from_secs(120);

/// Deletes the record of a session that ended for good, so that a replayed token gets
/// a restart instead of a rebuilt session. If the database does not answer, deleting
/// goes on in the background (doubling waits up to [`DELETE_RETRY_MAX`]) rather than
/// leaving a record that could bring the session back for [`RECORD_TTL_SECS`].
pub(crate) async fn forget(db: &Arc<dyn SessionStore>, user_id: i32, session_id: u64) {
    let Err(e) = db.delete_session_record(user_id, session_id).await else {
        return;
    };
    tracing::warn!(
        user = user_id,
        "could not delete the session record, will retry: {e}"
    );
    let db = db.clone();
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(1);
        for _ in 1..DELETE_ATTEMPTS {
            tokio::time::sleep(wait).await;
            match db.delete_session_record(user_id, session_id).await {
                Ok(_) => {
                    tracing::info!(user = user_id, "session record deleted after all");
                    return;
                }
                Err(e) => tracing::debug!(user = user_id, "session record still not deleted: {e}"),
            }
            wait = (wait * 2).min(DELETE_RETRY_MAX);
        }
        tracing::error!(
            user = user_id,
            "gave up deleting an ended session's record; it expires by itself"
        );
    });
}

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
        .filter(|c| !crate::key::is_instance_channel(c))
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
        let db = self.ports.store.clone();
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
