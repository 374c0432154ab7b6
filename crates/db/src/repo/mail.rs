use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::models::{Mail, MailInsert, Relationship};
use crate::pool::run;
use crate::schema::{mail, relationships, users};
use crate::{Database, DbError, unix_now};

/// The most undelivered messages handed out at one login; the rest wait for the next.
pub const MAX_MAIL_PER_LOGIN: i64 = 100;

/// The most messages one sender may leave waiting for one offline user; the sender's chat
/// rate limit alone would still let the table grow without end.
pub const MAX_WAITING_MAIL_PER_SENDER: i64 = 50;

/// What became of a message left for an offline user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    Stored,
    /// The recipient is silenced; as online, they get no messages meanwhile.
    Silenced,
    /// The recipient blocked the sender.
    Blocked,
    /// The sender already has [`MAX_WAITING_MAIL_PER_SENDER`] messages waiting there.
    TooMany,
}

impl Database {
    /// Leaves a private message for a user who is offline, under the rules an online
    /// recipient's session applies (silence, blocks) and a cap per sender. The checks
    /// and the insert are one transaction.
    pub async fn store_mail(
        &self,
        from_id: i32,
        to_id: i32,
        body: &str,
    ) -> Result<MailOutcome, DbError> {
        let now = unix_now();
        let row = MailInsert {
            from_id,
            to_id,
            body,
            sent_at: now,
            delivered: false,
        };
        run!(self, |conn| conn.transaction(async move |conn| {
            let silence_end: Option<i64> = users::table
                .find(to_id)
                .select(users::silence_end)
                .first(conn)
                .await
                .optional()?;
            if silence_end.is_some_and(|end| end > now) {
                return Ok(MailOutcome::Silenced);
            }
            let blocked: bool = diesel::select(diesel::dsl::exists(
                relationships::table
                    .find((to_id, from_id))
                    .filter(relationships::kind.eq(Relationship::Block.code())),
            ))
            .get_result(conn)
            .await?;
            if blocked {
                return Ok(MailOutcome::Blocked);
            }
            let waiting: i64 = mail::table
                .filter(mail::from_id.eq(from_id))
                .filter(mail::to_id.eq(to_id))
                .filter(mail::delivered.eq(false))
                .count()
                .get_result(conn)
                .await?;
            if waiting >= MAX_WAITING_MAIL_PER_SENDER {
                return Ok(MailOutcome::TooMany);
            }
            diesel::insert_into(mail::table)
                .values(&row)
                .execute(conn)
                .await
                .map(|_| MailOutcome::Stored)
        }))
    }

    /// Takes the oldest undelivered messages for `to_id`, marking them delivered.
    pub async fn take_mail(&self, to_id: i32) -> Result<Vec<Mail>, DbError> {
        // Most logins find no mail: a plain read says so without the write below, which
        // on SQLite would queue every login of a burst behind the one writer. (Mail
        // stored after this read waits for the next login, as it would after the
        // transaction below.)
        let waiting: Option<i32> = run!(self, |conn| async {
            mail::table
                .filter(mail::to_id.eq(to_id))
                .filter(mail::delivered.eq(false))
                .select(mail::id)
                .first(conn)
                .await
                .optional()
        })?;
        if waiting.is_none() {
            return Ok(Vec::new());
        }
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
