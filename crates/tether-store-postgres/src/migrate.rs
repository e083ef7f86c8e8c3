//! Versioned schema migrations, applied in one transaction when a store is opened. The
//! transaction holds a database-wide advisory lock, so processes starting at once take turns.

use tether_store::StoreError;

use crate::error::Ctx;

/// Key of the advisory lock migrations hold (`"tether"` in ASCII); any constant shared by all
/// Tether processes would do.
const MIGRATION_LOCK: i64 = 0x7465_7468_6572;

/// One schema step: SQL applied once, in version order, recorded in `schema_migrations`.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

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
];

/// The schema version this code creates and expects.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
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
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT NOT NULL PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )",
    )
    .await
    .ctx("create schema_migrations")?;
    let current = current_version(&*tx).await?;
    let latest = latest_version();
    if current > latest {
        return Err(StoreError::Config(format!(
            "the database schema is at version {current}, newer than the version {latest} this \
             build of Tether knows; run a newer Tether against it (or use another database)"
        )));
    }
    let now = crate::rows::bound(now_ms);
    let mut applied = 0;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let what = format!("apply migration {:04}_{}", m.version, m.name);
        tx.batch_execute(m.sql).await.ctx(&what)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[&m.version, &now],
        )
        .await
        .ctx(&what)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            schema = schema.unwrap_or("(default)"),
            "applied schema migration"
        );
        applied += 1;
    }
    tx.commit().await.ctx("commit migrations")?;
    Ok(applied)
}

/// The highest migration recorded in `schema_migrations` (0 when none), on a connection or
/// inside a transaction.
async fn current_version(client: &impl tokio_postgres::GenericClient) -> Result<i64, StoreError> {
    client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await
        .ctx("read schema version")?
        .try_get(0)
        .ctx("read schema version")
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
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .ctx("look for schema_migrations")?
        .try_get(0)
        .ctx("look for schema_migrations")?;
    if !exists {
        return tether_store::check_read_only_schema(None, latest_version(), &where_);
    }
    let current = current_version(&***client).await?;
    tether_store::check_read_only_schema(Some(current), latest_version(), &where_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                m.version,
                i as i64 + 1,
                "migration {} is out of order",
                m.name
            );
        }
    }
}
