//! Database URLs in messages and logs, with their passwords hidden.

/// `url` with its password (if any) replaced by `***`, for messages and logs:
/// `postgres://u:secret@h/db` → `postgres://u:***@h/db`. Strings that are not URLs are
/// returned unchanged, except that a `password=` parameter is hidden too.
pub fn redact_url(url: &str) -> String {
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => {
            // The authority ends at the first `/`, `?` or `#`; credentials end at its last `@`.
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
                    None => url.to_owned(),
                },
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    // `?password=...` (or `password=...` in key-value form).
    let lower = out.to_ascii_lowercase();
    if let Some(start) = lower.find("password=") {
        let value_start = start + "password=".len();
        let value_end = out[value_start..]
            .find(['&', ' ', '#'])
            .map_or(out.len(), |i| value_start + i);
        out.replace_range(value_start..value_end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_url("postgresql://u:p@ss@h/db?x=1"),
            "postgresql://u:***@h/db?x=1"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=pw&x=1"),
            "postgres://h/db?user=u&password=***&x=1"
        );
        assert_eq!(
            redact_url("host=h password=pw user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(redact_url("sqlite://a/b.db"), "sqlite://a/b.db");
    }
}
