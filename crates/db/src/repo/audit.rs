use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::models::{AuditEntry, AuditInsert};
use crate::pool::run;
use crate::schema::audit_log;
use crate::{Database, DbError, unix_now};

/// Longest reason kept in the audit log.
pub const MAX_AUDIT_REASON_LEN: usize = 512;

impl Database {
    /// Records a moderation action.
    pub async fn audit(
        &self,
        actor_id: i32,
        target_id: Option<i32>,
        action: &str,
        reason: &str,
    ) -> Result<(), DbError> {
        let reason: String = reason.chars().take(MAX_AUDIT_REASON_LEN).collect();
        let row = AuditInsert {
            actor_id,
            target_id,
            action,
            reason: &reason,
            created_at: unix_now(),
        };
        run!(self, |conn| async {
            diesel::insert_into(audit_log::table)
                .values(&row)
                .execute(conn)
                .await
        })
        .map(drop)
    }

    /// The newest `limit` entries, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, DbError> {
        run!(self, |conn| async {
            audit_log::table
                .order(audit_log::id.desc())
                .limit(limit)
                .select(AuditEntry::as_select())
                .load(conn)
                .await
        })
    }
}
