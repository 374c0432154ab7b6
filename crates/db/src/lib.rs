//! Peace's persistent data: accounts, statistics, relationships, channels, offline mail,
//! login records, multiplayer games, the moderation log, the session records from
//! which another node rebuilds a session whose node died, beatmaps and scores.
//!
//! [`Database`] is a cloneable handle over a connection pool to SQLite, PostgreSQL or
//! MySQL/MariaDB, chosen by the URL's scheme ([`Backend::of_url`]); every repository
//! method works on all three. Every operation has an
//! explicit time-out ([`DbConfig::query_timeout`]) and returns [`DbError`]; callers never see
//! a panic or an unbounded wait, even when the database is down. The pool re-establishes
//! connections by itself when the database comes back.
//!
//! Invariant: this crate knows nothing of actors, sockets or HTTP.

mod copy;
mod error;
mod introspect;
mod models;
mod pool;
mod repo;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;

pub use copy::{COPY_BATCH_ROWS, CopyError, CopyOptions, CopyReport, NOT_COPIED, TABLES};
pub use error::DbError;
pub use introspect::{ColumnShape, SchemaShape};
pub use models::*;
pub use pool::{Backend, Database, DbConfig};
pub use repo::beatmaps::{MAX_SEARCH_SETS, MAX_SEARCH_WORDS, MAX_SET_SIZE, SetOrder, SetSearch};
pub use repo::client_web::{
    ClientReport, Comment, CommentTarget, FavouriteOutcome, MAX_COMMENT_LEN, MAX_FAVOURITES,
    MAX_REPORT_DETAIL_LEN, NewComment, RatingOutcome, ReportKind,
};
pub use repo::mail::{MAX_WAITING_MAIL_PER_SENDER, MailOutcome};
pub use repo::overrides::{OVERRIDE_MAP, OVERRIDE_SET};
pub use repo::recalc::{
    BatchOutcome, PpUpdate, RecalcBatch, RecalcFilter, RecalcJobRow, RecalcNodeRow, RecalcShardRow,
    RecalcStart,
};
pub use repo::score_moderation::{
    FlaggedScore, MAX_FLAGGED_LISTED, Moderated, Moderation, ScoreAction,
};
pub use repo::scores::{
    BEST, BoardEntry, BoardOrder, BoardQuery, FAILED, FLAGGED, HIDDEN, MAX_BOARD_ROWS, PASSED,
    PP_SCORES_COUNTED, Recorded, Recording, ReplyRule, Submission, TotalsRule,
};
pub use repo::screenshots::SCREENSHOT_ID_LEN;
pub use repo::users::{normalize_email, safe_name};

/// The current time as unix seconds, the representation of every timestamp column.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
