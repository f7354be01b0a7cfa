//! `database:`: MariaDB's primary, replicas, the app's database and the two accounts.

use super::values::SecretUse;
use super::{Checker, Known};
use crate::model::{Database, DatabaseUser, SqlName};
use crate::raw::{self, Sp};
use crate::reserved;

impl Checker<'_, '_> {
    pub(super) fn database(
        &mut self,
        db: &Sp<raw::RawDatabase>,
        known: &Known,
    ) -> Option<Database> {
        let raw = &db.value;
        let primary = self.host_ref(&raw.primary, known, "database.primary");
        let replicas = match &raw.replicas {
            Some(list) if list.value.is_empty() => Vec::new(),
            Some(list) => self.host_list(list, known, "database.replicas"),
            None => Vec::new(),
        };
        for replica in raw.replicas.iter().flat_map(|r| &r.value) {
            if replica.value == raw.primary.value {
                self.error(
                    replica.position,
                    format!("`{}` is both the primary and a replica", replica.value),
                )
                .expected("replicas on hosts other than the primary")
                .hint("a server cannot replicate from itself");
            }
        }
        let name = self.sql_name(&raw.name, "database name");
        if let Some(reason) = reserved::database_name(&raw.name.value) {
            self.error(
                raw.name.position,
                format!("`{}` cannot be the app's database", raw.name.value),
            )
            .expected("a database of the app's own, such as `shop`")
            .hint(reason);
        }
        let app_user = self.database_user(&raw.app_user, "app_user", SecretUse::APP_DATABASE);
        let replication_user = raw
            .replication_user
            .as_ref()
            .and_then(|u| self.database_user(u, "replication_user", SecretUse::REPLICATION));
        if let Some(r) = &raw.replication_user
            && r.name.value == raw.app_user.name.value
        {
            self.error(
                r.name.position,
                "the replication user and the app user have the same name",
            )
            .expected("two different accounts");
        }
        if !replicas.is_empty() && raw.replication_user.is_none() {
            let position = raw.replicas.as_ref().map_or(db.position, |r| r.position);
            self.error(position, "replicas need a `replication_user`")
                .expected("`replication_user: { name: repl, password: \"${env:...}\" }`");
        }
        let rollout = self.rollout(raw.rollout.as_ref(), "database", replicas.len(), 120);
        Some(Database {
            primary: primary?,
            replicas,
            name: name?,
            port: raw.port.as_ref().map_or(3306, |p| p.value),
            app_user: app_user?,
            replication_user,
            rollout,
        })
    }

    pub(super) fn database_user(
        &mut self,
        raw: &raw::RawDatabaseUser,
        key: &str,
        usage: SecretUse,
    ) -> Option<DatabaseUser> {
        let name = self.sql_name(&raw.name, &format!("`{key}` name"));
        if let Some(reason) = reserved::database_user(&raw.name.value) {
            self.error(
                raw.name.position,
                format!("`{}` cannot be `{key}`", raw.name.value),
            )
            .expected("an account of the app's own")
            .hint(reason);
        }
        let password = self.secret(&raw.password, &format!("{key}.password"), usage);
        Some(DatabaseUser {
            name: name?,
            password: password?,
        })
    }

    fn sql_name(&mut self, value: &Sp<String>, what: &str) -> Option<SqlName> {
        let name = SqlName::new(value.value.clone());
        if name.is_none() {
            self.error(
                value.position,
                format!("`{}` is not a valid {what}", value.value),
            )
            .expected("ASCII letters, digits and `_` (at most 32, not only digits)");
        }
        name
    }
}
