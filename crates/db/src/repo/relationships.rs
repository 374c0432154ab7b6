use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::models::{Relationship, Relationships};
use crate::pool::run;
use crate::schema::relationships;
use crate::{Database, DbError};

impl Database {
    /// Everyone `user_id` has befriended or blocked.
    pub async fn relationships(&self, user_id: i32) -> Result<Relationships, DbError> {
        let rows: Vec<(i32, i16)> = run!(self, |conn| async {
            relationships::table
                .filter(relationships::user_id.eq(user_id))
                .select((relationships::target_id, relationships::kind))
                .load(conn)
                .await
        })?;
        let mut out = Relationships::default();
        for (target, kind) in rows {
            if kind == Relationship::Friend.code() {
                out.friends.push(target);
            } else {
                out.blocked.push(target);
            }
        }
        Ok(out)
    }

    /// Sets how `user_id` relates to `target_id`, replacing any earlier relation.
    pub async fn set_relationship(
        &self,
        user_id: i32,
        target_id: i32,
        kind: Relationship,
    ) -> Result<(), DbError> {
        // Delete-then-insert rather than an upsert: the upsert syntax differs per backend
        // (ON CONFLICT / ON DUPLICATE KEY). One transaction, so that a failed insert does
        // not lose the earlier relation.
        run!(self, |conn| conn.transaction(async move |conn| {
            diesel::delete(relationships::table.find((user_id, target_id)))
                .execute(conn)
                .await?;
            diesel::insert_into(relationships::table)
                .values((
                    relationships::user_id.eq(user_id),
                    relationships::target_id.eq(target_id),
                    relationships::kind.eq(kind.code()),
                ))
                .execute(conn)
                .await
        }))
        .map(drop)
    }

    /// Removes the relation of `kind` between the two users, if there is one.
    pub async fn remove_relationship(
        &self,
        user_id: i32,
        target_id: i32,
        kind: Relationship,
    ) -> Result<(), DbError> {
        run!(self, |conn| async {
            diesel::delete(
                relationships::table
                    .find((user_id, target_id))
                    .filter(relationships::kind.eq(kind.code())),
            )
            .execute(conn)
            .await
        })
        .map(drop)
    }
}
