//! Checked identifiers: names and paths that reach shell commands, file paths, SQL and config
//! files. Each can only be built through its rule in [`crate::rules`], and the same rule runs when
//! one is read back from JSON (a saved plan, a host's record), so a value from a file that `infra`
//! did not write itself is checked exactly like a value from the topology.

use std::fmt;

use crate::rules;

macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $rule:path, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The value, if it passes the rule.
            pub fn new(text: impl Into<String>) -> Option<$name> {
                let text = text.into();
                $rule(&text).then_some($name(text))
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            /// The name, honouring width and alignment (`{:<12}` pads it in a table).
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(text: String) -> Result<$name, String> {
                if $rule(&text) {
                    Ok($name(text))
                } else {
                    Err(format!("`{}` is not a valid {}", crate::text::visible(&text), $what))
                }
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

checked_name!(
    /// A host's name: a lowercase letter, then lowercase letters, digits and `-`, at most 63.
    HostName,
    rules::is_name,
    "host name"
);

checked_name!(
    /// A topology's (or the app's) name, with the same rule as host names.
    Name,
    rules::is_name,
    "name"
);

checked_name!(
    /// A Debian package name (Debian policy 5.6.7).
    PackageName,
    rules::is_package_name,
    "Debian package name"
);

checked_name!(
    /// An absolute path on a host made of safe characters, without `.` or `..` components.
    RemotePath,
    rules::is_safe_absolute_path,
    "absolute path"
);

checked_name!(
    /// A systemd unit name such as `nginx.service`.
    UnitName,
    rules::is_unit_name,
    "systemd unit name"
);

checked_name!(
    /// A SQL identifier (database or account name): ASCII letters, digits and `_`.
    SqlName,
    rules::is_sql_identifier,
    "SQL name"
);

checked_name!(
    /// A system user or group name as `adduser` makes them.
    AccountName,
    rules::is_system_account,
    "user or group name"
);

impl RemotePath {
    /// A path written in `infra`'s own source (checked by its tests, never by users' input).
    pub fn from_static(path: &'static str) -> RemotePath {
        debug_assert!(rules::is_safe_absolute_path(path), "{path}");
        RemotePath(path.to_owned())
    }

    /// `self/<name><suffix>`: a checked name (letters, digits and `-`) and a fixed suffix such
    /// as `.pem` always make a safe path.
    pub fn child_named(&self, name: &Name, suffix: &'static str) -> RemotePath {
        debug_assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        );
        RemotePath(format!("{}/{name}{suffix}", self.0))
    }

    /// The path with `root` put in front (a host path inside one of `infra`'s folders, such as
    /// the backup of `/etc/x` at `/var/lib/infra/backup/etc/x`).
    pub fn under(&self, root: &RemotePath) -> RemotePath {
        RemotePath(format!("{}{}", root.0, self.0))
    }

    /// The folder holding this path (`/` has none).
    pub fn parent(&self) -> Option<RemotePath> {
        let (parent, _) = self.0.rsplit_once('/')?;
        RemotePath::new(parent)
    }

    /// `self/name`, if `name` is one safe path component.
    pub fn join(&self, name: &str) -> Option<RemotePath> {
        RemotePath::new(format!("{}/{name}", self.0))
    }

    /// Whether `self` is `other` or inside it.
    pub fn starts_with(&self, other: &RemotePath) -> bool {
        self.0 == other.0 || self.0.starts_with(&format!("{}/", other.0))
    }
}

impl UnitName {
    /// `<name>.service`.
    pub fn service(name: &Name) -> UnitName {
        UnitName(format!("{name}.service"))
    }
}

/// A MariaDB account: a user at one client address, `'user'@'host'`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct SqlAccount {
    user: SqlName,
    host: std::net::IpAddr,
}

impl SqlAccount {
    /// The account of `user` connecting from `host`.
    pub fn new(user: SqlName, host: std::net::IpAddr) -> SqlAccount {
        SqlAccount { user, host }
    }

    /// The user name.
    pub fn user(&self) -> &SqlName {
        &self.user
    }

    /// The client address.
    pub fn host(&self) -> std::net::IpAddr {
        self.host
    }
}

impl fmt::Display for SqlAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.host)
    }
}

impl TryFrom<String> for SqlAccount {
    type Error = String;
    fn try_from(text: String) -> Result<SqlAccount, String> {
        let bad = || {
            format!(
                "`{}` is not an account `user@address`",
                crate::text::visible(&text)
            )
        };
        let (user, host) = text.split_once('@').ok_or_else(bad)?;
        Ok(SqlAccount {
            user: SqlName::new(user).ok_or_else(bad)?,
            host: host.parse().map_err(|_| bad())?,
        })
    }
}

impl From<SqlAccount> for String {
    fn from(account: SqlAccount) -> String {
        account.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_when_read_back_from_json() {
        let good: Result<PackageName, _> = serde_json::from_str("\"haproxy\"");
        assert!(good.is_ok());
        let bad: Result<PackageName, _> = serde_json::from_str("\"x; reboot\"");
        assert!(bad.is_err());
        let path: Result<RemotePath, _> = serde_json::from_str("\"/etc/../root\"");
        assert!(path.is_err());
        let account: SqlAccount =
            serde_json::from_str("\"counter@10.0.0.31\"").expect("an account");
        assert_eq!(account.user().as_str(), "counter");
        let hostile: Result<SqlAccount, _> = serde_json::from_str("\"x'@'%\"");
        assert!(hostile.is_err());
    }

    #[test]
    fn names_line_up_in_tables() {
        let host = HostName::new("app1").expect("name");
        assert_eq!(format!("{host:<8}|"), "app1    |");
        assert_eq!(format!("{host:>6}"), "  app1");
    }

    #[test]
    fn remote_paths_know_their_parent() {
        let path = RemotePath::new("/etc/nginx/sites-enabled/x").expect("path");
        assert_eq!(
            path.parent().map(|p| p.to_string()).as_deref(),
            Some("/etc/nginx/sites-enabled")
        );
        assert!(path.starts_with(&RemotePath::new("/etc/nginx").expect("path")));
        assert!(!path.starts_with(&RemotePath::new("/etc/ng").expect("path")));
    }
}
