use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::models::Stats;
use crate::pool::run;
use crate::schema::stats;
use crate::{Database, DbError};

impl Database {
    /// A user's statistics in `mode`; all zero if they never played it.
    pub async fn stats(&self, user_id: i32, mode: i16) -> Result<Stats, DbError> {
        let found = run!(self, |conn| async {
            stats::table
                .find((user_id, mode))
                .select(Stats::as_select())
                .first(conn)
                .await
                .optional()
        })?;
        Ok(found.unwrap_or(Stats {
            user_id,
            mode,
            ..Stats::default()
        }))
    }

    /// Global rank for `pp` in `mode`: 1 + players with more pp; 0 (unranked) without pp.
    pub async fn global_rank(&self, mode: i16, pp: i32) -> Result<i32, DbError> {
        if pp <= 0 {
            return Ok(0);
        }
        let above: i64 = run!(self, |conn| async {
            stats::table
                .filter(stats::mode.eq(mode))
                .filter(stats::pp.gt(pp))
                .count()
                .get_result(conn)
                .await
        })?;
        Ok(i32::try_from(above + 1).unwrap_or(i32::MAX))
    }

    /// Replaces a user's statistics in one mode.
    pub async fn save_stats(&self, row: &Stats) -> Result<(), DbError> {
        let row = row.clone();
        // Delete-then-insert (portable, unlike upserts) in one transaction, so that a
        // failed insert does not lose the old row.
        run!(self, |conn| conn.transaction(async move |conn| {
            diesel::delete(stats::table.find((row.user_id, row.mode)))
                .execute(conn)
                .await?;
            diesel::insert_into(stats::table)
                .values(&row)
                .execute(conn)
                .await
        }))
        .map(drop)
    }
}
