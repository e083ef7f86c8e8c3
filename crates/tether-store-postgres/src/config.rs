//! Options of a PostgreSQL store, parsing of its URL, schema names and the password-free form
//! of a URL for messages.

use std::str::FromStr;
use std::time::Duration;

pub use tether_store::redact_url;
use tether_store::StoreError;

/// Pool size when the options do not say.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// Longest schema name accepted (the notification channel `tether_runs_<schema>` must stay
/// within PostgreSQL's 63-byte identifier limit).
pub const MAX_SCHEMA_LEN: usize = 48;

/// How long opening a connection may take when the URL does not say (`connect_timeout`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `application_name` of Tether's connections, unless the URL names one.
const APPLICATION_NAME: &str = "tether";

/// Settings every connection starts with (overridable with `?options=` in the URL):
/// - `lock_timeout`: a write waiting this long for a row another session holds fails (its batch
///   is rolled back and reported `Unavailable`) instead of stalling the node's writer forever
///   behind a frozen peer;
/// - `idle_in_transaction_session_timeout`: the server ends a session of this store that sits
///   in an open transaction this long (its process froze), releasing the rows it locked.
const SESSION_DEFAULTS: &str = "-c lock_timeout=30000 -c idle_in_transaction_session_timeout=60000";

/// Notification channel of stores that use the connection's default schema.
const BASE_CHANNEL: &str = "tether_runs";

/// How a [`crate::PostgresStore`] is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Most connections the store keeps open for reads and commits (default 16, at least 1).
    /// The `LISTEN` connection of [`tether_store::Store::subscribe`] comes on top.
    pub pool_size: usize,
    /// Keep Tether's tables in this schema (created if missing; every connection gets it as
    /// its `search_path`). `None` uses the connection's default schema (usually `public`).
    /// Lower-case letters, digits and `_`, starting with a letter or `_`, at most
    /// [`MAX_SCHEMA_LEN`] characters.
    pub schema: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: DEFAULT_POOL_SIZE,
            schema: None,
        }
    }
}

/// Everything needed to connect, checked.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Connection settings, `search_path` included.
    pub(crate) pg: tokio_postgres::Config,
    /// The schema, if one was asked for.
    pub(crate) schema: Option<String>,
    /// The notification channel of this store's tables.
    pub(crate) channel: String,
    /// Pool size.
    pub(crate) pool_size: usize,
}

/// Parse `url` (`postgres://` or `postgresql://`) and check `options`.
pub(crate) fn settings(url: &str, options: &PostgresOptions) -> Result<Settings, StoreError> {
    let lower = url.get(..13).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
        return Err(StoreError::config(format!(
            "`{}` is not a PostgreSQL URL; expected postgres://user@host:port/database",
            redact_url(url)
        )));
    }
    let mut pg = tokio_postgres::Config::from_str(url).map_err(|e| {
        StoreError::config(format!(
            "cannot use database URL `{}`: {}",
            redact_url(url),
            crate::error::describe(&e)
        ))
    })?;
    if options.pool_size == 0 {
        return Err(StoreError::config(
            "the PostgreSQL pool size must be at least 1",
        ));
    }
    // Session settings: Tether's defaults first, then whatever the URL says (which wins), then
    // the schema asked for (which wins over the URL).
    let mut session = SESSION_DEFAULTS.to_owned();
    if let Some(given) = pg.get_options().filter(|o| !o.trim().is_empty()) {
        session.push(' ');
        session.push_str(given);
    }
    if let Some(schema) = &options.schema {
        check_schema(schema)?;
        session.push_str(" -c search_path=");
        session.push_str(schema);
    }
    pg.options(session);
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if pg.get_application_name().is_none() {
        pg.application_name(APPLICATION_NAME);
    }
    Ok(Settings {
        pg,
        channel: channel_name(options.schema.as_deref()),
        schema: options.schema.clone(),
        pool_size: options.pool_size,
    })
}

impl Settings {
    /// Every session of these settings refuses writes (`default_transaction_read_only`).
    pub(crate) fn read_only(&mut self) {
        let mut session = self.pg.get_options().unwrap_or_default().to_owned();
        session.push_str(" -c default_transaction_read_only=on");
        self.pg.options(session);
    }
}

/// Refuse schema names that would need quoting (or could not name a channel).
pub(crate) fn check_schema(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !rest_ok || schema.len() > MAX_SCHEMA_LEN || schema.starts_with("pg_") {
        return Err(StoreError::config(format!(
            "unusable schema name `{schema}`: use lower-case letters, digits and `_`, starting \
             with a letter or `_` (not `pg_`), at most {MAX_SCHEMA_LEN} characters"
        )));
    }
    Ok(())
}

/// The channel commits of a store in `schema` are announced on: stores in different schemas
/// of one database do not hear each other.
pub(crate) fn channel_name(schema: Option<&str>) -> String {
    match schema {
        Some(schema) => format!("{BASE_CHANNEL}_{schema}"),
        None => BASE_CHANNEL.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(schema: Option<&str>) -> PostgresOptions {
        PostgresOptions {
            pool_size: 4,
            schema: schema.map(str::to_owned),
        }
    }

    #[test]
    fn parses_urls_and_sets_search_path() -> Result<(), StoreError> {
        let s = settings("postgres://u@127.0.0.1:5432/db", &opts(None))?;
        assert_eq!(s.pg.get_user(), Some("u"));
        assert_eq!(s.pg.get_dbname(), Some("db"));
        assert_eq!(s.pg.get_options(), Some(SESSION_DEFAULTS));
        assert_eq!(s.channel, "tether_runs");
        assert_eq!(s.pg.get_application_name(), Some("tether"));

        let s = settings(
            "postgresql://u@h/db?options=-c%20statement_timeout%3D5000",
            &opts(Some("t_1")),
        )?;
        assert_eq!(
            s.pg.get_options(),
            Some(
                format!("{SESSION_DEFAULTS} -c statement_timeout=5000 -c search_path=t_1").as_str()
            )
        );
        assert_eq!(s.channel, "tether_runs_t_1");
        assert_eq!(s.schema.as_deref(), Some("t_1"));
        assert_eq!(s.pool_size, 4);
        Ok(())
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let config_err =
            |url: &str, o: PostgresOptions| matches!(settings(url, &o), Err(StoreError::Config(_)));
        assert!(config_err("mysql://h/db", opts(None)));
        assert!(config_err("sqlite://t.db", opts(None)));
        assert!(config_err("postgres://h/db?nonsense=1", opts(None)));
        assert!(config_err("postgres://h:notaport/db", opts(None)));
        assert!(config_err(
            "postgres://h/db",
            PostgresOptions {
                pool_size: 0,
                schema: None
            }
        ));
        for bad in [
            "",
            "Upper",
            "1abc",
            "a-b",
            "a b",
            "pg_x",
            "x\"y",
            &"a".repeat(49),
        ] {
            assert!(config_err("postgres://h/db", opts(Some(bad))), "{bad:?}");
        }
        assert!(!config_err("postgres://h/db", opts(Some(&"a".repeat(48)))));
    }

    #[test]
    fn url_errors_do_not_show_the_password() {
        match settings("postgres://u:hunter2@h:x/db", &opts(None)) {
            Err(StoreError::Config(msg)) => {
                assert!(!msg.contains("hunter2"), "{msg}");
                assert!(msg.contains("u:***@h:x/db"), "{msg}");
            }
            other => panic!("expected a Config error, got {other:?}"),
        }
    }
}
