//! `puebla db copy`: every row of one database into another, e.g. from the embedded
//! SQLite file to PostgreSQL when one machine is no longer enough.
//!
//! Both databases are opened with [`SqlStore::connect`], so both carry this build's
//! migrations; the tables and columns to copy are then read from the target's schema
//! (not listed here), which keeps the copy right when a migration adds a table or a
//! column. The source must have exactly the same tables and columns, or nothing is
//! copied. The whole copy is one transaction on the target: it lands completely or
//! not at all. Ids are preserved (notices, audit entries and inbound messages are
//! referred to by id in the audit log and by the CLI), and PostgreSQL's identity
//! sequences are moved past the largest id copied.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};
use futures_util::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::db::SqlStore;
use crate::engine::ports::prelude::*;
use crate::engine::ports::{Backend, StoreError};

/// The order tables are copied in. The schema has no foreign keys, so the order only
/// has to be stable; it follows the one a reader would expect (the consultations, then
/// what refers to them). A table not named here is copied after these, by name.
const ORDER: &[&str] = &[
    "consultations",
    "attachments",
    "presidency",
    "focal_points",
    "api_tokens",
    "dashboard_sessions",
    "schedules",
    "timers",
    "outbox",
    "outbox_bodies",
    "inbound_messages",
    "imap_state",
    "audit_log",
];

/// Rows inserted by one statement (well under both dialects' limits on bound values).
const BATCH_PARAMS: usize = 900;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Text,
    Blob,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    name: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    name: String,
    columns: Vec<Column>,
    /// The PostgreSQL identity column (`id`), whose sequence must follow the copied ids.
    identity: Option<String>,
}

/// What a copy did: rows per table, in the order copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<(String, u64)>,
    /// Rows deleted from the target first (`--force`).
    pub replaced: u64,
}

/// Copies every table of `from` into `to`. A target that holds any row is refused
/// unless `force`, in which case its rows are deleted in the same transaction.
pub async fn copy_database(from: &str, to: &str, force: bool) -> Result<CopyReport, StoreError> {
    if from.trim() == to.trim() {
        return Err(anyhow!("the source and the target are the same database").into());
    }
    let source = SqlStore::connect(from)
        .await
        .context("opening the source database")?;
    let target = SqlStore::connect(to)
        .await
        .context("opening the target database")?;

    let tables = schema(&target)
        .await
        .context("reading the target's schema")?;
    let source_tables = schema(&source)
        .await
        .context("reading the source's schema")?;
    same_shape(&source_tables, &tables)?;

    let mut tx = target.begin_write().await?;
    let mut report = CopyReport::default();
    let mut occupied = Vec::new();
    for t in &tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", t.name))
            .fetch_one(&mut *tx)
            .await
            .with_context(|| format!("counting the target's {}", t.name))?;
        if n > 0 {
            occupied.push(format!("{} ({n} rows)", t.name));
            report.replaced += n as u64;
        }
    }
    if !occupied.is_empty() {
        if !force {
            return Err(anyhow!(
                "the target database is not empty: {}; copy into a fresh database, or pass --force to replace its rows",
                occupied.join(", ")
            )
            .into());
        }
        for t in tables.iter().rev() {
            sqlx::query(&format!("DELETE FROM {}", t.name))
                .execute(&mut *tx)
                .await
                .with_context(|| format!("emptying the target's {}", t.name))?;
        }
    }

    for t in &tables {
        let n = copy_table(&source, &mut tx, target.backend(), t).await?;
        if let (Backend::Postgres, Some(id)) = (target.backend(), &t.identity) {
            // The next id handed out must follow the largest one copied.
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{id}'), \
                 COALESCE((SELECT MAX({id}) FROM {table}), 0) + 1, false)",
                table = t.name
            );
            sqlx::query(&sql)
                .execute(&mut *tx)
                .await
                .with_context(|| format!("moving the id sequence of {}", t.name))?;
        }
        report.tables.push((t.name.clone(), n));
    }
    tx.commit().await.context("committing the copy")?;
    tracing::info!(tables = report.tables.len(), "database copied");
    Ok(report)
}

async fn copy_table(
    source: &SqlStore,
    tx: &mut Transaction<'static, Any>,
    target: Backend,
    t: &Table,
) -> Result<u64, StoreError> {
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    let list = names.join(", ");
    let select = format!("SELECT {list} FROM {} ORDER BY {}", t.name, names[0]);
    let overriding = match (target, &t.identity) {
        (Backend::Postgres, Some(_)) => " OVERRIDING SYSTEM VALUE",
        _ => "",
    };
    let per_batch = (BATCH_PARAMS / names.len()).max(1);
    let mut rows = sqlx::query(&select).fetch(source.pool());
    let mut batch: Vec<AnyRow> = Vec::with_capacity(per_batch);
    let mut copied = 0u64;
    loop {
        let next = rows
            .try_next()
            .await
            .with_context(|| format!("reading the source's {}", t.name))?;
        let done = next.is_none();
        if let Some(row) = next {
            batch.push(row);
        }
        if batch.len() == per_batch || (done && !batch.is_empty()) {
            let mut sql = format!("INSERT INTO {} ({list}){overriding} VALUES ", t.name);
            let mut p = 0;
            for (i, _) in batch.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for j in 0..names.len() {
                    if j > 0 {
                        sql.push_str(", ");
                    }
                    p += 1;
                    sql.push_str(&format!("${p}"));
                }
                sql.push(')');
            }
            let mut q = sqlx::query(&sql);
            for row in &batch {
                for (j, c) in t.columns.iter().enumerate() {
                    let what = || format!("reading {}.{}", t.name, c.name);
                    q = match c.kind {
                        Kind::Integer => {
                            q.bind(row.try_get::<Option<i64>, _>(j).with_context(what)?)
                        }
                        Kind::Text => {
                            q.bind(row.try_get::<Option<String>, _>(j).with_context(what)?)
                        }
                        Kind::Blob => {
                            q.bind(row.try_get::<Option<Vec<u8>>, _>(j).with_context(what)?)
                        }
                    };
                }
            }
            q.execute(&mut **tx)
                .await
                .with_context(|| format!("writing the target's {}", t.name))?;
            copied += batch.len() as u64;
            batch.clear();
        }
        if done {
            break;
        }
    }
    Ok(copied)
}

/// The tables of a migrated database (bookkeeping excluded), in copy order.
async fn schema(store: &SqlStore) -> anyhow::Result<Vec<Table>> {
    // (table, column, declared type, identity), in column order.
    let rows: Vec<(String, String, String, i64)> = match store.backend() {
        Backend::Sqlite => sqlx::query_as(
            "SELECT m.name, c.name, c.type, 0 FROM sqlite_master m, pragma_table_info(m.name) c \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
                 ORDER BY m.name, c.cid",
        )
        .fetch_all(store.pool())
        .await?,
        Backend::Postgres => {
            sqlx::query_as(
                "SELECT table_name::text, column_name::text, data_type::text, \
                        CASE WHEN is_identity = 'YES' THEN 1 ELSE 0 END::bigint \
                 FROM information_schema.columns WHERE table_schema = current_schema() \
                 ORDER BY table_name, ordinal_position",
            )
            .fetch_all(store.pool())
            .await?
        }
    };
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for (table, column, declared, identity) in rows {
        if table == "schema_migrations" {
            continue;
        }
        let kind = match declared.to_ascii_lowercase().as_str() {
            "integer" | "bigint" | "int" | "smallint" => Kind::Integer,
            "text" | "character varying" | "varchar" => Kind::Text,
            "blob" | "bytea" => Kind::Blob,
            other => {
                bail!("column {table}.{column} has type `{other}`, which the copy does not know")
            }
        };
        let t = tables.entry(table.clone()).or_insert_with(|| Table {
            name: table.clone(),
            columns: Vec::new(),
            identity: None,
        });
        if identity == 1 {
            t.identity = Some(column.clone());
        }
        t.columns.push(Column { name: column, kind });
    }
    let mut ordered = Vec::new();
    for name in ORDER {
        if let Some(t) = tables.remove(*name) {
            ordered.push(t);
        }
    }
    ordered.extend(tables.into_values());
    Ok(ordered)
}

/// The source must have the target's tables with the same columns, or the copy
/// would lose data.
fn same_shape(source: &[Table], target: &[Table]) -> Result<(), StoreError> {
    let describe = |ts: &[Table]| -> BTreeMap<String, Vec<(String, Kind)>> {
        ts.iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.columns.iter().map(|c| (c.name.clone(), c.kind)).collect(),
                )
            })
            .collect()
    };
    let (s, t) = (describe(source), describe(target));
    for (name, cols) in &s {
        match t.get(name) {
            None => return Err(anyhow!("the target has no table {name}").into()),
            Some(tc) => {
                let mut a = cols.clone();
                let mut b = tc.clone();
                a.sort_by(|x, y| x.0.cmp(&y.0));
                b.sort_by(|x, y| x.0.cmp(&y.0));
                if a != b {
                    return Err(anyhow!(
                        "table {name} has different columns in the source and the target"
                    )
                    .into());
                }
            }
        }
    }
    if let Some(name) = t.keys().find(|n| !s.contains_key(*n)) {
        return Err(anyhow!("the source has no table {name}").into());
    }
    Ok(())
}
