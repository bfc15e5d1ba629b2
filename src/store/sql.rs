//! The sqlx implementation of [`super::Store`] for SQLite and PostgreSQL.
//!
//! Everything goes through sqlx's `Any` driver, which knows only integers, floats,
//! text and blobs: times are bound as `i64` milliseconds since the epoch, booleans
//! as `0`/`1` and documents as JSON text. Statements use `$1`-style placeholders,
//! which sqlx's SQLite driver accepts too, so one text serves both dialects; the
//! exceptions (claims, migrations, transaction start) branch on [`Backend`].

use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, ConnectOptions, Row, Transaction};

use super::{
    ApiTokenRow, AttachmentRow, AuditEntry, Backend, BouncingCleared, FocalPointRow, ImportOutcome,
    InboundBrief, InboundCommit, InboundCounts, InboundMessage, InboundReading, InboundStatus,
    InboundStep, InboundTally, NewApiToken, NewAttachment, NewAudit, NewFocalPoint,
    NewInboundMessage, NewNotice, NewTimer, Notice, NoticeFailure, NoticeStatus, NoticeTally,
    OutboxCounts, OutboxHealth, ScheduleClaim, ScheduleRow, Step, Store, StoreError,
    StoredConsultation, Timer,
};
use super::{NewSession, SessionRow};
use crate::clock::{Clock, SystemClock};
use crate::domain::reference::ConsultationRef;

/// One schema change, written once per dialect.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("../../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "schedules",
        sqlite: include_str!("../../migrations/sqlite/0002_schedules.sql"),
        postgres: include_str!("../../migrations/postgres/0002_schedules.sql"),
    },
    Migration {
        version: 3,
        name: "api_tokens",
        sqlite: include_str!("../../migrations/sqlite/0003_api_tokens.sql"),
        postgres: include_str!("../../migrations/postgres/0003_api_tokens.sql"),
    },
    Migration {
        version: 4,
        name: "inbound",
        sqlite: include_str!("../../migrations/sqlite/0004_inbound.sql"),
        postgres: include_str!("../../migrations/postgres/0004_inbound.sql"),
    },
    Migration {
        version: 5,
        name: "attachments",
        sqlite: include_str!("../../migrations/sqlite/0005_attachments.sql"),
        postgres: include_str!("../../migrations/postgres/0005_attachments.sql"),
    },
    Migration {
        version: 6,
        name: "leases",
        sqlite: include_str!("../../migrations/sqlite/0006_leases.sql"),
        postgres: include_str!("../../migrations/postgres/0006_leases.sql"),
    },
    Migration {
        version: 7,
        name: "status_indexes",
        sqlite: include_str!("../../migrations/sqlite/0007_status_indexes.sql"),
        postgres: include_str!("../../migrations/postgres/0007_status_indexes.sql"),
    },
    Migration {
        version: 8,
        name: "outbox_bodies",
        sqlite: include_str!("../../migrations/sqlite/0008_outbox_bodies.sql"),
        postgres: include_str!("../../migrations/postgres/0008_outbox_bodies.sql"),
    },
    Migration {
        version: 9,
        name: "drop_inbound_reference_index",
        sqlite: include_str!("../../migrations/sqlite/0009_drop_inbound_reference_index.sql"),
        postgres: include_str!("../../migrations/postgres/0009_drop_inbound_reference_index.sql"),
    },
    Migration {
        version: 10,
        name: "dashboard_sessions",
        sqlite: include_str!("../../migrations/sqlite/0010_dashboard_sessions.sql"),
        postgres: include_str!("../../migrations/postgres/0010_dashboard_sessions.sql"),
    },
    Migration {
        version: 11,
        name: "inbound_stage",
        sqlite: include_str!("../../migrations/sqlite/0011_inbound_stage.sql"),
        postgres: include_str!("../../migrations/postgres/0011_inbound_stage.sql"),
    },
    Migration {
        version: 12,
        name: "inbound_conditional",
        sqlite: include_str!("../../migrations/sqlite/0012_inbound_conditional.sql"),
        postgres: include_str!("../../migrations/postgres/0012_inbound_conditional.sql"),
    },
];

/// The bookkeeping table; the same text is valid in both dialects.
const CREATE_SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY NOT NULL,
    name       TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// The key of the PostgreSQL advisory lock that serialises replicas migrating at once.
const MIGRATION_LOCK_KEY: i64 = 0x7075_6562_6c61_0001;

const CONSULTATION_COLUMNS: &str =
    "reference, procedure, title, stage, open, state_json, version, created_at, updated_at";

/// A notice is its outbox row (status, bookkeeping) and its content in
/// `outbox_bodies`; the column names of the two do not overlap.
const NOTICES: &str = "outbox JOIN outbox_bodies ON notice_id = id";

const NOTICE_COLUMNS: &str =
    "id, reference, kind, round, country, recipient, recipient_name, language, \
     subject, body_text, body_html, message_id, payload_json, status, attempts, next_attempt_at, \
     last_error, created_at, sent_at, server_reply";

const MARK_SENT_SQL: &str = "UPDATE outbox SET status = 'sent', sent_at = $2, server_reply = $3, \
     claimed_by = NULL, claimed_until = NULL WHERE id = $1";

const TIMER_COLUMNS: &str = "id, reference, kind, due_at, event_json";

const SCHEDULE_COLUMNS: &str = "name, spec, next_due_at, last_due_at, last_fired_at, updated_at";

const FOCAL_POINT_COLUMNS: &str = "id, country, name, email, language, active";

const API_TOKEN_COLUMNS: &str = "id, name, role, token_hash, created_by, created_at, revoked_at";

pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

impl SqlStore {
    /// Opens `sqlite://PATH` (the file is created if missing) or
    /// `postgres://...`/`postgresql://...`, and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let (backend, url) = normalise_url(url)?;
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("invalid {} database URL", backend.as_str()))?
            .log_statements(tracing::log::LevelFilter::Debug)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let max_connections = match backend {
            // SQLite has one writer at a time; a few connections serve concurrent readers.
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            // A refused connection is retried until this timeout, so it is also how
            // long a step waits while the database is away before it fails (and is
            // tried again on the next pass).
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; busy_timeout makes a second
                        // writer wait for the lock instead of failing at once.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA busy_timeout = 5000",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA synchronous = NORMAL",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the {} database", backend.as_str()))?;
        let store = Self { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    pub(super) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A write transaction, for [`super::copy`].
    pub(super) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        self.begin().await
    }

    /// Whether every migration this binary knows has been applied (for a readiness check).
    pub async fn migrations_applied(&self) -> Result<bool, StoreError> {
        let exists_sql = match self.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
            }
        };
        let exists: i64 = sqlx::query_scalar(exists_sql)
            .fetch_one(&self.pool)
            .await
            .context("looking for the schema_migrations table")?;
        if exists == 0 {
            return Ok(false);
        }
        let latest = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations WHERE version <= $1")
                .bind(latest)
                .fetch_one(&self.pool)
                .await
                .context("reading schema_migrations")?;
        Ok(applied == MIGRATIONS.len() as i64)
    }

    /// Applies each pending migration in a transaction of its own, recording it in
    /// `schema_migrations`. On PostgreSQL an advisory lock keeps replicas that start
    /// together from applying the same migration twice.
    async fn migrate(&self) -> Result<(), StoreError> {
        for m in MIGRATIONS {
            let mut tx = self.begin().await?;
            if self.backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK_KEY)
                    .execute(&mut *tx)
                    .await
                    .context("taking the migration lock")?;
            }
            sqlx::raw_sql(CREATE_SCHEMA_MIGRATIONS)
                .execute(&mut *tx)
                .await
                .context("creating schema_migrations")?;
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await
                    .context("reading schema_migrations")?;
            if applied.is_some() {
                continue;
            }
            let text = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            sqlx::raw_sql(text)
                .execute(&mut *tx)
                .await
                .with_context(|| format!("applying migration {:04}_{}", m.version, m.name))?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(ms(SystemClock.now()))
            .execute(&mut *tx)
            .await
            .context("recording a migration")?;
            tx.commit()
                .await
                .with_context(|| format!("committing migration {:04}_{}", m.version, m.name))?;
            tracing::debug!(
                version = m.version,
                name = m.name,
                backend = self.backend.as_str(),
                "applied migration"
            );
        }
        Ok(())
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so that a transaction that reads before it writes
    /// waits for the lock (busy_timeout) instead of failing when another writer
    /// committed in between.
    async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .context("starting a transaction")?;
        Ok(tx)
    }

    /// A worker whose lease expired may report a failure after another worker
    /// sent the notice; a sent notice stays sent (it must not be sent twice), so
    /// the late report is only logged.
    async fn already_sent_or_missing(&self, id: i64, report: &str) -> Result<(), StoreError> {
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .context("looking up a notice")?;
        if exists == 0 {
            return Err(StoreError::NotFound(format!("notice {id}")));
        }
        tracing::warn!(
            notice = id,
            report,
            "ignoring a late report on a notice already sent"
        );
        Ok(())
    }

    fn claim_sql(&self) -> String {
        // SQLite has no SKIP LOCKED, and needs none: its single writer runs the
        // whole UPDATE alone. PostgreSQL replicas skip rows another claim holds.
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        format!(
            "UPDATE outbox SET status = 'sending', claimed_by = $1, claimed_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox \
                 WHERE (status = 'pending' AND next_attempt_at <= $3) \
                    OR (status = 'sending' AND claimed_until < $5) \
                 ORDER BY id LIMIT $4{lock}) \
             RETURNING id"
        )
    }

    /// Sets `assignment` (fixed SQL, such as `active = 0`) on every focal point row
    /// with this address, in `tx`; the rows as they are after, oldest first.
    /// `NotFound` when no row has the address.
    async fn update_focal_points_by_email(
        tx: &mut Transaction<'static, Any>,
        assignment: &str,
        email: &str,
        at: DateTime<Utc>,
        doing: &str,
    ) -> Result<Vec<FocalPointRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "UPDATE focal_points SET {assignment}, updated_at = $2 WHERE email = $1 \
             RETURNING {FOCAL_POINT_COLUMNS}"
        ))
        .bind(email)
        .bind(ms(at))
        .fetch_all(&mut **tx)
        .await
        .with_context(|| format!("{doing} a focal point"))?;
        let mut points = rows
            .iter()
            .map(focal_point_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if points.is_empty() {
            return Err(StoreError::NotFound(format!("focal point {email}")));
        }
        points.sort_by_key(|p| p.id);
        Ok(points)
    }

    async fn focal_point_audit(
        tx: &mut Transaction<'static, Any>,
        action: &str,
        actor: &str,
        at: DateTime<Utc>,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        insert_audit(
            tx,
            &NewAudit {
                reference: None,
                at,
                actor: actor.to_string(),
                action: action.to_string(),
                detail_json: detail.to_string(),
            },
        )
        .await
    }
}

/// Recognises the backend and makes a SQLite URL create its file when missing.
fn normalise_url(url: &str) -> Result<(Backend, String), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // sqlx logs an unknown parameter with its value, which would put a
        // misspelt `?pasword=` into the log: such a URL is refused here instead,
        // naming the parameter only.
        const KNOWN: &[&str] = &[
            "sslmode",
            "ssl-mode",
            "sslrootcert",
            "ssl-root-cert",
            "ssl-ca",
            "sslcert",
            "ssl-cert",
            "sslkey",
            "ssl-key",
            "statement-cache-capacity",
            "host",
            "hostaddr",
            "port",
            "dbname",
            "user",
            "password",
            "application_name",
            "options",
        ];
        if let Ok(parsed) = url::Url::parse(url) {
            if let Some((key, _)) = parsed
                .query_pairs()
                .find(|(k, _)| !KNOWN.contains(&k.as_ref()))
            {
                return Err(anyhow!(
                    "the PostgreSQL URL has an unknown parameter `{key}` (known: {})",
                    KNOWN.join(", ")
                )
                .into());
            }
        }
        return Ok((Backend::Postgres, url.to_string()));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        if rest.starts_with(":memory:") || rest.contains("mode=memory") {
            // Each pooled connection would get a database of its own.
            return Err(anyhow!(
                "in-memory SQLite is not supported: name a file, e.g. sqlite://puebla.db"
            )
            .into());
        }
        let url = if url.contains("mode=") {
            url.to_string()
        } else if url.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        };
        return Ok((Backend::Sqlite, url));
    }
    Err(anyhow!("unsupported database URL: expected sqlite://PATH or postgres://...").into())
}

/// Restricts a query on a table with a `reference` column to open consultations.
fn open_filter(open_only: bool) -> &'static str {
    if open_only {
        " AND reference IN (SELECT reference FROM consultations WHERE open = 1)"
    } else {
        ""
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| anyhow!("stored time {v} ms is out of range").into())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(column)
        .with_context(|| format!("decoding column {column}"))
        .map_err(StoreError::from)
}

fn get_time(row: &AnyRow, column: &str) -> Result<DateTime<Utc>, StoreError> {
    from_ms(get(row, column)?)
}

fn get_bool(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    Ok(get::<i64>(row, column)? != 0)
}

fn consultation_from_row(row: &AnyRow) -> Result<StoredConsultation, StoreError> {
    Ok(StoredConsultation {
        reference: get(row, "reference")?,
        procedure: get(row, "procedure")?,
        title: get(row, "title")?,
        stage: get(row, "stage")?,
        open: get_bool(row, "open")?,
        state_json: get(row, "state_json")?,
        version: get(row, "version")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn audit_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: get(row, "id")?,
        reference: get(row, "reference")?,
        at: get_time(row, "at")?,
        actor: get(row, "actor")?,
        action: get(row, "action")?,
        detail_json: get(row, "detail_json")?,
    })
}

fn notice_from_row(row: &AnyRow) -> Result<Notice, StoreError> {
    let status: String = get(row, "status")?;
    let sent_at: Option<i64> = get(row, "sent_at")?;
    Ok(Notice {
        id: get(row, "id")?,
        status: NoticeStatus::parse(&status)
            .ok_or_else(|| anyhow!("unknown notice status `{status}`"))?,
        attempts: get(row, "attempts")?,
        next_attempt_at: get_time(row, "next_attempt_at")?,
        last_error: get(row, "last_error")?,
        sent_at: sent_at.map(from_ms).transpose()?,
        server_reply: get(row, "server_reply")?,
        notice: NewNotice {
            reference: get(row, "reference")?,
            kind: get(row, "kind")?,
            round: get(row, "round")?,
            country: get(row, "country")?,
            recipient: get(row, "recipient")?,
            recipient_name: get(row, "recipient_name")?,
            language: get(row, "language")?,
            subject: get(row, "subject")?,
            body_text: get(row, "body_text")?,
            body_html: get(row, "body_html")?,
            message_id: get(row, "message_id")?,
            payload_json: get(row, "payload_json")?,
            created_at: get_time(row, "created_at")?,
        },
    })
}

fn timer_from_row(row: &AnyRow) -> Result<Timer, StoreError> {
    Ok(Timer {
        id: get(row, "id")?,
        reference: get(row, "reference")?,
        kind: get(row, "kind")?,
        due_at: get_time(row, "due_at")?,
        event_json: get(row, "event_json")?,
    })
}

fn schedule_from_row(row: &AnyRow) -> Result<ScheduleRow, StoreError> {
    let last_due_at: Option<i64> = get(row, "last_due_at")?;
    let last_fired_at: Option<i64> = get(row, "last_fired_at")?;
    Ok(ScheduleRow {
        name: get(row, "name")?,
        spec: get(row, "spec")?,
        next_due_at: get_time(row, "next_due_at")?,
        last_due_at: last_due_at.map(from_ms).transpose()?,
        last_fired_at: last_fired_at.map(from_ms).transpose()?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn focal_point_from_row(row: &AnyRow) -> Result<FocalPointRow, StoreError> {
    Ok(FocalPointRow {
        id: get(row, "id")?,
        country: get(row, "country")?,
        name: get(row, "name")?,
        email: get(row, "email")?,
        language: get(row, "language")?,
        active: get_bool(row, "active")?,
    })
}

fn api_token_from_row(row: &AnyRow) -> Result<ApiTokenRow, StoreError> {
    let revoked_at: Option<i64> = get(row, "revoked_at")?;
    Ok(ApiTokenRow {
        id: get(row, "id")?,
        name: get(row, "name")?,
        role: get(row, "role")?,
        token_hash: get(row, "token_hash")?,
        created_by: get(row, "created_by")?,
        created_at: get_time(row, "created_at")?,
        revoked_at: revoked_at.map(from_ms).transpose()?,
    })
}

fn focal_point_detail(fp: &FocalPointRow) -> serde_json::Value {
    json!({
        "country": fp.country,
        "email": fp.email,
        "name": fp.name,
        "language": fp.language,
        "active": fp.active,
    })
}

async fn insert_audit(
    tx: &mut Transaction<'static, Any>,
    entry: &NewAudit,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (reference, at, actor, action, detail_json) VALUES ($1, $2, $3, $4, $5)")
        .bind(entry.reference.as_deref())
        .bind(ms(entry.at))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.detail_json)
        .execute(&mut **tx)
        .await
        .context("writing an audit entry")?;
    Ok(())
}

async fn insert_notice(
    tx: &mut Transaction<'static, Any>,
    n: &NewNotice,
) -> Result<(), StoreError> {
    let result = sqlx::query_scalar(
        "INSERT INTO outbox (reference, kind, round, country, recipient, recipient_name, language, subject, \
         message_id, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $10) RETURNING id",
    )
    .bind(n.reference.as_deref())
    .bind(&n.kind)
    .bind(n.round)
    .bind(n.country.as_deref())
    .bind(&n.recipient)
    .bind(&n.recipient_name)
    .bind(&n.language)
    .bind(&n.subject)
    .bind(&n.message_id)
    .bind(ms(n.created_at))
    .fetch_one(&mut **tx)
    .await;
    let id: i64 = match result {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Duplicate(format!("notice {}", n.message_id)))
        }
        Err(e) => return Err(anyhow::Error::new(e).context("writing a notice").into()),
    };
    sqlx::query(
        "INSERT INTO outbox_bodies (notice_id, body_text, body_html, payload_json) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(&n.body_text)
    .bind(n.body_html.as_deref())
    .bind(&n.payload_json)
    .execute(&mut **tx)
    .await
    .context("writing a notice's content")?;
    Ok(())
}

async fn insert_timer(tx: &mut Transaction<'static, Any>, t: &NewTimer) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO timers (reference, kind, due_at, event_json) VALUES ($1, $2, $3, $4)")
        .bind(&t.reference)
        .bind(&t.kind)
        .bind(ms(t.due_at))
        .bind(&t.event_json)
        .execute(&mut **tx)
        .await
        .context("writing a timer")?;
    Ok(())
}

const ATTACHMENT_COLUMNS: &str =
    "id, reference, version, filename, content_type, size, sha256, actor, created_at";

fn attachment_from_row(row: &AnyRow) -> Result<AttachmentRow, StoreError> {
    let version: i64 = get(row, "version")?;
    Ok(AttachmentRow {
        id: get(row, "id")?,
        reference: get(row, "reference")?,
        version: u32::try_from(version).context("stored attachment version out of range")?,
        filename: get(row, "filename")?,
        content_type: get(row, "content_type")?,
        size: get(row, "size")?,
        sha256: get(row, "sha256")?,
        actor: get(row, "actor")?,
        created_at: get_time(row, "created_at")?,
    })
}

async fn insert_attachment(
    tx: &mut Transaction<'static, Any>,
    a: &NewAttachment,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "INSERT INTO attachments (reference, version, filename, content_type, size, sha256, content, \
         actor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&a.reference)
    .bind(i64::from(a.version))
    .bind(&a.filename)
    .bind(&a.content_type)
    .bind(i64::try_from(a.content.len()).context("attachment size")?)
    .bind(&a.sha256)
    .bind(a.content.clone())
    .bind(&a.actor)
    .bind(ms(a.created_at))
    .execute(&mut **tx)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Duplicate(format!(
            "an attachment of {} with the content of `{}`",
            a.reference, a.filename
        ))),
        Err(e) => Err(anyhow::Error::new(e)
            .context(format!("storing the attachment `{}`", a.filename))
            .into()),
    }
}

const INBOUND_COLUMNS: &str =
    "id, message_id, sha256, raw, size, truncated, source, received_at, status, sender, subject, \
     kind, reference, round, country, focal_point_id, position, ambiguous, reason, text, trimmed, \
     error, processed_at, stage, conditional";

fn inbound_from_row(row: &AnyRow) -> Result<InboundMessage, StoreError> {
    let status: String = get(row, "status")?;
    let processed_at: Option<i64> = get(row, "processed_at")?;
    Ok(InboundMessage {
        id: get(row, "id")?,
        message_id: get(row, "message_id")?,
        sha256: get(row, "sha256")?,
        raw: get(row, "raw")?,
        size: get(row, "size")?,
        truncated: get_bool(row, "truncated")?,
        source: get(row, "source")?,
        received_at: get_time(row, "received_at")?,
        status: InboundStatus::parse(&status)
            .ok_or_else(|| anyhow!("unknown inbound status `{status}`"))?,
        reading: InboundReading {
            sender: get(row, "sender")?,
            subject: get(row, "subject")?,
            kind: get(row, "kind")?,
            reference: get(row, "reference")?,
            round: get(row, "round")?,
            country: get(row, "country")?,
            focal_point_id: get(row, "focal_point_id")?,
            position: get(row, "position")?,
            ambiguous: get_bool(row, "ambiguous")?,
            reason: get(row, "reason")?,
            text: get(row, "text")?,
            trimmed: get(row, "trimmed")?,
            stage: get(row, "stage")?,
            conditional: get_bool(row, "conditional")?,
        },
        error: get(row, "error")?,
        processed_at: processed_at.map(from_ms).transpose()?,
    })
}

/// Writes one inbound message's step (status, reading, bouncing marks, audit,
/// notices) inside `tx`. `false`, with nothing written, when the row's status is
/// not one of `only_from`.
async fn write_inbound_step(
    tx: &mut Transaction<'static, Any>,
    step: &InboundStep,
) -> Result<bool, StoreError> {
    let current: Option<String> =
        sqlx::query_scalar("SELECT status FROM inbound_messages WHERE id = $1")
            .bind(step.id)
            .fetch_optional(&mut **tx)
            .await
            .context("reading an inbound message's status")?;
    let Some(current) = current else {
        return Err(StoreError::NotFound(format!("inbound message {}", step.id)));
    };
    if !step.only_from.is_empty() && !step.only_from.iter().any(|s| s.as_str() == current) {
        return Ok(false);
    }
    let r = &step.reading;
    let updated = sqlx::query(
        "UPDATE inbound_messages SET status = $2, sender = $3, subject = $4, kind = $5, reference = $6, \
         round = $7, country = $8, focal_point_id = $9, position = $10, ambiguous = $11, reason = $12, \
         text = $13, trimmed = $14, error = $15, processed_at = $16, stage = $17, conditional = $19 \
         WHERE id = $1 AND status = $18",
    )
    .bind(step.id)
    .bind(step.status.as_str())
    .bind(r.sender.as_deref())
    .bind(r.subject.as_deref())
    .bind(r.kind.as_deref())
    .bind(r.reference.as_deref())
    .bind(r.round)
    .bind(r.country.as_deref())
    .bind(r.focal_point_id)
    .bind(r.position.as_deref())
    .bind(i64::from(r.ambiguous))
    .bind(r.reason.as_deref())
    .bind(r.text.as_deref())
    .bind(r.trimmed.as_deref())
    .bind(step.error.as_deref())
    .bind(ms(step.at))
    .bind(r.stage.as_deref())
    .bind(&current)
    .bind(i64::from(r.conditional))
    .execute(&mut **tx)
    .await
    .context("recording how an inbound message was read")?;
    // Another transaction changed the row between the read and this update (it
    // waited on the row lock, then found the status moved): nothing is written.
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    for id in &step.bouncing {
        sqlx::query("UPDATE focal_points SET bouncing = 1, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(ms(step.at))
            .execute(&mut **tx)
            .await
            .context("marking a focal point bouncing")?;
    }
    for entry in &step.audit {
        insert_audit(tx, entry).await?;
    }
    for notice in &step.notices {
        insert_notice(tx, notice).await?;
    }
    Ok(true)
}

/// Writes a procedure step (state, audit, notices, timers, attachments) inside `tx`:
/// what `commit_step` commits on its own and `commit_inbound_decision` with the
/// inbound messages it decided about.
async fn write_step(tx: &mut Transaction<'static, Any>, step: &Step) -> Result<(), StoreError> {
    let c = &step.consultation;
    let parsed =
        ConsultationRef::parse(&c.reference).context("the step's consultation reference")?;
    let conflict = || StoreError::Conflict {
        reference: c.reference.clone(),
        expected: step.expected_version,
    };

    if step.expected_version == 0 {
        let result = sqlx::query(
            "INSERT INTO consultations (reference, body, year, seq, procedure, title, stage, open, \
             state_json, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11)",
        )
        .bind(&c.reference)
        .bind(parsed.body())
        .bind(i64::from(parsed.year()))
        .bind(i64::from(parsed.seq()))
        .bind(&c.procedure)
        .bind(&c.title)
        .bind(&c.stage)
        .bind(i64::from(c.open))
        .bind(&c.state_json)
        .bind(ms(c.created_at))
        .bind(ms(c.updated_at))
        .execute(&mut **tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate(format!(
                    "consultation {}",
                    c.reference
                )))
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context("creating the consultation")
                    .into())
            }
        }
    } else {
        let updated = sqlx::query(
            "UPDATE consultations SET procedure = $1, title = $2, stage = $3, open = $4, state_json = $5, \
             version = version + 1, updated_at = $6 WHERE reference = $7 AND version = $8",
        )
        .bind(&c.procedure)
        .bind(&c.title)
        .bind(&c.stage)
        .bind(i64::from(c.open))
        .bind(&c.state_json)
        .bind(ms(c.updated_at))
        .bind(&c.reference)
        .bind(step.expected_version)
        .execute(&mut **tx)
        .await
        .context("updating the consultation")?;
        if updated.rows_affected() == 0 {
            return Err(conflict());
        }
    }

    // The fired timer goes first: `replace_timers` would delete it too and hide
    // that another replica had already fired it.
    if let Some(id) = step.fired_timer {
        let deleted = sqlx::query("DELETE FROM timers WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await
            .context("deleting the fired timer")?;
        if deleted.rows_affected() == 0 {
            return Err(conflict());
        }
    }

    for entry in &step.audit {
        insert_audit(tx, entry).await?;
    }
    for notice in &step.notices {
        insert_notice(tx, notice).await?;
    }
    if step.replace_timers {
        sqlx::query("DELETE FROM timers WHERE reference = $1")
            .bind(&c.reference)
            .execute(&mut **tx)
            .await
            .context("deleting the consultation's timers")?;
    }
    for timer in &step.timers {
        insert_timer(tx, timer).await?;
    }
    for attachment in &step.attachments {
        insert_attachment(tx, attachment).await?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("pinging the database")?;
        Ok(())
    }

    async fn max_reference_seq(&self, body: &str, year: i32) -> Result<u32, StoreError> {
        let max: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) FROM consultations WHERE body = $1 AND year = $2",
        )
        .bind(body.to_ascii_uppercase())
        .bind(i64::from(year))
        .fetch_one(&self.pool)
        .await
        .context("reading the highest reference number")?;
        Ok(u32::try_from(max).context("stored sequence number out of range")?)
    }

    async fn load_consultation(
        &self,
        reference: &str,
    ) -> Result<Option<StoredConsultation>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CONSULTATION_COLUMNS} FROM consultations WHERE reference = $1"
        ))
        .bind(reference)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("loading consultation {reference}"))?;
        row.as_ref().map(consultation_from_row).transpose()
    }

    async fn list_consultations(
        &self,
        open_only: bool,
    ) -> Result<Vec<StoredConsultation>, StoreError> {
        let filter = if open_only { " WHERE open = 1" } else { "" };
        let rows = sqlx::query(&format!(
            "SELECT {CONSULTATION_COLUMNS} FROM consultations{filter} ORDER BY body, year, seq"
        ))
        .fetch_all(&self.pool)
        .await
        .context("listing consultations")?;
        rows.iter().map(consultation_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(consultation = %step.consultation.reference, expected = step.expected_version))]
    async fn commit_step(&self, step: Step) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        write_step(&mut tx, &step).await?;
        tx.commit().await.context("committing the step")?;
        Ok(())
    }

    async fn attachments(&self, reference: &str) -> Result<Vec<AttachmentRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE reference = $1 ORDER BY id"
        ))
        .bind(reference)
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("listing the attachments of {reference}"))?;
        rows.iter().map(attachment_from_row).collect()
    }

    async fn attachment_content(
        &self,
        reference: &str,
        id: i64,
    ) -> Result<Option<(AttachmentRow, Vec<u8>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLUMNS}, content FROM attachments WHERE reference = $1 AND id = $2"
        ))
        .bind(reference)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("reading attachment {id} of {reference}"))?;
        row.map(|r| Ok((attachment_from_row(&r)?, get(&r, "content")?)))
            .transpose()
    }

    async fn attachment_by_sha256(
        &self,
        reference: &str,
        sha256: &str,
    ) -> Result<Option<(AttachmentRow, Vec<u8>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLUMNS}, content FROM attachments WHERE reference = $1 AND sha256 = $2"
        ))
        .bind(reference)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("reading the attachment {sha256} of {reference}"))?;
        row.map(|r| Ok((attachment_from_row(&r)?, get(&r, "content")?)))
            .transpose()
    }

    async fn append_audit(&self, entry: NewAudit) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_audit(&mut tx, &entry).await?;
        tx.commit().await.context("committing an audit entry")?;
        Ok(())
    }

    async fn audit_log(&self, reference: Option<&str>) -> Result<Vec<AuditEntry>, StoreError> {
        let columns = "id, reference, at, actor, action, detail_json";
        let query = match reference {
            Some(_) => format!("SELECT {columns} FROM audit_log WHERE reference = $1 ORDER BY id"),
            None => format!("SELECT {columns} FROM audit_log WHERE reference IS NULL ORDER BY id"),
        };
        let mut q = sqlx::query(&query);
        if let Some(r) = reference {
            q = q.bind(r);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .context("reading the audit log")?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn next_timer_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar("SELECT MIN(due_at) FROM timers")
            .fetch_one(&self.pool)
            .await
            .context("reading the next timer")?;
        due.map(from_ms).transpose()
    }

    async fn due_timers(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Timer>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TIMER_COLUMNS} FROM timers WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2"
        ))
        .bind(ms(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("reading due timers")?;
        rows.iter().map(timer_from_row).collect()
    }

    async fn timers_of(&self, reference: &str) -> Result<Vec<Timer>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TIMER_COLUMNS} FROM timers WHERE reference = $1 ORDER BY due_at, id"
        ))
        .bind(reference)
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("reading the timers of {reference}"))?;
        rows.iter().map(timer_from_row).collect()
    }

    async fn reschedule_timer(&self, id: i64, due_at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE timers SET due_at = $1 WHERE id = $2")
            .bind(ms(due_at))
            .bind(id)
            .execute(&self.pool)
            .await
            .with_context(|| format!("rescheduling timer {id}"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await
        .context("reading the schedules")?;
        rows.iter().map(schedule_from_row).collect()
    }

    async fn create_schedule(
        &self,
        name: &str,
        spec: &str,
        next_due_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO schedules (name, spec, next_due_at, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(spec)
        .bind(ms(next_due_at))
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .with_context(|| format!("creating schedule {name}"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn reset_schedule(
        &self,
        name: &str,
        old_spec: &str,
        spec: &str,
        next_due_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE schedules SET spec = $1, next_due_at = $2, updated_at = $3 \
             WHERE name = $4 AND spec = $5",
        )
        .bind(spec)
        .bind(ms(next_due_at))
        .bind(ms(at))
        .bind(name)
        .bind(old_spec)
        .execute(&self.pool)
        .await
        .with_context(|| format!("resetting schedule {name}"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_schedule(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM schedules WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .with_context(|| format!("removing schedule {name}"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn next_schedule_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar("SELECT MIN(next_due_at) FROM schedules")
            .fetch_one(&self.pool)
            .await
            .context("reading the next schedule")?;
        due.map(from_ms).transpose()
    }

    #[tracing::instrument(skip_all, fields(schedule = %claim.name, due = %claim.due))]
    async fn claim_schedule(&self, claim: ScheduleClaim) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        // The claim goes first: on PostgreSQL a concurrent claim of the same run
        // waits on the row lock, then finds next_due_at moved and updates nothing;
        // on SQLite BEGIN IMMEDIATE already serialised the two.
        let update = match claim.served {
            Some(served) => sqlx::query(
                "UPDATE schedules SET next_due_at = $1, last_due_at = $2, last_fired_at = $3, \
                 updated_at = $3 WHERE name = $4 AND next_due_at = $5",
            )
            .bind(ms(claim.next))
            .bind(ms(served))
            .bind(ms(claim.at)),
            None => sqlx::query(
                "UPDATE schedules SET next_due_at = $1, updated_at = $2 \
                 WHERE name = $3 AND next_due_at = $4",
            )
            .bind(ms(claim.next))
            .bind(ms(claim.at)),
        };
        let claimed = update
            .bind(&claim.name)
            .bind(ms(claim.due))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("claiming a run of schedule {}", claim.name))?;
        if claimed.rows_affected() == 0 {
            // Dropping the transaction rolls it back; nothing was written.
            return Ok(false);
        }
        for notice in &claim.notices {
            insert_notice(&mut tx, notice).await?;
        }
        for entry in &claim.audit {
            insert_audit(&mut tx, entry).await?;
        }
        tx.commit()
            .await
            .with_context(|| format!("committing a run of schedule {}", claim.name))?;
        Ok(true)
    }

    async fn claim_notices_leased(
        &self,
        worker: &str,
        due_by: DateTime<Utc>,
        lease_now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Notice>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(&self.claim_sql())
            .bind(worker)
            .bind(ms(lease_until))
            .bind(ms(due_by))
            .bind(limit)
            .bind(ms(lease_now))
            .fetch_all(&self.pool)
            .await
            .context("claiming notices")?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The claimed rows are this worker's until the lease ends: reading them with
        // their content in a second statement sees what the claim wrote.
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {NOTICE_COLUMNS} FROM {NOTICES} WHERE id IN ({}) ORDER BY id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for id in &ids {
            query = query.bind(*id);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .context("reading the claimed notices")?;
        rows.iter().map(notice_from_row).collect()
    }

    async fn mark_notice_sent(
        &self,
        id: i64,
        at: DateTime<Utc>,
        server_reply: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(MARK_SENT_SQL)
            .bind(id)
            .bind(ms(at))
            .bind(server_reply)
            .execute(&self.pool)
            .await
            .context("marking a notice sent")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("notice {id}")));
        }
        Ok(())
    }

    async fn mark_notices_sent(
        &self,
        sent: &[(i64, DateTime<Utc>, String)],
    ) -> Result<(), StoreError> {
        if let [(id, at, reply)] = sent {
            return self.mark_notice_sent(*id, *at, reply).await;
        }
        let mut tx = self.begin().await?;
        for (id, at, reply) in sent {
            let done = sqlx::query(MARK_SENT_SQL)
                .bind(*id)
                .bind(ms(*at))
                .bind(reply.as_str())
                .execute(&mut *tx)
                .await
                .context("marking notices sent")?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("notice {id}")));
            }
        }
        tx.commit().await.context("committing notices sent")?;
        Ok(())
    }

    async fn mark_notice_retry(
        &self,
        id: i64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $2, last_error = $3, \
             claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND status <> 'sent'",
        )
        .bind(id)
        .bind(ms(next_attempt_at))
        .bind(error)
        .execute(&self.pool)
        .await
        .context("scheduling a notice for retry")?;
        if done.rows_affected() == 0 {
            return self.already_sent_or_missing(id, "retry").await;
        }
        Ok(())
    }

    async fn renew_claims(
        &self,
        worker: &str,
        ids: &[i64],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut held = Vec::with_capacity(ids.len());
        for id in ids {
            let done = sqlx::query(
                "UPDATE outbox SET claimed_until = $3 \
                 WHERE id = $1 AND status = 'sending' AND claimed_by = $2",
            )
            .bind(*id)
            .bind(worker)
            .bind(ms(lease_until))
            .execute(&self.pool)
            .await
            .with_context(|| format!("renewing the claim on notice {id}"))?;
            if done.rows_affected() == 1 {
                held.push(*id);
            }
        }
        Ok(held)
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Option<Box<dyn super::Lease>>, StoreError> {
        super::lease::try_lease(self, name, holder, now, ttl).await
    }

    async fn lease_holder(&self, name: &str) -> Result<Option<super::LeaseRow>, StoreError> {
        super::lease::lease_holder(self, name).await
    }

    async fn release_notices(&self, worker: &str, ids: &[i64]) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query(
                "UPDATE outbox SET status = 'pending', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
                 claimed_by = NULL, claimed_until = NULL \
                 WHERE id = $1 AND status = 'sending' AND claimed_by = $2",
            )
            .bind(*id)
            .bind(worker)
            .execute(&self.pool)
            .await
            .with_context(|| format!("releasing notice {id}"))?;
        }
        Ok(())
    }

    async fn mark_notice_failed(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'failed', failed_at = $2, last_error = $3, \
             claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND status <> 'sent'",
        )
        .bind(id)
        .bind(ms(at))
        .bind(error)
        .execute(&self.pool)
        .await
        .context("marking a notice failed")?;
        if done.rows_affected() == 0 {
            return self.already_sent_or_missing(id, "failure").await;
        }
        Ok(())
    }

    async fn fail_notice(&self, failure: NoticeFailure) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE outbox SET status = 'failed', failed_at = $2, last_error = $3, \
             claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND status <> 'sent'",
        )
        .bind(failure.id)
        .bind(ms(failure.at))
        .bind(&failure.error)
        .execute(&mut *tx)
        .await
        .context("marking a notice failed")?;
        if done.rows_affected() == 0 {
            drop(tx);
            return self.already_sent_or_missing(failure.id, "failure").await;
        }
        if let Some(alert) = &failure.alert {
            let known: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE message_id = $1")
                    .bind(&alert.message_id)
                    .fetch_one(&mut *tx)
                    .await
                    .context("looking up an alert")?;
            if known == 0 {
                insert_notice(&mut tx, alert).await?;
            }
        }
        insert_audit(&mut tx, &failure.audit).await?;
        tx.commit().await.context("committing a notice's failure")?;
        Ok(())
    }

    async fn count_consultations_by_stage(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT stage, COUNT(*) AS n FROM consultations GROUP BY stage ORDER BY stage",
        )
        .fetch_all(&self.pool)
        .await
        .context("counting consultations by stage")?;
        rows.iter()
            .map(|row| Ok((get(row, "stage")?, get(row, "n")?)))
            .collect()
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        // One statement (one snapshot). The counts by status read only the
        // (status, ...) indexes, not the wide rows; `attempts` is read for the
        // pending rows alone.
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM outbox GROUP BY status \
             UNION ALL \
             SELECT 'retrying' AS status, COUNT(*) AS n FROM outbox \
             WHERE status = 'pending' AND attempts > 0",
        )
        .fetch_all(&self.pool)
        .await
        .context("counting the outbox")?;
        let mut counts = OutboxCounts::default();
        for row in &rows {
            let status: String = get(row, "status")?;
            let n: i64 = get(row, "n")?;
            if status == "retrying" {
                counts.retrying += n;
                continue;
            }
            match NoticeStatus::parse(&status) {
                Some(NoticeStatus::Pending) => counts.pending += n,
                Some(NoticeStatus::Sending) => counts.sending += n,
                Some(NoticeStatus::Sent) => counts.sent += n,
                Some(NoticeStatus::Failed) => counts.failed += n,
                None => return Err(anyhow!("unknown notice status `{status}`").into()),
            }
        }
        Ok(counts)
    }

    async fn failed_notices(&self, limit: i64) -> Result<Vec<Notice>, StoreError> {
        // By the (status, next_attempt_at) index: the cost follows the failures.
        let rows = sqlx::query(&format!(
            "SELECT {NOTICE_COLUMNS} FROM {NOTICES} WHERE status = 'failed' ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("reading failed notices")?;
        rows.iter().map(notice_from_row).collect()
    }

    async fn notices(&self, reference: Option<&str>) -> Result<Vec<Notice>, StoreError> {
        let query = match reference {
            Some(_) => {
                format!("SELECT {NOTICE_COLUMNS} FROM {NOTICES} WHERE reference = $1 ORDER BY id")
            }
            None => format!("SELECT {NOTICE_COLUMNS} FROM {NOTICES} ORDER BY id"),
        };
        let mut q = sqlx::query(&query);
        if let Some(r) = reference {
            q = q.bind(r);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .context("reading the outbox")?;
        rows.iter().map(notice_from_row).collect()
    }

    async fn notice_recipients(
        &self,
        kind: &str,
        open_only: bool,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT recipient FROM outbox WHERE kind = $1 AND reference IS NOT NULL{}",
            open_filter(open_only)
        ))
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .context("reading the recipients of the notices")?;
        Ok(rows)
    }

    async fn notice_tallies(
        &self,
        kind: &str,
        open_only: bool,
        unreachable: &[String],
    ) -> Result<Vec<NoticeTally>, StoreError> {
        // Placeholders $2.. name the unreachable recipients. By the (reference,
        // kind, round, country, status, recipient) index, in its order: one row per
        // (reference, round) listing its notices as `COUNTRY:FLAGS` (u: unreachable,
        // then s: sent or p: not sent), counted here. A row per (reference, round,
        // country) would be 11 times as many rows, and fetching rows is what costs.
        let bouncing = if unreachable.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = (0..unreachable.len())
                .map(|i| format!("${}", i + 2))
                .collect();
            format!(" OR recipient IN ({})", list.join(", "))
        };
        let concat = match self.backend {
            Backend::Sqlite => "group_concat",
            Backend::Postgres => "string_agg",
        };
        let sql = format!(
            "SELECT reference, round, {concat}(country || ':' || \
             CASE WHEN status = 'failed'{bouncing} THEN 'u' ELSE '' END || \
             CASE WHEN status = 'sent' THEN 's' ELSE 'p' END, ' ') AS notices \
             FROM outbox WHERE kind = $1 AND reference IS NOT NULL AND round IS NOT NULL \
             AND country IS NOT NULL{} GROUP BY reference, round",
            open_filter(open_only)
        );
        let mut q = sqlx::query(&sql).bind(kind);
        for r in unreachable {
            q = q.bind(r);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .context("counting the notices by consultation, round and country")?;
        let mut out = Vec::new();
        for row in &rows {
            let reference: String = get(row, "reference")?;
            let round: i64 = get(row, "round")?;
            let notices: String = get(row, "notices")?;
            let mut by_country: std::collections::BTreeMap<&str, NoticeTally> =
                std::collections::BTreeMap::new();
            for token in notices.split(' ') {
                let (country, flags) = token.rsplit_once(':').ok_or_else(|| {
                    anyhow!("unexpected notice tally `{token}` for {reference} round {round}")
                })?;
                let t = by_country.entry(country).or_insert_with(|| NoticeTally {
                    reference: reference.clone(),
                    round,
                    country: country.to_string(),
                    notices: 0,
                    unreachable: 0,
                    sent: 0,
                });
                t.notices += 1;
                match flags {
                    "s" => t.sent += 1,
                    "p" => {}
                    "us" => {
                        t.unreachable += 1;
                        t.sent += 1;
                    }
                    "up" => t.unreachable += 1,
                    _ => {
                        return Err(anyhow!(
                            "unexpected notice tally `{token}` for {reference} round {round}"
                        )
                        .into())
                    }
                }
            }
            out.extend(by_country.into_values());
        }
        Ok(out)
    }

    async fn inbound_tallies(&self, open_only: bool) -> Result<Vec<InboundTally>, StoreError> {
        // By the (reference, country, status, kind, received_at) index.
        let rows = sqlx::query(&format!(
            "SELECT reference, country, \
             MAX(CASE WHEN kind = 'auto_reply' THEN received_at END) AS last_auto, \
             MAX(CASE WHEN kind IS NULL OR kind <> 'auto_reply' THEN received_at END) AS last_other \
             FROM inbound_messages WHERE reference IS NOT NULL AND country IS NOT NULL \
             AND status <> 'discarded' AND (kind IS NULL OR kind <> 'bounce'){} \
             GROUP BY reference, country",
            open_filter(open_only)
        ))
        .fetch_all(&self.pool)
        .await
        .context("reading when the inbound messages about each consultation came")?;
        rows.iter()
            .map(|row| {
                let auto: Option<i64> = get(row, "last_auto")?;
                let other: Option<i64> = get(row, "last_other")?;
                Ok(InboundTally {
                    reference: get(row, "reference")?,
                    country: get(row, "country")?,
                    last_auto_reply_at: auto.map(from_ms).transpose()?,
                    last_other_at: other.map(from_ms).transpose()?,
                })
            })
            .collect()
    }

    async fn focal_points(
        &self,
        country: Option<&str>,
        active_only: bool,
    ) -> Result<Vec<FocalPointRow>, StoreError> {
        let mut filters = Vec::new();
        if country.is_some() {
            filters.push("country = $1");
        }
        if active_only {
            filters.push("active = 1");
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filters.join(" AND "))
        };
        let query = format!("SELECT {FOCAL_POINT_COLUMNS} FROM focal_points{filter}");
        let mut q = sqlx::query(&query);
        if let Some(c) = country {
            q = q.bind(c);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .context("reading focal points")?;
        let mut points = rows
            .iter()
            .map(focal_point_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted here rather than in SQL: PostgreSQL's collation would order
        // addresses differently from SQLite's byte order.
        points.sort_by(|a, b| (&a.country, &a.email).cmp(&(&b.country, &b.email)));
        Ok(points)
    }

    async fn add_focal_point(
        &self,
        fp: NewFocalPoint,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<FocalPointRow, StoreError> {
        let mut tx = self.begin().await?;
        let result = sqlx::query(&format!(
            "INSERT INTO focal_points (country, name, email, language, active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {FOCAL_POINT_COLUMNS}"
        ))
        .bind(&fp.country)
        .bind(&fp.name)
        .bind(&fp.email)
        .bind(&fp.language)
        .bind(i64::from(fp.active))
        .bind(ms(at))
        .fetch_one(&mut *tx)
        .await;
        let row = match result {
            Ok(row) => focal_point_from_row(&row)?,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate(format!(
                    "focal point {} for {}",
                    fp.email, fp.country
                )))
            }
            Err(e) => return Err(anyhow::Error::new(e).context("adding a focal point").into()),
        };
        Self::focal_point_audit(
            &mut tx,
            "focal_point.added",
            actor,
            at,
            focal_point_detail(&row),
        )
        .await?;
        tx.commit().await.context("committing a new focal point")?;
        Ok(row)
    }

    async fn upsert_focal_point(
        &self,
        fp: NewFocalPoint,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ImportOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let existing = sqlx::query(&format!(
            "SELECT {FOCAL_POINT_COLUMNS} FROM focal_points WHERE country = $1 AND email = $2"
        ))
        .bind(&fp.country)
        .bind(&fp.email)
        .fetch_optional(&mut *tx)
        .await
        .context("looking up a focal point")?;
        let outcome = match existing.as_ref().map(focal_point_from_row).transpose()? {
            None => {
                let row = sqlx::query(&format!(
                    "INSERT INTO focal_points (country, name, email, language, active, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {FOCAL_POINT_COLUMNS}"
                ))
                .bind(&fp.country)
                .bind(&fp.name)
                .bind(&fp.email)
                .bind(&fp.language)
                .bind(i64::from(fp.active))
                .bind(ms(at))
                .fetch_one(&mut *tx)
                .await
                .context("adding a focal point")?;
                let row = focal_point_from_row(&row)?;
                Self::focal_point_audit(
                    &mut tx,
                    "focal_point.added",
                    actor,
                    at,
                    focal_point_detail(&row),
                )
                .await?;
                ImportOutcome::Added
            }
            Some(old)
                if old.name == fp.name
                    && old.language == fp.language
                    && old.active == fp.active =>
            {
                ImportOutcome::Unchanged
            }
            Some(old) => {
                sqlx::query("UPDATE focal_points SET name = $1, language = $2, active = $3, updated_at = $4 WHERE id = $5")
                    .bind(&fp.name)
                    .bind(&fp.language)
                    .bind(i64::from(fp.active))
                    .bind(ms(at))
                    .bind(old.id)
                    .execute(&mut *tx)
                    .await
                    .context("updating a focal point")?;
                let new = FocalPointRow {
                    id: old.id,
                    country: fp.country.clone(),
                    name: fp.name.clone(),
                    email: fp.email.clone(),
                    language: fp.language.clone(),
                    active: fp.active,
                };
                let mut detail = focal_point_detail(&new);
                detail["previous"] = focal_point_detail(&old);
                Self::focal_point_audit(&mut tx, "focal_point.updated", actor, at, detail).await?;
                ImportOutcome::Updated
            }
        };
        tx.commit()
            .await
            .context("committing a focal point import")?;
        Ok(outcome)
    }

    async fn deactivate_focal_point(
        &self,
        email: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<FocalPointRow, StoreError> {
        let mut tx = self.begin().await?;
        let points =
            Self::update_focal_points_by_email(&mut tx, "active = 0", email, at, "deactivating")
                .await?;
        for p in &points {
            Self::focal_point_audit(
                &mut tx,
                "focal_point.deactivated",
                actor,
                at,
                focal_point_detail(p),
            )
            .await?;
        }
        tx.commit()
            .await
            .context("committing a focal point removal")?;
        Ok(points[0].clone())
    }

    async fn clear_bouncing(
        &self,
        email: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<BouncingCleared, StoreError> {
        let mut tx = self.begin().await?;
        let marked: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM focal_points WHERE email = $1 AND bouncing = 1")
                .bind(email)
                .fetch_all(&mut *tx)
                .await
                .context("reading a focal point's bouncing mark")?;
        let points = Self::update_focal_points_by_email(
            &mut tx,
            "bouncing = 0",
            email,
            at,
            "clearing the bouncing mark of",
        )
        .await?;
        for p in &points {
            let mut detail = focal_point_detail(p);
            detail["was_bouncing"] = json!(marked.contains(&p.id));
            Self::focal_point_audit(&mut tx, "focal_point.bouncing_cleared", actor, at, detail)
                .await?;
        }
        tx.commit()
            .await
            .context("committing a cleared bouncing mark")?;
        Ok(BouncingCleared {
            focal_point: points[0].clone(),
            was_bouncing: !marked.is_empty(),
        })
    }

    async fn presidency_overrides(&self) -> Result<Vec<(i32, String)>, StoreError> {
        let rows = sqlx::query("SELECT year, country FROM presidency ORDER BY year")
            .fetch_all(&self.pool)
            .await
            .context("reading presidency overrides")?;
        rows.iter()
            .map(|row| {
                let year: i64 = get(row, "year")?;
                let year = i32::try_from(year).context("stored presidency year out of range")?;
                Ok((year, get(row, "country")?))
            })
            .collect()
    }

    async fn set_presidency(
        &self,
        year: i32,
        country: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let previous: Option<String> =
            sqlx::query_scalar("SELECT country FROM presidency WHERE year = $1")
                .bind(i64::from(year))
                .fetch_optional(&mut *tx)
                .await
                .context("reading the presidency override")?;
        sqlx::query(
            "INSERT INTO presidency (year, country, set_by, set_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (year) DO UPDATE SET country = excluded.country, set_by = excluded.set_by, \
             set_at = excluded.set_at",
        )
        .bind(i64::from(year))
        .bind(country)
        .bind(actor)
        .bind(ms(at))
        .execute(&mut *tx)
        .await
        .context("setting the presidency")?;
        insert_audit(
            &mut tx,
            &NewAudit {
                reference: None,
                at,
                actor: actor.to_string(),
                action: "presidency.set".to_string(),
                detail_json: json!({ "year": year, "country": country, "previous": previous })
                    .to_string(),
            },
        )
        .await?;
        tx.commit().await.context("committing the presidency")?;
        Ok(())
    }

    // HTTP API: readiness, outbox health and bearer tokens.

    async fn schema_ready(&self) -> Result<bool, StoreError> {
        self.migrations_applied().await
    }

    async fn outbox_health(&self) -> Result<OutboxHealth, StoreError> {
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT MIN(created_at) FROM outbox WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await
                .context("reading the oldest pending notice")?;
        let last_sent: Option<i64> =
            sqlx::query_scalar("SELECT MAX(sent_at) FROM outbox WHERE status = 'sent'")
                .fetch_one(&self.pool)
                .await
                .context("reading the last sent notice")?;
        // By the partial index on the rows that have an error.
        let last_error = sqlx::query(
            "SELECT last_error, failed_at FROM outbox WHERE last_error IS NOT NULL \
             ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .context("reading the last delivery error")?;
        let (last_error, last_error_at) = match last_error {
            Some(row) => {
                let at: Option<i64> = get(&row, "failed_at")?;
                (
                    Some(get::<String>(&row, "last_error")?),
                    at.map(from_ms).transpose()?,
                )
            }
            None => (None, None),
        };
        Ok(OutboxHealth {
            oldest_pending_at: oldest.map(from_ms).transpose()?,
            last_sent_at: last_sent.map(from_ms).transpose()?,
            last_error,
            last_error_at,
        })
    }

    async fn create_api_token(
        &self,
        token: NewApiToken,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ApiTokenRow, StoreError> {
        let mut tx = self.begin().await?;
        let result = sqlx::query(&format!(
            "INSERT INTO api_tokens (name, role, token_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {API_TOKEN_COLUMNS}"
        ))
        .bind(&token.name)
        .bind(&token.role)
        .bind(&token.token_hash)
        .bind(actor)
        .bind(ms(at))
        .fetch_one(&mut *tx)
        .await;
        let row = match result {
            Ok(row) => api_token_from_row(&row)?,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate(format!("token `{}`", token.name)))
            }
            Err(e) => return Err(anyhow::Error::new(e).context("adding a token").into()),
        };
        insert_audit(
            &mut tx,
            &NewAudit {
                reference: None,
                at,
                actor: actor.to_string(),
                action: "token.created".to_string(),
                detail_json: json!({ "name": row.name, "role": row.role }).to_string(),
            },
        )
        .await?;
        tx.commit().await.context("committing a new token")?;
        Ok(row)
    }

    async fn api_tokens(&self, include_revoked: bool) -> Result<Vec<ApiTokenRow>, StoreError> {
        let filter = if include_revoked {
            ""
        } else {
            " WHERE revoked_at IS NULL"
        };
        let rows = sqlx::query(&format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens{filter} ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await
        .context("reading the tokens")?;
        rows.iter().map(api_token_from_row).collect()
    }

    async fn active_api_token(&self, token_hash: &str) -> Result<Option<ApiTokenRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {API_TOKEN_COLUMNS} FROM api_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .context("looking up a token")?;
        row.as_ref().map(api_token_from_row).transpose()
    }

    async fn revoke_api_token(
        &self,
        name: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ApiTokenRow, StoreError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL \
             RETURNING {API_TOKEN_COLUMNS}"
        ))
        .bind(name)
        .bind(ms(at))
        .fetch_optional(&mut *tx)
        .await
        .context("revoking a token")?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("active token `{name}`")));
        };
        let row = api_token_from_row(&row)?;
        // The dashboard sessions opened with the token end with it.
        let ended = sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1")
            .bind(&row.token_hash)
            .execute(&mut *tx)
            .await
            .context("ending a revoked token's dashboard sessions")?
            .rows_affected();
        insert_audit(
            &mut tx,
            &NewAudit {
                reference: None,
                at,
                actor: actor.to_string(),
                action: "token.revoked".to_string(),
                detail_json: json!({ "name": row.name, "role": row.role, "sessions_ended": ended })
                    .to_string(),
            },
        )
        .await?;
        tx.commit().await.context("committing a token revocation")?;
        Ok(row)
    }

    async fn insert_inbound(
        &self,
        m: NewInboundMessage,
    ) -> Result<(InboundMessage, bool), StoreError> {
        let mut tx = self.begin().await?;
        let mut key = m.message_id.clone();
        let (row, inserted) = loop {
            let inserted = sqlx::query(
                "INSERT INTO inbound_messages (message_id, sha256, raw, size, truncated, source, received_at, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'stored') ON CONFLICT (message_id) DO NOTHING",
            )
            .bind(&key)
            .bind(&m.sha256)
            .bind(&m.raw)
            .bind(m.size)
            .bind(i64::from(m.truncated))
            .bind(m.source.as_str())
            .bind(ms(m.received_at))
            .execute(&mut *tx)
            .await
            .context("storing an inbound message")?;
            let row = sqlx::query(&format!(
                "SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE message_id = $1"
            ))
            .bind(&key)
            .fetch_one(&mut *tx)
            .await
            .context("reading back an inbound message")?;
            let row = inbound_from_row(&row)?;
            let content_key = format!("sha256:{}", m.sha256);
            // Another message (other bytes) already holds this Message-ID: whoever
            // sent it first must not make this one vanish, so it is kept under its
            // content hash, as a message without a Message-ID is.
            if inserted.rows_affected() == 0 && row.sha256 != m.sha256 && key != content_key {
                key = content_key;
                continue;
            }
            break (row, inserted.rows_affected() == 1);
        };
        tx.commit().await.context("committing an inbound message")?;
        Ok((row, inserted))
    }

    async fn inbound_message(&self, id: i64) -> Result<Option<InboundMessage>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("reading inbound message {id}"))?;
        row.as_ref().map(inbound_from_row).transpose()
    }

    async fn inbound_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<InboundMessage>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE message_id = $1"
        ))
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("reading inbound message {message_id}"))?;
        row.as_ref().map(inbound_from_row).transpose()
    }

    async fn inbound_messages(
        &self,
        status: Option<InboundStatus>,
        limit: i64,
    ) -> Result<Vec<InboundMessage>, StoreError> {
        let rows = match status {
            Some(status) => {
                sqlx::query(&format!(
                    "SELECT {INBOUND_COLUMNS} FROM inbound_messages WHERE status = $1 ORDER BY id DESC LIMIT $2"
                ))
                .bind(status.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {INBOUND_COLUMNS} FROM inbound_messages ORDER BY id DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
        }
        .context("listing inbound messages")?;
        rows.iter().map(inbound_from_row).collect()
    }

    async fn inbound_kind_counts(
        &self,
    ) -> Result<Vec<(Option<String>, InboundStatus, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, status, COUNT(*) AS n FROM inbound_messages GROUP BY kind, status \
             ORDER BY kind, status",
        )
        .fetch_all(&self.pool)
        .await
        .context("counting inbound messages by kind")?;
        rows.iter()
            .map(|row| {
                let status: String = get(row, "status")?;
                let status = InboundStatus::parse(&status)
                    .ok_or_else(|| anyhow!("unknown inbound status `{status}`"))?;
                Ok((get(row, "kind")?, status, get(row, "n")?))
            })
            .collect()
    }

    async fn inbound_about(
        &self,
        reference: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<InboundBrief>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, received_at, status, kind, reference, country FROM inbound_messages \
             WHERE reference = $1 AND received_at >= $2 ORDER BY received_at, id",
        )
        .bind(reference)
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("reading the inbound messages about {reference}"))?;
        rows.iter()
            .map(|row| {
                let status: String = get(row, "status")?;
                Ok(InboundBrief {
                    id: get(row, "id")?,
                    received_at: get_time(row, "received_at")?,
                    status: InboundStatus::parse(&status)
                        .ok_or_else(|| anyhow!("unknown inbound status `{status}`"))?,
                    kind: get(row, "kind")?,
                    reference: get(row, "reference")?,
                    country: get(row, "country")?,
                })
            })
            .collect()
    }

    async fn inbound_counts(&self) -> Result<InboundCounts, StoreError> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM inbound_messages GROUP BY status")
                .fetch_all(&self.pool)
                .await
                .context("counting inbound messages")?;
        let mut counts = InboundCounts::default();
        for row in &rows {
            let status: String = get(row, "status")?;
            let n: i64 = get(row, "n")?;
            match InboundStatus::parse(&status) {
                Some(InboundStatus::Stored) => counts.stored += n,
                Some(InboundStatus::Processed) => counts.processed += n,
                Some(InboundStatus::Quarantined) => counts.quarantined += n,
                Some(InboundStatus::Failed) => counts.failed += n,
                Some(InboundStatus::Discarded) => counts.discarded += n,
                Some(InboundStatus::AwaitingConfirmation) => counts.awaiting_confirmation += n,
                None => return Err(anyhow!("unknown inbound status `{status}`").into()),
            }
        }
        Ok(counts)
    }

    #[tracing::instrument(skip_all, fields(inbound = step.id, status = step.status.as_str()))]
    async fn commit_inbound(&self, step: InboundStep) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        if !write_inbound_step(&mut tx, &step).await? {
            return Ok(false);
        }
        tx.commit()
            .await
            .context("committing an inbound message's processing")?;
        Ok(true)
    }

    async fn notice_by_message_id(&self, message_id: &str) -> Result<Option<Notice>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {NOTICE_COLUMNS} FROM {NOTICES} WHERE message_id = $1"
        ))
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .context("looking up a notice by Message-ID")?;
        row.as_ref().map(notice_from_row).transpose()
    }

    async fn notices_to_since(
        &self,
        recipient: &str,
        kind: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND kind = $2 AND created_at >= $3",
        )
        .bind(recipient)
        .bind(kind)
        .bind(ms(since))
        .fetch_one(&self.pool)
        .await
        .context("counting recent notices to an address")?;
        Ok(n)
    }

    async fn bouncing_focal_points(&self) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM focal_points WHERE bouncing = 1 ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .context("reading bouncing focal points")?;
        Ok(ids)
    }

    async fn imap_position(&self, mailbox: &str) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sqlx::query("SELECT uid_validity, last_uid FROM imap_state WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_optional(&self.pool)
            .await
            .context("reading the IMAP position")?;
        row.map(|r| Ok((get(&r, "uid_validity")?, get(&r, "last_uid")?)))
            .transpose()
    }

    async fn set_imap_position(
        &self,
        mailbox: &str,
        uid_validity: i64,
        last_uid: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO imap_state (mailbox, uid_validity, last_uid, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (mailbox) DO UPDATE SET uid_validity = excluded.uid_validity, \
             last_uid = excluded.last_uid, updated_at = excluded.updated_at",
        )
        .bind(mailbox)
        .bind(uid_validity)
        .bind(last_uid)
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .context("recording the IMAP position")?;
        Ok(())
    }

    // Trust (issue 11): one transaction per decision about inbound mail.

    #[tracing::instrument(skip_all, fields(messages = commit.messages.len(), step = commit.step.is_some()))]
    async fn commit_inbound_decision(&self, commit: InboundCommit) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        // Messages first: a message another process already moved makes the whole
        // decision void before the consultation is touched. Dropping `tx` on any
        // early return rolls back what was written.
        for message in &commit.messages {
            if !write_inbound_step(&mut tx, message).await? {
                return Ok(false);
            }
        }
        if let Some(step) = &commit.step {
            write_step(&mut tx, step).await?;
        }
        tx.commit()
            .await
            .context("committing a decision about inbound mail")?;
        Ok(true)
    }

    async fn inbound_awaiting(
        &self,
        reference: &str,
        country: &str,
    ) -> Result<Vec<InboundMessage>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INBOUND_COLUMNS} FROM inbound_messages \
             WHERE reference = $1 AND country = $2 AND status = $3 ORDER BY received_at, id"
        ))
        .bind(reference)
        .bind(country)
        .bind(InboundStatus::AwaitingConfirmation.as_str())
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("reading the messages from {country} held about {reference}"))?;
        rows.iter().map(inbound_from_row).collect()
    }

    async fn notice_by_id(&self, id: i64) -> Result<Option<Notice>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {NOTICE_COLUMNS} FROM {NOTICES} WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("looking up a notice by id")?;
        row.as_ref().map(notice_from_row).transpose()
    }

    // Dashboard sessions (migration 0010): only the SHA-256 of a session id is stored.

    async fn create_session(&self, session: NewSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO dashboard_sessions (id_hash, token_hash, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $3)",
        )
        .bind(&session.id_hash)
        .bind(&session.token_hash)
        .bind(ms(session.created_at))
        .execute(&self.pool)
        .await
        .context("storing a dashboard session")?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, token_hash, created_at, last_seen_at FROM dashboard_sessions \
             WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await
        .context("reading a dashboard session")?;
        row.map(|r| {
            Ok(SessionRow {
                id_hash: get(&r, "id_hash")?,
                token_hash: get(&r, "token_hash")?,
                created_at: from_ms(get(&r, "created_at")?)?,
                last_seen_at: from_ms(get(&r, "last_seen_at")?)?,
            })
        })
        .transpose()
    }

    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE dashboard_sessions SET last_seen_at = $2 \
             WHERE id_hash = $1 AND last_seen_at < $2",
        )
        .bind(id_hash)
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .context("recording a dashboard session's activity")?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM dashboard_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .context("ending a dashboard session")?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expired_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM dashboard_sessions WHERE last_seen_at < $1 OR created_at < $2",
        )
        .bind(ms(idle_before))
        .bind(ms(created_before))
        .execute(&self.pool)
        .await
        .context("deleting expired dashboard sessions")?;
        Ok(done.rows_affected())
    }
}
