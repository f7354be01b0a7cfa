//! Character rules for values that end up in shell commands, file paths and config files.
//!
//! Everything `infra` puts into a remote command or a config file passes one of these checks,
//! so a value can never break out of its quoting or its line.

/// Host and topology names: a lowercase letter, then lowercase letters, digits and `-`, ≤ 63.
pub fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some('a'..='z'))
        && text.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
        && !text.ends_with('-')
}

/// SQL identifiers (database and user names): ASCII letters, digits and `_`, ≤ 32, not only digits.
pub fn is_sql_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !text.chars().all(|c| c.is_ascii_digit())
}

/// A Debian package name (Debian policy 5.6.7).
pub fn is_package_name(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some('a'..='z' | '0'..='9'))
        && text.len() >= 2
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '+' | '-' | '.'))
}

/// An absolute remote path made only of safe characters, with no `.` or `..` component.
pub fn is_safe_absolute_path(text: &str) -> bool {
    text.starts_with('/')
        && text.len() > 1
        && text.len() <= 255
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
        && text
            .split('/')
            .skip(1)
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// A URL path: starts with `/`, safe characters only.
pub fn is_url_path(text: &str) -> bool {
    text.starts_with('/')
        && text.len() <= 255
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '~'))
        && !text.split('/').any(|part| part == "..")
}

/// A DNS name (or `localhost`), as used for `server_name` and certificates.
pub fn is_dns_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A network interface name as Linux allows it (≤ 15 bytes, no `/`, no white space).
pub fn is_interface_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 15
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A login or stats user name.
pub fn is_user_name(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some('a'..='z' | 'A'..='Z' | '_'))
        && text.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// An environment variable name.
pub fn is_env_name(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some('A'..='Z' | 'a'..='z' | '_'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A word of the app's start command: no shell or systemd specials (`$`, `%`, quotes, `;`...).
pub fn is_command_word(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '/' | '.' | '_' | '-' | '=' | ':' | ',' | '@' | '+')
        })
}

/// A plain environment value: printable, one line, no `"`, `\`, `$`, `%` or backtick, so it can
/// sit inside double quotes in a systemd environment file.
pub fn is_env_value(text: &str) -> bool {
    text.len() <= 4096
        && text
            .chars()
            .all(|c| !c.is_control() && !matches!(c, '"' | '\\' | '$' | '%' | '`'))
}

/// A secret's value: printable ASCII without white space, quotes, `\`, `#`, `$`, `%`, `:` or
/// backtick, so it is one token in every config format `infra` writes.
pub fn is_secret_value(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 256
        && text.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '#' | '$' | '%' | ':' | '`')
        })
}

/// A `ProxyJump` value: `[user@]host[:port]`, comma-separated, safe characters only.
pub fn is_jump(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('-')
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':' | ',' | '[' | ']')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_strings_are_rejected_everywhere() {
        for hostile in [
            "a;b", "$(id)", "a b", "a\nb", "`x`", "'q'", "\"q\"", "a|b", "../x",
        ] {
            assert!(!is_name(hostile), "{hostile}");
            assert!(!is_sql_identifier(hostile), "{hostile}");
            assert!(!is_package_name(hostile), "{hostile}");
            assert!(!is_safe_absolute_path(hostile), "{hostile}");
            assert!(!is_command_word(hostile) || hostile == "../x", "{hostile}");
            assert!(
                !is_interface_name(hostile) || hostile == "../x",
                "{hostile}"
            );
        }
    }

    #[test]
    fn ordinary_values_are_accepted() {
        assert!(is_name("web-1"));
        assert!(is_sql_identifier("scale_up"));
        assert!(is_package_name("python3-pymysql"));
        assert!(is_safe_absolute_path("/var/www/scale-up"));
        assert!(!is_safe_absolute_path("/var/../etc"));
        assert!(is_url_path("/api/"));
        assert!(is_dns_name("scale-up.test"));
        assert!(is_secret_value("Zx9-rT_4.q"));
        assert!(!is_secret_value("has space"));
    }
}
