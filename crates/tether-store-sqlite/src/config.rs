//! Parsing the location a store is opened with: `sqlite://path`, `sqlite:path` or a plain path.

use std::path::PathBuf;

use tether_store::StoreError;

/// The database file named by `url_or_path`.
///
/// `sqlite://data/tether.db` and `sqlite:data/tether.db` are relative paths,
/// `sqlite:///var/lib/tether.db` is absolute; anything without the `sqlite:` scheme is a plain
/// path. URLs may carry `?mode=rwc` (the default behaviour); other parameters and in-memory
/// databases are refused: a durable store needs a file that every connection shares.
pub(crate) fn database_path(url_or_path: &str) -> Result<PathBuf, StoreError> {
    let path = match url_or_path
        .strip_prefix("sqlite://")
        .or_else(|| url_or_path.strip_prefix("sqlite:"))
    {
        Some(rest) => {
            let (path, query) = match rest.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (rest, None),
            };
            for param in query.into_iter().flat_map(|q| q.split('&')) {
                if !param.is_empty() && param != "mode=rwc" {
                    return Err(StoreError::config(format!(
                        "unsupported parameter `{param}` in database URL `{url_or_path}` \
                         (only `mode=rwc` is accepted)"
                    )));
                }
            }
            path
        }
        None => url_or_path,
    };
    if path.is_empty() {
        return Err(StoreError::config(format!(
            "no database file in `{url_or_path}`; expected sqlite://path/to/file.db or a path"
        )));
    }
    if path == ":memory:" || path.starts_with("file:") {
        return Err(StoreError::config(format!(
            "`{url_or_path}` is not supported: give the path of a database file \
             (in-memory and URI databases are not durable or not shared by connections)"
        )));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> PathBuf {
        match database_path(s) {
            Ok(p) => p,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn is_config_err(s: &str) -> bool {
        matches!(database_path(s), Err(StoreError::Config(_)))
    }

    #[test]
    fn accepts_urls_and_paths() {
        assert_eq!(ok("sqlite://data/t.db"), PathBuf::from("data/t.db"));
        assert_eq!(ok("sqlite:///var/lib/t.db"), PathBuf::from("/var/lib/t.db"));
        assert_eq!(ok("sqlite:t.db"), PathBuf::from("t.db"));
        assert_eq!(ok("sqlite:/abs/t.db"), PathBuf::from("/abs/t.db"));
        assert_eq!(ok("/abs/t.db"), PathBuf::from("/abs/t.db"));
        assert_eq!(ok("rel/t.db"), PathBuf::from("rel/t.db"));
        assert_eq!(ok("sqlite://t.db?mode=rwc"), PathBuf::from("t.db"));
        assert_eq!(ok("odd?name.db"), PathBuf::from("odd?name.db"));
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        assert!(is_config_err(""));
        assert!(is_config_err("sqlite://"));
        assert!(is_config_err("sqlite:"));
        assert!(is_config_err("sqlite::memory:"));
        assert!(is_config_err(":memory:"));
        assert!(is_config_err("sqlite://t.db?mode=ro"));
        assert!(is_config_err("file:t.db?mode=memory"));
    }
}
