use diesel_async::RunQueryDsl;

use crate::models::NewLogin;
use crate::pool::run;
use crate::schema::logins;
use crate::{Database, DbError};

impl Database {
    /// Records a successful login (client build, hardware hashes, address).
    pub async fn record_login(&self, login: &NewLogin) -> Result<(), DbError> {
        let row = login.clone();
        run!(self, |conn| async {
            diesel::insert_into(logins::table)
                .values(&row)
                .execute(conn)
                .await
        })
        .map(drop)
    }
}
