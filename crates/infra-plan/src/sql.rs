//! Quoting for MariaDB: every name and value `infra` puts in a SQL statement goes through here,
//! whether it came from the topology or from a host's record.

use infra_topology::{SqlAccount, SqlName};

/// An identifier in backticks, each backtick doubled (MariaDB's rule).
pub fn identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A string literal in single quotes, with `\` and `'` escaped and control characters written
/// as escapes, so it reads the same under every `sql_mode` (with or without
/// `NO_BACKSLASH_ESCAPES`, a doubled quote is a quote).
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `'user'@'host'`.
pub fn account(account: &SqlAccount) -> String {
    format!(
        "{}@{}",
        string(account.user().as_str()),
        string(&account.host().to_string())
    )
}

/// A database name as an identifier.
pub fn database(name: &SqlName) -> String {
    identifier(name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_cannot_be_escaped_from() {
        assert_eq!(identifier("a`b"), "`a``b`");
        assert_eq!(string("it's"), "'it''s'");
        assert_eq!(string("a\\'; DROP"), "'a\\\\''; DROP'");
        assert_eq!(string("line\nnext"), "'line\\nnext'");
    }

    proptest::proptest! {
        /// A literal is one token: it opens and closes once, and what is inside reads back as
        /// the original under MariaDB's escaping rules.
        #[test]
        fn any_text_reads_back(text in "\\PC{0,40}") {
            let quoted = string(&text);
            proptest::prop_assert!(quoted.starts_with('\'') && quoted.ends_with('\''));
            let inner = &quoted[1..quoted.len() - 1];
            let mut read = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('\\') => read.push('\\'),
                        Some('0') => read.push('\0'),
                        Some('n') => read.push('\n'),
                        Some('r') => read.push('\r'),
                        Some('Z') => read.push('\u{1a}'),
                        other => proptest::prop_assert!(false, "stray escape {:?}", other),
                    },
                    '\'' => {
                        // Inside a literal a quote only appears doubled.
                        proptest::prop_assert_eq!(chars.next(), Some('\''));
                        read.push('\'');
                    }
                    c => read.push(c),
                }
            }
            proptest::prop_assert_eq!(read, text);
        }
    }
}
