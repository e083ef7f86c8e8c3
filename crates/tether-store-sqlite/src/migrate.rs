//! The SQLite side of the migration runner ([`tether_store::migrate`]): its scripts and its
//! connection, in one immediate transaction when a store is opened.

use futures::executor::block_on;
use rusqlite::{params, Connection, TransactionBehavior};
use tether_store::migrate::{self, Migration, MigrationTx, SchemaConn};
use tether_store::StoreError;

use crate::error::Ctx;

/// Every migration this code knows, in order. Never edit a released one: add the next.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "threads",
        sql: include_str!("../migrations/0002_threads.sql"),
    },
    Migration {
        version: 3,
        name: "unapplied_index",
        sql: include_str!("../migrations/0003_unapplied_index.sql"),
    },
    Migration {
        version: 4,
        name: "idempotency_digest",
        sql: include_str!("../migrations/0004_idempotency_digest.sql"),
    },
    Migration {
        version: 5,
        name: "retention",
        sql: include_str!("../migrations/0005_retention.sql"),
    },
    Migration {
        version: 6,
        name: "pending_payloads",
        sql: include_str!("../migrations/0006_pending_payloads.sql"),
    },
    Migration {
        version: 7,
        name: "signal_keys",
        sql: include_str!("../migrations/0007_signal_keys.sql"),
    },
    Migration {
        version: 8,
        name: "child_runs",
        sql: include_str!("../migrations/0008_child_runs.sql"),
    },
    Migration {
        version: 9,
        name: "hook_expiry",
        sql: include_str!("../migrations/0009_hook_expiry.sql"),
    },
    Migration {
        version: 10,
        name: "schedules",
        sql: include_str!("../migrations/0010_schedules.sql"),
    },
    Migration {
        version: 11,
        name: "queues",
        sql: include_str!("../migrations/0011_queues.sql"),
    },
    Migration {
        version: 12,
        name: "queue_index_predicate",
        sql: include_str!("../migrations/0012_queue_index_predicate.sql"),
    },
];

/// The schema version this code creates and expects.
pub(crate) fn latest_version() -> i64 {
    migrate::latest_version(MIGRATIONS)
}

/// Bring the schema up to [`latest_version`] in one immediate transaction; returns how many
/// migrations were applied (0 when the database was up to date). A database whose schema is
/// newer than this code is refused with [`StoreError::Config`].
pub(crate) fn migrate(conn: &mut Connection, now_ms: u64) -> Result<usize, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("begin migration transaction")?;
    let mut sql = Sql(&tx);
    // SQLite never pends: the runner's futures finish on their first poll.
    let applied = block_on(migrate::run_migrations(&mut sql, MIGRATIONS, now_ms))?;
    tx.commit().ctx("commit migrations")?;
    Ok(applied)
}

/// Check, without writing anything, that the database at `path` holds Tether's tables at
/// exactly [`latest_version`] (for read-only opens, which must not create or migrate).
pub(crate) fn check_version(conn: &Connection, path: &str) -> Result<(), StoreError> {
    block_on(migrate::check_schema(&mut Sql(conn), MIGRATIONS, path))
}

/// A connection (or a transaction: it derefs to one) as the runner sees it.
struct Sql<'c>(&'c Connection);

impl SchemaConn for Sql<'_> {
    async fn schema_version(&mut self) -> Result<Option<i64>, StoreError> {
        let exists: bool = self
            .0
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
                [],
                |row| row.get(0),
            )
            .ctx("look for schema_migrations")?;
        if !exists {
            return Ok(None);
        }
        self.0
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |row| row.get(0),
            )
            .map(Some)
            .ctx("read schema version")
    }
}

impl MigrationTx for Sql<'_> {
    async fn create_version_table(&mut self) -> Result<(), StoreError> {
        self.0
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version    INTEGER NOT NULL PRIMARY KEY,
                     applied_at INTEGER NOT NULL
                 )",
            )
            .ctx("create schema_migrations")
    }

    async fn apply(&mut self, m: &Migration, now_ms: u64) -> Result<(), StoreError> {
        let what = format!("apply migration {:04}_{}", m.version, m.name);
        self.0.execute_batch(m.sql).ctx(&what)?;
        self.0
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![m.version, now_ms],
            )
            .ctx(&what)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_check_writes_nothing_and_names_the_version() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory().ctx("open")?;
        match check_version(&conn, "x.db") {
            Err(StoreError::Config(msg)) => assert!(msg.contains("no Tether tables"), "{msg}"),
            other => panic!("expected a Config error, got {other:?}"),
        }
        migrate(&mut conn, 1)?;
        check_version(&conn, "x.db")?;
        conn.execute(
            "DELETE FROM schema_migrations WHERE version = ?1",
            [latest_version()],
        )
        .ctx("delete")?;
        match check_version(&conn, "x.db") {
            Err(StoreError::Config(msg)) => assert!(msg.contains("older"), "{msg}"),
            other => panic!("expected a Config error, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn versions_are_increasing_from_one() {
        migrate::assert_ordered(MIGRATIONS);
    }

    #[test]
    fn migrates_once_and_refuses_newer_schemas() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory().ctx("open")?;
        assert_eq!(migrate(&mut conn, 1)?, MIGRATIONS.len());
        assert_eq!(migrate(&mut conn, 2)?, 0, "a second run applies nothing");
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 3)",
            [latest_version() + 1],
        )
        .ctx("insert")?;
        match migrate(&mut conn, 4) {
            Err(StoreError::Config(msg)) => assert!(msg.contains("newer"), "{msg}"),
            other => panic!("expected a Config error, got {other:?}"),
        }
        Ok(())
    }
}
