use diesel_async::RunQueryDsl;

use crate::models::NewLogin;
use crate::pool::run;
use crate::repo::fit;
use crate::schema::logins;
use crate::{Database, DbError};

impl Database {
    /// Records a successful login (client build, hardware hashes, address).
    pub async fn record_login(&self, login: &NewLogin) -> Result<(), DbError> {
        // Column widths of `logins` (see `fit`).
        let row = NewLogin {
            ip: fit(&login.ip, 45),
            client_version: fit(&login.client_version, 64),
            client_hashes: fit(&login.client_hashes, 1024),
            ..login.clone()
        };
        run!(self, |conn| async {
            diesel::insert_into(logins::table)
                .values(&row)
                .execute(conn)
                .await
        })
        .map(drop)
    }
}
