//! Names that Debian or `infra` already own on a host. A topology that reused one would
//! replace something else's unit, folder or schema: the app called `ssh` would replace
//! sshd's unit and lock everyone out.

/// Units, packages and `/etc` folders of Debian's base system and of the packages the tiers
/// install, which the app's `<name>.service`, `/etc/<name>/` and `/opt/<name>` may not reuse.
const TAKEN_APP_NAMES: &[&str] = &[
    // infra's own
    "infra",
    // the tiers' packages and services
    "haproxy",
    "keepalived",
    "nginx",
    "mariadb",
    "mysql",
    "mysqld",
    "nftables",
    "iptables",
    "prometheus",
    // remote access
    "ssh",
    "sshd",
    "openssh",
    "sudo",
    // Debian's base services and /etc folders
    "apt",
    "cron",
    "dbus",
    "default",
    "dpkg",
    "emergency",
    "getty",
    "init",
    "kmod",
    "logrotate",
    "network",
    "networking",
    "pam",
    "procps",
    "rc-local",
    "rescue",
    "rsyslog",
    "security",
    "shutdown",
    "ssl",
    "systemd",
    "udev",
    "user",
    // folders under / that /opt/<name> or /etc/<name> must not shadow in messages
    "etc",
    "opt",
    "var",
];

/// Name prefixes reserved for systemd and for `infra`.
const TAKEN_APP_PREFIXES: &[&str] = &[
    "systemd-",
    "infra-",
    "dbus-",
    "getty",
    "user@",
    "prometheus-",
];

/// Why `name` cannot be the app's name, when it cannot.
pub fn app_name(name: &str, app_packages: &[&str]) -> Option<String> {
    if TAKEN_APP_NAMES.contains(&name) {
        return Some(format!(
            "`{name}` is already a unit, package or folder on Debian or of `infra`: `{name}.service` and `/etc/{name}/` would replace it"
        ));
    }
    if let Some(prefix) = TAKEN_APP_PREFIXES.iter().find(|p| name.starts_with(*p)) {
        return Some(format!(
            "names starting with `{prefix}` belong to systemd, Debian's exporters or `infra`"
        ));
    }
    if app_packages.contains(&name) {
        return Some(format!(
            "`{name}` is also a package the app installs: its unit or `/etc/{name}/` would collide with the package's"
        ));
    }
    None
}

/// Why `name` cannot be a topology's name, when it cannot.
pub fn topology_name(name: &str) -> Option<&'static str> {
    match name {
        "default" => Some(
            "the Nginx site is written to `/etc/nginx/sites-enabled/<topology>`, and Debian's own site there is `default`, which `infra` removes",
        ),
        _ => None,
    }
}

/// MariaDB's own schemas, which the app's account would get every privilege on.
const SYSTEM_SCHEMAS: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

/// Why `name` cannot be the app's database, when it cannot.
pub fn database_name(name: &str) -> Option<&'static str> {
    SYSTEM_SCHEMAS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(name))
        .then_some("MariaDB keeps its own accounts and state there: the app's account would get ALL privileges on them")
}

/// MariaDB's own accounts.
const SYSTEM_ACCOUNTS: &[&str] = &["root", "mysql", "mariadb", "public"];

/// Why `name` cannot be a database account `infra` manages, when it cannot.
pub fn database_user(name: &str) -> Option<&'static str> {
    SYSTEM_ACCOUNTS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(name))
        .then_some("MariaDB's own accounts are not `infra`'s to create, change or drop")
}

/// Why an app environment variable cannot be set in the topology, when it cannot.
pub fn environment_name(name: &str) -> Option<&'static str> {
    if name == "PORT" {
        Some("`PORT` is set by `infra` from `app.port`")
    } else if name.starts_with("DB_") {
        Some("names starting with `DB_` are set by `infra` from the database tier")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_debian_owns_are_refused() {
        assert!(app_name("ssh", &[]).is_some());
        assert!(app_name("nginx", &[]).is_some());
        assert!(app_name("infra-firewall", &[]).is_some());
        assert!(app_name("systemd-resolved", &[]).is_some());
        assert!(app_name("python3", &["python3"]).is_some());
        assert!(app_name("counter", &["python3"]).is_none());
        assert!(topology_name("default").is_some());
        assert!(database_name("MySQL").is_some());
        assert!(database_name("scaleup").is_none());
        assert!(database_user("root").is_some());
        assert!(environment_name("PORT").is_some());
        assert!(environment_name("DB_HOST").is_some());
        assert!(environment_name("GREETING").is_none());
    }
}
