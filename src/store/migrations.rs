//! The schema, one migration per change, written once per dialect.

/// One schema change, written once per dialect.
pub(super) struct Migration {
    pub(super) version: i64,
    pub(super) name: &'static str,
    pub(super) sqlite: &'static str,
    pub(super) postgres: &'static str,
}

pub(super) const MIGRATIONS: &[Migration] = &[
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
pub(super) const CREATE_SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY NOT NULL,
    name       TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// The key of the PostgreSQL advisory lock that serialises replicas migrating at once.
pub(super) const MIGRATION_LOCK_KEY: i64 = 0x7075_6562_6c61_0001;
