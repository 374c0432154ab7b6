//! Shared by the db test suites: a migrated scratch database per test on each backend,
//! and a macro that runs one test body on every backend.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use peace_db::testing::ScratchDatabase;
use peace_db::{Backend, Database, NewUser, Privileges};

/// A migrated, empty database on `backend`, or `None` when that backend is not
/// configured for this run (see `peace_db::testing`).
pub async fn fresh(backend: Backend) -> Option<(Database, ScratchDatabase)> {
    let scratch = ScratchDatabase::create(backend).await?;
    let db = scratch.connect().await;
    assert!(
        db.migrate().await.unwrap() > 0,
        "{backend}: nothing migrated"
    );
    Some((db, scratch))
}

pub fn new_user<'a>(name: &'a str, email: &'a str) -> NewUser<'a> {
    NewUser {
        name,
        email,
        // A bcrypt hash is exactly 60 characters (the column is VARCHAR(60)).
        password_bcrypt: "$2b$04$invalidinvalidinvalidinvalidinvalidinvalidinvalidinva",
        privileges: Privileges::DEFAULT_NEW,
        country: "XX",
    }
}

/// `on_every_backend!(case_a, case_b)` makes the tests `sqlite::case_a`,
/// `postgres::case_a`, `mysql::case_a`, …; each calls `case_a(db)` with a fresh migrated
/// database of that backend (a backend this build has no test server for is ignored:
/// see `peace_db::backend_test!`).
///
/// `on_every_backend!(scratch: case_a)` hands `case_a` the migrated `ScratchDatabase`
/// itself instead, for tests that connect with settings of their own or act on the
/// server (dropping connections, taking locks).
#[macro_export]
macro_rules! on_every_backend {
    (scratch: $($case:ident),* $(,)?) => {
        $crate::on_every_backend!(@scratch sqlite, Sqlite, $($case),*);
        $crate::on_every_backend!(@scratch postgres, Postgres, $($case),*);
        $crate::on_every_backend!(@scratch mysql, Mysql, $($case),*);
    };
    (@scratch $module:ident, $backend:ident, $($case:ident),*) => {
        mod $module {
            $(
                peace_db::backend_test!($backend,
                    #[tokio::test(flavor = "multi_thread")]
                    async fn $case() {
                        let Some((_, scratch)) =
                            $crate::common::fresh(peace_db::Backend::$backend).await
                        else {
                            return;
                        };
                        super::$case(scratch).await;
                    }
                );
            )*
        }
    };
    ($($case:ident),* $(,)?) => {
        $crate::on_every_backend!(@backend sqlite, Sqlite, $($case),*);
        $crate::on_every_backend!(@backend postgres, Postgres, $($case),*);
        $crate::on_every_backend!(@backend mysql, Mysql, $($case),*);
    };
    (@backend $module:ident, $backend:ident, $($case:ident),*) => {
        mod $module {
            $(
                peace_db::backend_test!($backend,
                    #[tokio::test(flavor = "multi_thread")]
                    async fn $case() {
                        let Some((db, _scratch)) =
                            $crate::common::fresh(peace_db::Backend::$backend).await
                        else {
                            return;
                        };
                        super::$case(db).await;
                    }
                );
            )*
        }
    };
}
