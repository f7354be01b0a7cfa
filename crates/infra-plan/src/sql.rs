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

/// Statements that make `account` accept the password whose `mysql_native_password` hash is
/// `new_hash` beside the one it has now (MariaDB's `IDENTIFIED VIA ... OR ...`), so clients
/// still using the old one keep working until `ALTER USER ... IDENTIFIED BY` retires it. Only
/// hashes appear: the current one is read on the server and used only if it is a
/// `mysql_native_password` hash; the new one is kept to `*` and hex digits here.
pub fn add_password(account: &SqlAccount, new_hash: &str) -> String {
    let new_hash: String = new_hash
        .chars()
        .filter(|c| *c == '*' || c.is_ascii_hexdigit())
        .collect();
    let new = string(&format!("'{new_hash}'"));
    format!(
        "SET @infra_old = (SELECT authentication_string FROM mysql.user WHERE User = {user} AND Host = {host});\n\
         SET @infra_sql = CONCAT('ALTER USER ', {name}, ' IDENTIFIED VIA mysql_native_password USING ', {new}, \
         IF(@infra_old REGEXP '^[*][0-9A-F]{{40}}$' AND @infra_old <> {hash}, \
         CONCAT(' OR mysql_native_password USING ''', @infra_old, ''''), ''));\n\
         PREPARE infra_stmt FROM @infra_sql;\nEXECUTE infra_stmt;\nDEALLOCATE PREPARE infra_stmt;\n",
        user = string(account.user().as_str()),
        host = string(&account.host().to_string()),
        name = string(&self::account(account)),
        hash = string(&new_hash),
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
    fn a_new_password_is_added_as_a_hash_beside_the_old_one() {
        let account = SqlAccount::new(
            SqlName::new("app").expect("name"),
            "10.0.0.31".parse().expect("address"),
        );
        let text = add_password(&account, "*0123456789ABCDEF0123456789ABCDEF01234567');--");
        assert!(
            text.contains("USING ', '''*0123456789ABCDEF0123456789ABCDEF01234567''', IF"),
            "{text}"
        );
        assert!(
            text.contains("WHERE User = 'app' AND Host = '10.0.0.31'"),
            "{text}"
        );
        assert!(
            !text.contains("--"),
            "only `*` and hex digits of the hash get in: {text}"
        );
    }

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
