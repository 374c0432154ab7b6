//! Who uploaded which screenshot, and when. The images are in the object store.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::models::Screenshot;
use crate::pool::run;
use crate::schema::screenshots;
use crate::{Database, DbError};

/// The length of a screenshot id (the width of `screenshots.id`).
pub const SCREENSHOT_ID_LEN: usize = 16;

impl Database {
    /// Records an uploaded screenshot.
    pub async fn add_screenshot(&self, screenshot: &Screenshot) -> Result<(), DbError> {
        run!(self, |conn| async {
            diesel::insert_into(screenshots::table)
                .values(screenshot)
                .execute(conn)
                .await
        })
        .map(drop)
    }

    /// The screenshot with this id, if there is one.
    pub async fn screenshot(&self, id: &str) -> Result<Option<Screenshot>, DbError> {
        // Never a query for an id that cannot exist (and cannot be wider than the column).
        if id.len() != SCREENSHOT_ID_LEN {
            return Ok(None);
        }
        run!(self, |conn| async {
            screenshots::table
                .find(id)
                .select(Screenshot::as_select())
                .first(conn)
                .await
                .optional()
        })
    }

    /// A player's screenshots, newest first, at most `limit`.
    pub async fn screenshots_of(
        &self,
        user_id: i32,
        limit: i64,
    ) -> Result<Vec<Screenshot>, DbError> {
        run!(self, |conn| async {
            screenshots::table
                .filter(screenshots::user_id.eq(user_id))
                .order((screenshots::created_at.desc(), screenshots::id.desc()))
                .limit(limit)
                .select(Screenshot::as_select())
                .load(conn)
                .await
        })
    }
}
