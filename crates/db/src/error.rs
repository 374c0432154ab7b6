use thiserror::Error;

/// Why a database operation failed.
#[derive(Debug, Error)]
pub enum DbError {
    /// No connection could be had (the server is down, unreachable or refusing us).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The operation took longer than the configured query time-out.
    #[error("database operation timed out")]
    Timeout,
    /// A unique key (user name, email) is taken.
    #[error("a unique value is already taken")]
    Conflict,
    #[error("database query failed: {0}")]
    Query(diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error(
        "unsupported database url {0:?} (expected sqlite://PATH, postgres://…, \
         postgresql://… or mysql://…)"
    )]
    BadUrl(String),
}

impl From<diesel::result::Error> for DbError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => DbError::Conflict,
            // The server went away under us (restarted, killed the connection, network
            // gone): the pool replaces the connection, the caller may retry.
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => DbError::Unavailable(info.message().to_owned()),
            // SQLite's answer when its busy time-out (set to the query time-out) ran out
            // while another connection held the file: the same as our own time-out.
            Error::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message() == "database is locked" =>
            {
                DbError::Timeout
            }
            other => DbError::Query(other),
        }
    }
}
