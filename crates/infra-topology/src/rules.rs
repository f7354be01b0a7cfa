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

/// Whether a would-be DNS name reads as a number: its last label does not start with a letter,
/// as no top-level domain does. Such text is a mistyped address (`10.0.0.300`), or one the C
/// library would read as an address itself (`0x7f000001`, `127.1`): never a name to look up.
pub fn looks_numeric(text: &str) -> bool {
    text.rsplit('.')
        .next()
        .is_none_or(|last| !last.starts_with(|c: char| c.is_ascii_alphabetic()))
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

/// The config formats a secret can end up in. Each has its own characters that end a value
/// early or change it; a secret must avoid those of every format it reaches. The sets were
/// measured with the real programs (see tests/validators.rs and the lifecycle test), not guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretFormat {
    /// An unquoted word in `haproxy.cfg` (the stats password): `#` silently ends the word (a
    /// comment), quotes are refused and `\` escapes.
    Haproxy,
    /// A word in `keepalived.conf` (the VRRP password): `!` and `#` silently end it (comments),
    /// `{` and `}` are block markers anywhere, and `"` starts a quote.
    Keepalived,
    /// A double-quoted value in a systemd environment file (the app's environment): `"` ends it
    /// and `\` escapes; `$`, `%` and backticks are kept as written.
    SystemdEnvironment,
    /// A SQL string literal, quoted by `infra_plan::sql`: only non-printable characters are out.
    Sql,
    /// A triple-quoted value (`"""..."""`) in the MariaDB exporter's client file, read by the
    /// Go `ini` parser: `"` could close the quotes early, and `\` is kept out as the parser
    /// may read it as an escape.
    ClientFile,
    /// The password in the Go data source name MariaDB's exporter connects with (Debian 12's
    /// exporter builds one from the client file): the exporter
    /// appends its own `?` parameters after a `&` when the name already holds a `?`, which
    /// then lands in the database name (`Access denied ... to database '&lock_wait_timeout=2'`).
    DataSourceName,
}

impl SecretFormat {
    /// The printable ASCII characters this format cannot take in a secret.
    pub fn forbidden(self) -> &'static [char] {
        match self {
            SecretFormat::Haproxy => &['#', '"', '\'', '\\'],
            SecretFormat::Keepalived => &['!', '"', '#', '{', '}'],
            SecretFormat::SystemdEnvironment => &['"', '\\'],
            SecretFormat::Sql => &[],
            SecretFormat::ClientFile => &['"', '\\'],
            SecretFormat::DataSourceName => &['?'],
        }
    }

    /// What the format is, in messages.
    pub fn describe(self) -> &'static str {
        match self {
            SecretFormat::Haproxy => "`haproxy.cfg`",
            SecretFormat::Keepalived => "`keepalived.conf`",
            SecretFormat::SystemdEnvironment => "a systemd environment file",
            SecretFormat::Sql => "SQL",
            SecretFormat::ClientFile => "the MariaDB exporter's client file",
            SecretFormat::DataSourceName => "the MariaDB exporter's data source name",
        }
    }
}

/// The shortest secret `infra` accepts: shorter ones are guessable, and every secret must be
/// long enough to be replaced in messages without replacing ordinary words.
pub const MIN_SECRET_LENGTH: usize = 8;
/// The longest secret `infra` accepts.
pub const MAX_SECRET_LENGTH: usize = 256;
/// keepalived's `auth_pass` uses exactly this many characters and drops the rest silently.
pub const KEEPALIVED_PASSWORD_LENGTH: usize = 8;

/// The first character of `text` that one of `formats` cannot take (or that is not printable
/// ASCII), if any.
pub fn secret_character_problem(text: &str, formats: &[SecretFormat]) -> Option<char> {
    text.chars()
        .find(|c| !c.is_ascii_graphic() || formats.iter().any(|f| f.forbidden().contains(c)))
}

/// A `ProxyJump` hop: `[user@]host[:port]`, the host a DNS name, an IPv4 address or a
/// bracketed IPv6 address. Nothing may start with `-` (it would be read as an option).
pub fn is_jump_hop(text: &str) -> bool {
    let (user, rest) = match text.split_once('@') {
        Some((user, rest)) => (Some(user), rest),
        None => (None, text),
    };
    if user.is_some_and(|u| !is_user_name(u)) {
        return false;
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let Some((address, after)) = inner.split_once(']') else {
            return false;
        };
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after.strip_prefix(':') {
            Some(port) => (address, Some(port)),
            None if after.is_empty() => (address, None),
            None => return false,
        }
    } else {
        let (host, port) = match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        if !is_dns_name(host) || host.starts_with('-') {
            return false;
        }
        (host, port)
    };
    !host.is_empty() && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// A `ProxyJump` value: one or more hops separated by commas, each [`is_jump_hop`].
pub fn is_jump(text: &str) -> bool {
    !text.is_empty() && text.split(',').all(is_jump_hop)
}

/// A systemd unit name: safe characters and a unit type suffix.
pub fn is_unit_name(text: &str) -> bool {
    let Some((stem, kind)) = text.rsplit_once('.') else {
        return false;
    };
    matches!(kind, "service" | "socket" | "timer" | "target")
        && !stem.is_empty()
        && text.len() <= 255
        && !stem.starts_with('-')
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@' | '.'))
}

/// A system user or group name as Debian packages create them (`_apt`, `www-data`...).
pub fn is_system_account(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && text.len() <= 32
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn jump_hops_are_checked_one_by_one() {
        assert!(is_jump("bastion"));
        assert!(is_jump("ops@bastion.example.com:2222"));
        assert!(is_jump("a@10.0.0.1,b@[2001:db8::1]:22"));
        assert!(!is_jump("-oProxyCommand=touch"));
        assert!(!is_jump("ok,-oProxyCommand=x"));
        assert!(!is_jump("ok@-host"));
        assert!(!is_jump("host:0"));
        assert!(!is_jump("host:ssh"));
        assert!(!is_jump("host,"));
    }

    #[test]
    fn unit_and_account_names() {
        assert!(is_unit_name("nginx.service"));
        assert!(is_unit_name("getty@tty1.service"));
        assert!(!is_unit_name("nginx"));
        assert!(!is_unit_name("-x.service"));
        assert!(is_system_account("_apt"));
        assert!(is_system_account("www-data"));
        assert!(!is_system_account("Root"));
    }

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
        assert!(secret_character_problem("Zx9-rT_4.q", &[SecretFormat::Keepalived]).is_none());
        assert_eq!(
            secret_character_problem("ab!cd", &[SecretFormat::Keepalived]),
            Some('!')
        );
        assert!(secret_character_problem("ab!cd", &[SecretFormat::Haproxy]).is_none());
        assert_eq!(
            secret_character_problem("has space", &[SecretFormat::Sql]),
            Some(' ')
        );
    }
}
