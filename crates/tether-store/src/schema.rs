//! The one rule for opening a database only to read it: its schema must be exactly the
//! version this code knows, since a read-only open may neither create nor migrate tables.

use crate::StoreError;

/// Check that a schema found at version `current` (`None`: no Tether tables at all) is the
/// version `latest` this code expects. `what` names the database or schema in the message.
///
/// ```
/// use tether_store::check_read_only_schema;
/// assert!(check_read_only_schema(Some(3), 3, "db").is_ok());
/// let e = check_read_only_schema(Some(2), 3, "db").unwrap_err();
/// assert!(e.to_string().contains("older"));
/// ```
pub fn check_read_only_schema(
    current: Option<i64>,
    latest: i64,
    what: &str,
) -> Result<(), StoreError> {
    match current {
        None => Err(StoreError::config(format!(
            "{what} holds no Tether tables (nothing was created: this open only reads); check \
             the database location and schema"
        ))),
        Some(current) if current < latest => Err(StoreError::config(format!(
            "{what} is at schema version {current}, older than the version {latest} this build \
             expects; start this build's server on it once to migrate it (nothing was written)"
        ))),
        Some(current) if current > latest => Err(StoreError::config(format!(
            "{what} is at schema version {current}, newer than the version {latest} this build \
             knows; use a newer build"
        ))),
        Some(_) => Ok(()),
    }
}
