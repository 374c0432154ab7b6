use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::models::{NewUser, Privileges, User, UserInsert};
use crate::pool::run;
use crate::schema::users;
use crate::{Database, DbError, unix_now};

/// The case-insensitive key of a user name: lower-case with spaces as underscores, as
/// osu! itself treats names ("Some Player" and "some_player" are the same account).
pub fn safe_name(name: &str) -> String {
    name.trim().to_lowercase().replace(' ', "_")
}

/// Emails are unique regardless of case.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Database {
    /// Creates an account. A taken name or email is [`DbError::Conflict`].
    pub async fn create_user(&self, new: &NewUser<'_>) -> Result<User, DbError> {
        let safe = safe_name(new.name);
        let email = normalize_email(new.email);
        let now = unix_now();
        let row = UserInsert {
            name: new.name.trim(),
            safe_name: &safe,
            email: &email,
            password_bcrypt: new.password_bcrypt,
            privileges: new.privileges.0,
            country: new.country,
            created_at: now,
            last_seen: now,
        };
        // Insert, then read back by the unique key: portable to MySQL, which has no
        // RETURNING clause. One transaction, so that an account is never created without
        // the caller learning its id (a time-out between the two would otherwise leave
        // a name taken by a registration that reported failure).
        let key = safe.as_str();
        run!(self, |conn| conn.transaction(async move |conn| {
            diesel::insert_into(users::table)
                .values(&row)
                .execute(conn)
                .await?;
            users::table
                .filter(users::safe_name.eq(key))
                .select(User::as_select())
                .first(conn)
                .await
        }))
    }

    /// Looks a user up by name, case-insensitively.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>, DbError> {
        let safe = safe_name(name);
        run!(self, |conn| async {
            users::table
                .filter(users::safe_name.eq(&safe))
                .select(User::as_select())
                .first(conn)
                .await
                .optional()
        })
    }

    pub async fn user_by_id(&self, id: i32) -> Result<Option<User>, DbError> {
        run!(self, |conn| async {
            users::table
                .find(id)
                .select(User::as_select())
                .first(conn)
                .await
                .optional()
        })
    }

    pub async fn name_taken(&self, name: &str) -> Result<bool, DbError> {
        Ok(self.user_by_name(name).await?.is_some())
    }

    pub async fn email_taken(&self, email: &str) -> Result<bool, DbError> {
        let email = normalize_email(email);
        run!(self, |conn| async {
            diesel::select(diesel::dsl::exists(
                users::table.filter(users::email.eq(&email)),
            ))
            .get_result(conn)
            .await
        })
    }

    pub async fn touch_last_seen(&self, id: i32) -> Result<(), DbError> {
        let now = unix_now();
        run!(self, |conn| async {
            diesel::update(users::table.find(id))
                .set(users::last_seen.eq(now))
                .execute(conn)
                .await
        })
        .map(drop)
    }

    pub async fn set_privileges(&self, id: i32, privileges: Privileges) -> Result<(), DbError> {
        run!(self, |conn| async {
            diesel::update(users::table.find(id))
                .set(users::privileges.eq(privileges.0))
                .execute(conn)
                .await
        })
        .map(drop)
    }

    /// Stores `new` privileges if the row still holds `old`; false when another change
    /// got there first. Staff on different nodes can act on one player at once, so a
    /// read-change-write without this check could drop the other change's bit.
    pub async fn replace_privileges(
        &self,
        id: i32,
        old: Privileges,
        new: Privileges,
    ) -> Result<bool, DbError> {
        run!(self, |conn| async {
            diesel::update(users::table.find(id).filter(users::privileges.eq(old.0)))
                .set(users::privileges.eq(new.0))
                .execute(conn)
                .await
        })
        .map(|rows| rows == 1)
    }

    pub async fn set_silence_end(&self, id: i32, silence_end: i64) -> Result<(), DbError> {
        run!(self, |conn| async {
            diesel::update(users::table.find(id))
                .set(users::silence_end.eq(silence_end))
                .execute(conn)
                .await
        })
        .map(drop)
    }

    /// Number of accounts (bots included).
    pub async fn user_count(&self) -> Result<i64, DbError> {
        run!(self, |conn| async {
            users::table.count().get_result(conn).await
        })
    }
}
