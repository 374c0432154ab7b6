use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::models::{Mail, MailInsert};
use crate::pool::run;
use crate::schema::{mail, users};
use crate::{Database, DbError, unix_now};

/// The most undelivered messages handed out at one login; the rest wait for the next.
pub const MAX_MAIL_PER_LOGIN: i64 = 100;

impl Database {
    /// Stores a private message for a user who is offline.
    pub async fn store_mail(&self, from_id: i32, to_id: i32, body: &str) -> Result<(), DbError> {
        let row = MailInsert {
            from_id,
            to_id,
            body,
            sent_at: unix_now(),
            delivered: false,
        };
        run!(self, |conn| async {
            diesel::insert_into(mail::table)
                .values(&row)
                .execute(conn)
                .await
        })
        .map(drop)
    }

    /// Takes the oldest undelivered messages for `to_id`, marking them delivered.
    pub async fn take_mail(&self, to_id: i32) -> Result<Vec<Mail>, DbError> {
        // Read and mark in one transaction: messages handed out are the ones marked.
        run!(self, |conn| conn.transaction(async move |conn| {
            // The first statement writes (nothing changes): on SQLite a transaction that
            // has read cannot start writing while another connection writes (it fails at
            // once instead of waiting), and on PostgreSQL and MySQL this locks the
            // user's undelivered rows, so two logins at once cannot both hand them out.
            diesel::update(
                mail::table
                    .filter(mail::to_id.eq(to_id))
                    .filter(mail::delivered.eq(false)),
            )
            .set(mail::delivered.eq(false))
            .execute(conn)
            .await?;
            let rows: Vec<(i32, i32, String, String, i64)> = mail::table
                .inner_join(users::table.on(users::id.eq(mail::from_id)))
                .filter(mail::to_id.eq(to_id))
                .filter(mail::delivered.eq(false))
                .order(mail::id)
                .limit(MAX_MAIL_PER_LOGIN)
                .select((
                    mail::id,
                    mail::from_id,
                    users::name,
                    mail::body,
                    mail::sent_at,
                ))
                .load(conn)
                .await?;
            let ids: Vec<i32> = rows.iter().map(|r| r.0).collect();
            if !ids.is_empty() {
                diesel::update(mail::table.filter(mail::id.eq_any(&ids)))
                    .set(mail::delivered.eq(true))
                    .execute(conn)
                    .await?;
            }
            Ok::<_, diesel::result::Error>(
                rows.into_iter()
                    .map(|(id, from_id, from_name, body, sent_at)| Mail {
                        id,
                        from_id,
                        from_name,
                        body,
                        sent_at,
                    })
                    .collect(),
            )
        }))
    }
}
