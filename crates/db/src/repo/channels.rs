use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::models::Channel;
use crate::pool::run;
use crate::schema::channels;
use crate::{Database, DbError};

impl Database {
    /// Every persistent channel, by name.
    pub async fn channels(&self) -> Result<Vec<Channel>, DbError> {
        run!(self, |conn| async {
            channels::table
                .select(Channel::as_select())
                .order(channels::name)
                .load(conn)
                .await
        })
    }

    /// Adds a persistent channel; it opens at the next start. A taken name is
    /// [`DbError::Conflict`].
    pub async fn create_channel(&self, channel: &Channel) -> Result<(), DbError> {
        run!(self, |conn| async {
            diesel::insert_into(channels::table)
                .values(channel)
                .execute(conn)
                .await
        })
        .map(drop)
    }
}
