//! The three migration folders describe one schema: each backend, migrated for real,
//! has exactly the tables and columns (names, order, diesel types, nullability) that
//! `src/schema.rs` declares. Compared on the live databases, not on the SQL text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use peace_db::{ColumnShape, SchemaShape};

/// `src/schema.rs` read as data: every `table!` block's columns with their types.
fn declared_schema() -> SchemaShape {
    let source = include_str!("../src/schema.rs");
    let mut shape = SchemaShape::new();
    let mut table: Option<String> = None;
    for line in source.lines() {
        let trimmed = line.trim();
        if let Some(current) = &table {
            if trimmed == "}" {
                table = None;
            } else if let Some((name, ty)) = trimmed.split_once(" -> ") {
                let ty = ty.trim_end_matches(',');
                let (sql_type, nullable) = match ty
                    .strip_prefix("Nullable<")
                    .and_then(|t| t.strip_suffix('>'))
                {
                    Some(inner) => (inner, true),
                    None => (ty, false),
                };
                shape.get_mut(current).unwrap().push(ColumnShape {
                    name: name.to_owned(),
                    sql_type: sql_type.to_owned(),
                    nullable,
                });
            }
        } else if trimmed.ends_with(") {") && !trimmed.starts_with("diesel::") {
            let name = trimmed.split_whitespace().next().unwrap().to_owned();
            shape.insert(name.clone(), Vec::new());
            table = Some(name);
        }
    }
    shape
}

#[test]
fn schema_rs_is_read_completely() {
    let declared = declared_schema();
    assert_eq!(
        declared.len(),
        22,
        "{:?}",
        declared.keys().collect::<Vec<_>>()
    );
    assert_eq!(declared["users"].len(), 10);
    let target = &declared["audit_log"][2];
    assert_eq!((target.name.as_str(), target.nullable), ("target_id", true));
}

on_every_backend!(migrates_to_the_schema_of_schema_rs);

async fn migrates_to_the_schema_of_schema_rs(db: peace_db::Database) {
    let declared = declared_schema();
    let backend = db.backend();
    let live = db.schema_shape().await.unwrap();
    for (table, columns) in &declared {
        assert_eq!(
            live.get(table),
            Some(columns),
            "{backend}: table {table} differs from schema.rs"
        );
    }
    assert_eq!(
        live.keys().collect::<Vec<_>>(),
        declared.keys().collect::<Vec<_>>(),
        "{backend}: tables"
    );
    assert_eq!(db.pending_migrations().await.unwrap(), 0);
}

#[test]
fn the_copy_covers_every_table() {
    // `peace db copy` lists its tables by hand; a table added to the migrations but not
    // to the copy would be left behind silently.
    // (Or leaves it behind on purpose, saying why: `NOT_COPIED`.)
    let mut copied: Vec<&str> = peace_db::TABLES.to_vec();
    copied.extend(peace_db::NOT_COPIED);
    copied.sort_unstable();
    let declared = declared_schema();
    assert_eq!(
        copied,
        declared.keys().map(String::as_str).collect::<Vec<_>>()
    );
}

// Nodes of a cluster start together and each migrates at start; on the server
// backends that must apply every migration exactly once. (A SQLite file belongs to one
// node, so it has no such case.)
peace_db::backend_test!(
    Postgres,
    #[tokio::test(flavor = "multi_thread")]
    async fn nodes_migrating_at_once_on_postgres_apply_each_migration_once() {
        nodes_migrating_at_once_apply_each_migration_once(peace_db::Backend::Postgres).await;
    }
);

peace_db::backend_test!(
    Mysql,
    #[tokio::test(flavor = "multi_thread")]
    async fn nodes_migrating_at_once_on_mysql_apply_each_migration_once() {
        nodes_migrating_at_once_apply_each_migration_once(peace_db::Backend::Mysql).await;
    }
);

async fn nodes_migrating_at_once_apply_each_migration_once(backend: peace_db::Backend) {
    let Some(empty) = peace_db::testing::ScratchDatabase::create(backend).await else {
        return;
    };
    let nodes = [
        empty.connect().await,
        empty.connect().await,
        empty.connect().await,
    ];
    let (a, b, c) = tokio::join!(nodes[0].migrate(), nodes[1].migrate(), nodes[2].migrate());
    let applied = [a.unwrap(), b.unwrap(), c.unwrap()];
    assert_eq!(applied.iter().sum::<usize>(), 9, "{backend}: {applied:?}");
    assert_eq!(nodes[0].user_by_id(1).await.unwrap().unwrap().name, "Peace");
}
