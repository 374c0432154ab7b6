//! The live schema of a database, read from the database itself (`pragma_table_info` on
//! SQLite, `information_schema` on PostgreSQL and MySQL) and described in diesel's type
//! names, so that the three backends' schemas can be compared with each other and with
//! `schema.rs`. `peace db copy` refuses to copy between databases whose shapes differ.

use std::collections::BTreeMap;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

use crate::pool::run;
use crate::{Backend, Database, DbError};

/// One column as diesel sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnShape {
    pub name: String,
    /// diesel's SQL type name: `Integer`, `BigInt`, `SmallInt`, `Text`, `Bool`, `Float`;
    /// anything else is kept as the database spelled it, so that a difference shows.
    pub sql_type: String,
    pub nullable: bool,
}

/// Every table (but diesel's own bookkeeping table) with its columns in order.
pub type SchemaShape = BTreeMap<String, Vec<ColumnShape>>;

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = BigInt)]
    nullable: i64,
}

const SQLITE_COLUMNS: &str = "SELECT m.name AS table_name, p.name AS column_name, \
     p.type AS data_type, CASE WHEN p.\"notnull\" = 0 AND p.pk = 0 THEN 1 ELSE 0 END AS nullable \
     FROM sqlite_master m JOIN pragma_table_info(m.name) p \
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
     AND m.name <> '__diesel_schema_migrations' ORDER BY m.name, p.cid";

const POSTGRES_COLUMNS: &str = "SELECT CAST(table_name AS TEXT) AS table_name, \
     CAST(column_name AS TEXT) AS column_name, CAST(data_type AS TEXT) AS data_type, \
     CAST(CASE WHEN is_nullable = 'YES' THEN 1 ELSE 0 END AS BIGINT) AS nullable \
     FROM information_schema.columns \
     WHERE table_schema = current_schema() AND table_name <> '__diesel_schema_migrations' \
     ORDER BY table_name, ordinal_position";

const MYSQL_COLUMNS: &str = "SELECT table_name AS table_name, column_name AS column_name, \
     data_type AS data_type, \
     CAST(CASE WHEN is_nullable = 'YES' THEN 1 ELSE 0 END AS SIGNED) AS nullable \
     FROM information_schema.columns \
     WHERE table_schema = DATABASE() AND table_name <> '__diesel_schema_migrations' \
     ORDER BY table_name, ordinal_position";

/// A column type as the database names it, in diesel's words. SQLite gives the declared
/// type (`VARCHAR(32)`), the others the type's name (`character varying`, `varchar`).
fn diesel_type(backend: Backend, declared: &str) -> String {
    let base = declared
        .split('(')
        .next()
        .unwrap_or(declared)
        .trim()
        .to_ascii_lowercase();
    let name = match (backend, base.as_str()) {
        (_, "integer" | "int" | "int4") => "Integer",
        (_, "bigint" | "int8") => "BigInt",
        (_, "smallint" | "int2") => "SmallInt",
        (_, "varchar" | "char" | "text" | "character varying" | "character") => "Text",
        // MySQL's BOOLEAN is TINYINT(1); Peace declares no other TINYINT.
        (Backend::Mysql, "tinyint") => "Bool",
        (_, "boolean" | "bool") => "Bool",
        // SQLite's REAL and PostgreSQL's real are four-byte floats as far as diesel's
        // `Float` goes; MySQL's REAL would be a DOUBLE, so the MySQL schema says FLOAT.
        (Backend::Sqlite | Backend::Postgres, "real") | (_, "float" | "float4") => "Float",
        _ => return declared.to_owned(),
    };
    name.to_owned()
}

impl Database {
    /// The shape of every table in this database.
    pub async fn schema_shape(&self) -> Result<SchemaShape, DbError> {
        let backend = self.backend();
        let sql = match backend {
            Backend::Sqlite => SQLITE_COLUMNS,
            Backend::Postgres => POSTGRES_COLUMNS,
            Backend::Mysql => MYSQL_COLUMNS,
        };
        let rows: Vec<ColumnRow> = run!(self, |conn| async {
            diesel::sql_query(sql).load(conn).await
        })?;
        let mut shape = SchemaShape::new();
        for row in rows {
            shape.entry(row.table_name).or_default().push(ColumnShape {
                sql_type: diesel_type(backend, &row.data_type),
                name: row.column_name,
                nullable: row.nullable != 0,
            });
        }
        Ok(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_map_to_diesel_types() {
        assert_eq!(diesel_type(Backend::Sqlite, "VARCHAR(32)"), "Text");
        assert_eq!(diesel_type(Backend::Sqlite, "REAL"), "Float");
        assert_eq!(diesel_type(Backend::Postgres, "character varying"), "Text");
        assert_eq!(diesel_type(Backend::Postgres, "real"), "Float");
        assert_eq!(diesel_type(Backend::Mysql, "tinyint"), "Bool");
        assert_eq!(diesel_type(Backend::Mysql, "real"), "real");
        assert_eq!(diesel_type(Backend::Mysql, "double"), "double");
    }
}
