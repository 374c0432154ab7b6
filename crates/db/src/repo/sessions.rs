//! Session records: what another node needs to rebuild a player's main session when the
//! node that held it died. The actors write a record at login, keep it current while the
//! session lives and delete it when the session ends for real (logout, time-out, kick).
//!
//! Every change but the login's own write names the session it comes from: a session
//! that a newer login replaced may still be shutting down on some node, and must not
//! delete or overwrite its successor's record.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::models::{SessionRecord, SessionRow, join_session_channels, session_id_to_column};
use crate::pool::run;
use crate::schema::sessions;
use crate::{Database, DbError, unix_now};

impl Database {
    /// Stores `record` as its user's session record, replacing any earlier one (a new
    /// login replaces the previous session).
    pub async fn save_session_record(&self, record: &SessionRecord) -> Result<(), DbError> {
        let row = SessionRow::from_record(record);
        // Delete-then-insert rather than an upsert, as for stats and relationships: the
        // upsert syntax differs per backend. One transaction, so that a failed insert
        // does not lose the earlier record. Two logins racing on one user both delete
        // and insert; the transactions serialise on the primary key, and the later wins.
        run!(self, |conn| conn.transaction(async move |conn| {
            diesel::delete(sessions::table.find(row.user_id))
                .execute(conn)
                .await?;
            diesel::insert_into(sessions::table)
                .values(&row)
                .execute(conn)
                .await
        }))
        .map(drop)
    }

    /// The user's session record, if one is stored.
    pub async fn session_record(&self, user_id: i32) -> Result<Option<SessionRecord>, DbError> {
        let row: Option<SessionRow> = run!(self, |conn| async {
            sessions::table
                .find(user_id)
                .select(SessionRow::as_select())
                .first(conn)
                .await
                .optional()
        })?;
        Ok(row.map(SessionRow::into_record))
    }

    /// Deletes the user's record if it belongs to session `session_id`; whether it did.
    pub async fn delete_session_record(
        &self,
        user_id: i32,
        session_id: u64,
    ) -> Result<bool, DbError> {
        let session_id = session_id_to_column(session_id);
        let deleted = run!(self, |conn| async {
            diesel::delete(
                sessions::table
                    .find(user_id)
                    .filter(sessions::session_id.eq(session_id)),
            )
            .execute(conn)
            .await
        })?;
        Ok(deleted > 0)
    }

    /// Replaces the channels of the user's record, if it belongs to session `session_id`,
    /// and counts as a refresh. The keys are cut as [`SessionRecord::channels`] says.
    pub async fn set_session_channels(
        &self,
        user_id: i32,
        session_id: u64,
        channels: &[String],
    ) -> Result<(), DbError> {
        let session_id = session_id_to_column(session_id);
        let joined = join_session_channels(channels);
        let now = unix_now();
        run!(self, |conn| async {
            diesel::update(
                sessions::table
                    .find(user_id)
                    .filter(sessions::session_id.eq(session_id)),
            )
            .set((
                sessions::channels.eq(&joined),
                sessions::refreshed_at.eq(now),
            ))
            .execute(conn)
            .await
        })
        .map(drop)
    }

    /// Marks the user's record as alive now, if it belongs to session `session_id`.
    pub async fn refresh_session_record(
        &self,
        user_id: i32,
        session_id: u64,
    ) -> Result<(), DbError> {
        let session_id = session_id_to_column(session_id);
        let now = unix_now();
        run!(self, |conn| async {
            diesel::update(
                sessions::table
                    .find(user_id)
                    .filter(sessions::session_id.eq(session_id)),
            )
            .set(sessions::refreshed_at.eq(now))
            .execute(conn)
            .await
        })
        .map(drop)
    }

    /// Deletes every record last refreshed before `older_than` (unix seconds): sessions
    /// that ended without a clean shutdown and that nobody came back for. How many went.
    pub async fn prune_session_records(&self, older_than: i64) -> Result<usize, DbError> {
        run!(self, |conn| async {
            diesel::delete(sessions::table.filter(sessions::refreshed_at.lt(older_than)))
                .execute(conn)
                .await
        })
    }
}
