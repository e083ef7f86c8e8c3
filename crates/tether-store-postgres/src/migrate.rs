//! The PostgreSQL side of the migration runner ([`tether_store::migrate`]): its scripts and
//! its connection, in one transaction when a store is opened. The transaction holds a
//! database-wide advisory lock, so processes starting at once take turns.

use tether_store::migrate::{self, Migration, MigrationTx, SchemaConn};
use tether_store::StoreError;
use tokio_postgres::GenericClient;

use crate::error::Ctx;

/// Key of the advisory lock migrations hold (`"tether"` in ASCII); any constant shared by all
/// Tether processes would do.
const MIGRATION_LOCK: i64 = 0x7465_7468_6572;

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
        name: "idempotency_digest",
        sql: include_str!("../migrations/0003_idempotency_digest.sql"),
    },
    Migration {
        version: 4,
        name: "retention",
        sql: include_str!("../migrations/0004_retention.sql"),
    },
    Migration {
        version: 5,
        name: "pending_payloads",
        sql: include_str!("../migrations/0005_pending_payloads.sql"),
    },
    Migration {
        version: 6,
        name: "signal_keys",
        sql: include_str!("../migrations/0006_signal_keys.sql"),
    },
    Migration {
        version: 7,
        name: "child_runs",
        sql: include_str!("../migrations/0007_child_runs.sql"),
    },
    Migration {
        version: 8,
        name: "hook_expiry",
        sql: include_str!("../migrations/0008_hook_expiry.sql"),
    },
    Migration {
        version: 9,
        name: "schedules",
        sql: include_str!("../migrations/0009_schedules.sql"),
    },
    Migration {
        version: 10,
        name: "queues",
        sql: include_str!("../migrations/0010_queues.sql"),
    },
    Migration {
        version: 11,
        name: "hot_run_updates",
        sql: include_str!("../migrations/0011_hot_run_updates.sql"),
    },
];

/// The schema version this code creates and expects.
pub(crate) fn latest_version() -> i64 {
    migrate::latest_version(MIGRATIONS)
}

/// Bring the schema up to [`latest_version`] in one transaction, creating `schema` first when
/// given (the connection's `search_path` must name it); returns how many migrations were
/// applied. A schema newer than this code is refused with [`StoreError::Config`].
pub(crate) async fn migrate(
    client: &mut deadpool_postgres::Client,
    schema: Option<&str>,
    now_ms: u64,
) -> Result<usize, StoreError> {
    let tx = client
        .transaction()
        .await
        .ctx("begin migration transaction")?;
    // `IF NOT EXISTS` notices ("already exists, skipping") are expected here: keep them quiet.
    // Another process may be migrating: wait for it however long it takes.
    tx.batch_execute("SET LOCAL client_min_messages TO warning; SET LOCAL lock_timeout TO 0")
        .await
        .ctx("begin migration transaction")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .ctx("take the migration lock")?;
    if let Some(schema) = schema {
        // The name was checked (lower-case letters, digits, `_`): no quoting needed.
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; SET LOCAL search_path TO {schema}"
        ))
        .await
        .ctx(&format!("create schema {schema}"))?;
    }
    let applied = migrate::run_migrations(&mut Sql(&*tx), MIGRATIONS, now_ms).await?;
    tx.commit().await.ctx("commit migrations")?;
    Ok(applied)
}

/// Check, without writing anything, that `schema` (or the default one) holds Tether's tables
/// at exactly [`latest_version`]: a read-only open must not run against tables it does not
/// understand, and must not create or migrate them.
pub(crate) async fn check_version(
    client: &deadpool_postgres::Client,
    schema: Option<&str>,
) -> Result<(), StoreError> {
    let where_ = schema.map_or_else(
        || "the default schema".to_owned(),
        |s| format!("schema `{s}`"),
    );
    migrate::check_schema(&mut Sql(&***client), MIGRATIONS, &where_).await
}

/// A connection or a transaction, as the runner sees it.
struct Sql<'c, C>(&'c C);

impl<C: GenericClient + Sync> SchemaConn for Sql<'_, C> {
    async fn schema_version(&mut self) -> Result<Option<i64>, StoreError> {
        let exists: bool = self
            .0
            .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
            .await
            .ctx("look for schema_migrations")?
            .try_get(0)
            .ctx("look for schema_migrations")?;
        if !exists {
            return Ok(None);
        }
        self.0
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
                &[],
            )
            .await
            .ctx("read schema version")?
            .try_get(0)
            .map(Some)
            .ctx("read schema version")
    }
}

impl<C: GenericClient + Sync> MigrationTx for Sql<'_, C> {
    async fn create_version_table(&mut self) -> Result<(), StoreError> {
        self.0
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version    BIGINT NOT NULL PRIMARY KEY,
                     applied_at BIGINT NOT NULL
                 )",
            )
            .await
            .ctx("create schema_migrations")
    }

    async fn apply(&mut self, m: &Migration, now_ms: u64) -> Result<(), StoreError> {
        let what = format!("apply migration {:04}_{}", m.version, m.name);
        self.0.batch_execute(m.sql).await.ctx(&what)?;
        let now = crate::rows::bound(now_ms);
        self.0
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[&m.version, &now],
            )
            .await
            .ctx(&what)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing_from_one() {
        migrate::assert_ordered(MIGRATIONS);
    }
}
