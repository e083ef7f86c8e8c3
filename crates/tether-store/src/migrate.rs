//! The one migration runner: versioned SQL scripts applied in order, once each, inside the
//! transaction a backend opened, recorded in `schema_migrations`. A backend gives its scripts
//! ([`Migration`]) and a tiny connection trait ([`SchemaConn`], [`MigrationTx`]); the rules
//! (which scripts run, a newer schema refused, the read-only check) live here.

use crate::{check_read_only_schema, StoreError};

/// One schema step of a backend: SQL applied once, in version order.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Its version: 1, 2, 3 ... with no gap.
    pub version: i64,
    /// A short name (`init`, `threads`), for logs.
    pub name: &'static str,
    /// The script (several statements).
    pub sql: &'static str,
}

/// A connection (or transaction) that can tell the schema version it finds.
#[allow(async_fn_in_trait)] // generic use only: the caller's concrete future keeps its `Send`
pub trait SchemaConn {
    /// The highest version recorded in `schema_migrations`; `None` when there is no such
    /// table (no Tether tables at all), `Some(0)` when it is empty.
    async fn schema_version(&mut self) -> Result<Option<i64>, StoreError>;
}

/// The transaction migrations run in (the backend begins and commits it, and takes whatever
/// lock keeps two processes from migrating at once).
#[allow(async_fn_in_trait)] // generic use only: the caller's concrete future keeps its `Send`
pub trait MigrationTx: SchemaConn {
    /// Create `schema_migrations (version, applied_at)` if it does not exist.
    async fn create_version_table(&mut self) -> Result<(), StoreError>;

    /// Run `migration.sql` and record `migration.version` as applied at `now_ms`.
    async fn apply(&mut self, migration: &Migration, now_ms: u64) -> Result<(), StoreError>;
}

/// The schema version `migrations` create (the last one's).
pub fn latest_version(migrations: &[Migration]) -> i64 {
    migrations.last().map_or(0, |m| m.version)
}

/// Bring the schema up to [`latest_version`] inside `tx`; returns how many migrations were
/// applied (0 when it was up to date). A schema newer than `migrations` is refused with
/// [`StoreError::Config`] (nothing applied).
pub async fn run_migrations<T: MigrationTx>(
    tx: &mut T,
    migrations: &[Migration],
    now_ms: u64,
) -> Result<usize, StoreError> {
    tx.create_version_table().await?;
    let current = tx.schema_version().await?.unwrap_or(0);
    let latest = latest_version(migrations);
    if current > latest {
        return Err(StoreError::config(format!(
            "the database schema is at version {current}, newer than the version {latest} this \
             build of Tether knows; run a newer Tether against it (or use another database)"
        )));
    }
    let mut applied = 0;
    for m in migrations.iter().filter(|m| m.version > current) {
        tx.apply(m, now_ms).await?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied schema migration"
        );
        applied += 1;
    }
    Ok(applied)
}

/// Check, without writing anything, that the schema `conn` sees is exactly the latest of
/// `migrations` (for read-only opens, which must neither create nor migrate tables); `what`
/// names the database or schema in the message.
pub async fn check_schema<C: SchemaConn>(
    conn: &mut C,
    migrations: &[Migration],
    what: &str,
) -> Result<(), StoreError> {
    let current = conn.schema_version().await?;
    check_read_only_schema(current, latest_version(migrations), what)
}

/// Panics unless the versions of `migrations` are 1, 2, 3 ... in order (for each backend's
/// unit tests).
pub fn assert_ordered(migrations: &[Migration]) {
    for (i, m) in migrations.iter().enumerate() {
        assert_eq!(
            m.version,
            i as i64 + 1,
            "migration {} is out of order",
            m.name
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schema in memory: the version table is a list of applied versions.
    #[derive(Default)]
    struct Memory {
        table: Option<Vec<i64>>,
        scripts: Vec<&'static str>,
    }

    impl SchemaConn for Memory {
        async fn schema_version(&mut self) -> Result<Option<i64>, StoreError> {
            Ok(self
                .table
                .as_ref()
                .map(|t| t.iter().copied().max().unwrap_or(0)))
        }
    }

    impl MigrationTx for Memory {
        async fn create_version_table(&mut self) -> Result<(), StoreError> {
            self.table.get_or_insert_with(Vec::new);
            Ok(())
        }

        async fn apply(&mut self, m: &Migration, _now_ms: u64) -> Result<(), StoreError> {
            self.scripts.push(m.sql);
            self.table.get_or_insert_with(Vec::new).push(m.version);
            Ok(())
        }
    }

    const TWO: &[Migration] = &[
        Migration {
            version: 1,
            name: "a",
            sql: "A",
        },
        Migration {
            version: 2,
            name: "b",
            sql: "B",
        },
    ];

    #[test]
    fn applies_each_script_once_in_order_and_refuses_newer_schemas() {
        let mut db = Memory::default();
        let run = |db: &mut Memory, list| futures::executor::block_on(run_migrations(db, list, 1));
        assert_eq!(run(&mut db, &TWO[..1]), Ok(1));
        assert_eq!(run(&mut db, TWO), Ok(1), "only the new one");
        assert_eq!(run(&mut db, TWO), Ok(0));
        assert_eq!(db.scripts, ["A", "B"]);
        match run(&mut db, &TWO[..1]) {
            Err(StoreError::Config(msg)) => assert!(msg.contains("newer"), "{msg}"),
            other => panic!("expected a Config error, got {other:?}"),
        }
        assert_ordered(TWO);
    }

    #[test]
    fn the_read_only_check_wants_exactly_the_latest_version() {
        let check = |db: &mut Memory| futures::executor::block_on(check_schema(db, TWO, "db"));
        let mut db = Memory::default();
        assert!(matches!(check(&mut db), Err(StoreError::Config(m)) if m.contains("no Tether")));
        db.table = Some(vec![1]);
        assert!(matches!(check(&mut db), Err(StoreError::Config(m)) if m.contains("older")));
        db.table = Some(vec![1, 2]);
        assert_eq!(check(&mut db), Ok(()));
    }
}
