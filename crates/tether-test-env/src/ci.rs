//! What counts as CI.

/// The variable CI systems set (GitHub Actions, GitLab, `.ci/run`, ...).
pub const CI_VAR: &str = "CI";

/// Whether this value of `CI` means "running under CI": anything but unset, empty, `0` or
/// `false` (any case, surrounding blanks ignored).
pub fn ci_value_means_ci(value: Option<&str>) -> bool {
    match value.map(str::trim) {
        None | Some("") | Some("0") => false,
        Some(v) => !v.eq_ignore_ascii_case("false"),
    }
}

/// Whether this process runs under CI (see [`ci_value_means_ci`]). A `CI` that is not
/// valid Unicode counts as set.
pub fn is_ci() -> bool {
    match std::env::var(CI_VAR) {
        Ok(v) => ci_value_means_ci(Some(&v)),
        Err(std::env::VarError::NotPresent) => false,
        Err(std::env::VarError::NotUnicode(_)) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::ci_value_means_ci;

    #[test]
    fn only_empty_zero_and_false_are_not_ci() {
        for off in [
            None,
            Some(""),
            Some("  "),
            Some("0"),
            Some("false"),
            Some("FALSE"),
        ] {
            assert!(!ci_value_means_ci(off), "{off:?} is not CI");
        }
        for on in [
            Some("true"),
            Some("1"),
            Some("yes"),
            Some("woodpecker"),
            Some("TRUE"),
        ] {
            assert!(ci_value_means_ci(on), "{on:?} is CI");
        }
    }
}
