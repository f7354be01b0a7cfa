//! MariaDB: the server runs its new configuration first (a replica needs its own `server_id`
//! before it can replicate), then the database, accounts, grants and replication.

use infra_topology::{SqlAccount, UnitName};
use serde_json::{Value, json};

use super::HostDiff;
use crate::desired::{DatabaseRole, Grant, HealthGate};
use crate::facts::DatabaseFacts;
use crate::paths;
use crate::plan::change::{Action, Change, ResourceKind};
use crate::plan::{PasswordOf, SqlStep, Step, StepKind};

/// MariaDB's `mysql_native_password` hash: `*` and the upper-case hex of SHA1(SHA1(password)).
pub fn mysql_native_password(password: &str) -> String {
    use sha1::Digest as _;
    let once = sha1::Sha1::digest(password.as_bytes());
    let twice = sha1::Sha1::digest(once);
    format!("*{}", crate::hash::hex(&twice).to_uppercase())
}

impl HostDiff<'_> {
    /// The unit of the database server this host runs, if it runs one.
    pub(super) fn database_unit(&self) -> Option<UnitName> {
        self.wanted
            .database
            .as_ref()
            .map(|_| paths::unit("mariadb.service"))
    }

    /// Whether the primary at `address` runs a MariaDB that offers TLS without being set up for
    /// it (11.4 and later: Debian 13), as its facts say.
    fn primary_offers_tls(&self, address: std::net::IpAddr) -> bool {
        let Some(primary) = self
            .input
            .desired
            .hosts
            .iter()
            .find(|h| h.address == address)
        else {
            return false;
        };
        self.input
            .facts
            .iter()
            .find(|(name, _)| *name == primary.name)
            .and_then(|(_, facts)| facts.os.as_deref())
            .and_then(crate::preflight::supported)
            .is_some_and(|release| release >= infra_topology::Release::Trixie)
    }

    pub(super) fn database(&mut self) {
        let facts = self.facts.database.clone().unwrap_or_default();
        let mut sql = Vec::new();
        let mut replicating = None;
        if let Some(objects) = self.wanted.database.clone() {
            if objects.role == DatabaseRole::Primary {
                self.primary_objects(&objects, &facts, &mut sql);
            }
            if let Some(source) = &objects.replication_source {
                let now = facts.replication.as_ref();
                let right = now.is_some_and(|r| {
                    r.source_host == source.host.to_string()
                        && r.user == source.user.as_str()
                        && r.source_port == source.port.to_string()
                        && r.using_gtid.eq_ignore_ascii_case("Slave_Pos")
                });
                let running = now.is_some_and(|r| r.io_running == "Yes" && r.sql_running == "Yes");
                let action = match (now, right && running) {
                    (None, _) => Action::Create,
                    (Some(_), true) => Action::NoOp,
                    (Some(_), false) => Action::Update,
                };
                if action != Action::NoOp {
                    sql.push(Step::new(StepKind::Sql(SqlStep::Replicate {
                        source: source.host,
                        port: source.port,
                        user: source.user.clone(),
                        password: PasswordOf(source.user.clone()),
                        primary_tls: self.primary_offers_tls(source.host),
                    })));
                }
                let before = now.map_or(Value::Null, |r| {
                    json!({ "source": format!("{}:{}", r.source_host, r.source_port), "user": r.user, "gtid": r.using_gtid, "io_running": r.io_running, "sql_running": r.sql_running })
                });
                self.changes.push(
                    Change::new(ResourceKind::Replication, source.host.to_string(), action)
                        .before(before)
                        .after(json!({ "source": format!("{}:{}", source.host, source.port), "user": source.user, "gtid": "Slave_Pos", "io_running": "Yes", "sql_running": "Yes" })),
                );
            } else if self.record.replication && !self.destroying() {
                self.stop_replication(&mut sql);
            }
            self.unwanted_accounts(&objects.users, &mut sql);
            if let Some(unit) = self.database_unit() {
                let active = self
                    .facts
                    .services
                    .get(&unit)
                    .is_some_and(|s| s.is_active());
                let mut start = self.run_step(&unit, active);
                if start.is_empty() && !sql.is_empty() {
                    // SQL needs the server up, whatever the facts said before the install.
                    start.push(
                        Step::new(StepKind::StartUnit { unit: unit.clone() })
                            .because("the SQL below needs it"),
                    );
                    start.extend(self.health_step(&unit));
                }
                // A replica that restarted is healthy again once it replicates (after the SQL
                // below, which may be what starts replication).
                if !start.is_empty() && objects.role == DatabaseRole::Replica {
                    let timeout_seconds = self
                        .wanted
                        .services
                        .iter()
                        .find(|s| s.unit == unit)
                        .and_then(|s| s.health.as_ref())
                        .map_or(120, |h| h.timeout_seconds);
                    let wait = StepKind::WaitHealthy {
                        unit: unit.clone(),
                        gate: HealthGate::Replication,
                        timeout_seconds,
                    };
                    replicating = Some(Step::new(wait.clone()).undone_by(wait));
                }
                self.database.extend(start);
            }
        } else if self.destroying() && self.deleting_data() {
            self.dropped_data(&mut sql);
        } else if self.destroying() {
            self.dropped_tier_accounts(&mut sql);
        } else {
            self.unwanted_accounts(&[], &mut sql);
        }
        self.database.extend(sql);
        self.database.extend(replicating);
    }

    /// Plans the retirement of `account`'s old password, after the app tier.
    fn retire_password(&mut self, account: &SqlAccount, user: &infra_topology::SqlName) {
        self.retire
            .push(Step::new(StepKind::Sql(SqlStep::SetPassword {
                account: account.clone(),
                password: PasswordOf(user.clone()),
            })));
    }

    fn primary_objects(
        &mut self,
        objects: &crate::desired::DatabaseObjects,
        facts: &DatabaseFacts,
        sql: &mut Vec<Step>,
    ) {
        let reachable = facts.reachable;
        let exists = reachable && facts.databases.contains(&objects.database);
        if !exists {
            sql.push(Step::new(StepKind::Sql(SqlStep::CreateDatabase {
                database: objects.database.clone(),
            })));
        }
        self.changes.push(
            Change::new(
                ResourceKind::Database,
                objects.database.as_str(),
                if exists { Action::NoOp } else { Action::Create },
            )
            .before(if exists {
                json!({ "exists": true })
            } else {
                Value::Null
            })
            .after(json!({ "exists": true })),
        );
        for user in &objects.users {
            let want = mysql_native_password(user.password.expose());
            for account in user.accounts() {
                let name = account.to_string();
                let (action, step) = match facts.users.get(&account) {
                    None => (
                        Action::Create,
                        Some(SqlStep::CreateAccount {
                            account: account.clone(),
                            password: PasswordOf(user.name.clone()),
                        }),
                    ),
                    // A rotation that did not finish: the old password is still accepted.
                    Some(hash)
                        if hash.eq_ignore_ascii_case(&want)
                            && facts.retained.contains(&account) =>
                    {
                        self.retire_password(&account, &user.name);
                        (Action::Update, None)
                    }
                    Some(hash) if hash.eq_ignore_ascii_case(&want) => (Action::NoOp, None),
                    // The new password works beside the old one until the app hosts have
                    // restarted on it; the old one is retired after the app tier.
                    Some(_) => {
                        self.retire_password(&account, &user.name);
                        (
                            Action::Update,
                            Some(SqlStep::AddPassword {
                                account: account.clone(),
                                password: PasswordOf(user.name.clone()),
                            }),
                        )
                    }
                };
                sql.extend(step.map(|s| Step::new(StepKind::Sql(s))));
                let before = if facts.users.contains_key(&account) {
                    json!({ "password": crate::PLACEHOLDER })
                } else {
                    Value::Null
                };
                self.changes.push(
                    Change::new(ResourceKind::DatabaseUser, name.clone(), action)
                        .before(before)
                        .after(json!({ "password": crate::PLACEHOLDER }))
                        .sensitive(&["password"]),
                );
                let granted = match &user.grant {
                    Grant::Replication => facts.replication_grants.contains(&account),
                    Grant::AllOn(_) => facts.database_grants.contains(&account),
                    Grant::Monitor => facts.monitor_grants.contains(&account),
                };
                if !granted {
                    sql.push(Step::new(StepKind::Sql(SqlStep::Grant {
                        account: account.clone(),
                        grant: user.grant.clone(),
                    })));
                }
                let grant = json!({ "grant": user.grant.to_string() });
                self.changes.push(
                    Change::new(
                        ResourceKind::DatabaseGrant,
                        name,
                        if granted {
                            Action::NoOp
                        } else {
                            Action::Create
                        },
                    )
                    .before(if granted { grant.clone() } else { Value::Null })
                    .after(grant),
                );
            }
        }
        let kept: Vec<String> = self
            .record
            .databases
            .iter()
            .filter(|d| **d != objects.database)
            .map(ToString::to_string)
            .collect();
        if !kept.is_empty() {
            self.notes.push(format!(
                "database {} is no longer in the topology; apply never drops data (destroy --delete-data does)",
                kept.join(", ")
            ));
        }
    }

    /// Accounts `infra` created that the topology no longer wants (a removed app host's):
    /// dropped, so no account is left for a machine that is gone.
    fn unwanted_accounts(
        &mut self,
        users: &[crate::desired::DatabaseAccount],
        sql: &mut Vec<Step>,
    ) {
        let wanted: Vec<SqlAccount> = users.iter().flat_map(|u| u.accounts()).collect();
        let gone: Vec<SqlAccount> = self
            .record
            .accounts
            .iter()
            .filter(|a| !wanted.contains(a))
            .cloned()
            .collect();
        for account in gone {
            self.drop_account(account, sql);
        }
    }

    /// Drops an account `infra` created.
    fn drop_account(&mut self, account: SqlAccount, sql: &mut Vec<Step>) {
        self.changes.push(
            Change::new(
                ResourceKind::DatabaseUser,
                account.to_string(),
                Action::Delete,
            )
            .before(json!({ "created_by": "infra" })),
        );
        sql.push(Step::new(StepKind::Sql(SqlStep::DropAccount { account })));
    }

    /// Stops the replication `infra` configured.
    fn stop_replication(&mut self, sql: &mut Vec<Step>) {
        sql.push(Step::new(StepKind::Sql(SqlStep::StopReplication)));
        self.changes.push(
            Change::new(ResourceKind::Replication, "primary", Action::Delete)
                .before(json!({ "configured_by": "infra" })),
        );
    }

    /// Destroy that keeps the data: the accounts of tiers that go with it (the monitoring
    /// exporter's) are dropped, first.
    fn dropped_tier_accounts(&mut self, sql: &mut Vec<Step>) {
        for account in self.wanted.dropped_with_tiers.clone() {
            if self.record.accounts.contains(&account) {
                self.drop_account(account, sql);
            } else if self.record.replication {
                // A replica holds a copy that replication brought; destroy stops the replicas
                // before the primary, so it is dropped here too.
                self.changes.push(
                    Change::new(
                        ResourceKind::DatabaseUser,
                        account.to_string(),
                        Action::Delete,
                    )
                    .before(json!({ "created_by": "infra", "copied_from": "the primary" })),
                );
                sql.push(Step::new(StepKind::Sql(SqlStep::DropCopiedAccount {
                    account,
                })));
            }
        }
        self.stop.splice(0..0, std::mem::take(sql));
    }

    /// `destroy --delete-data`: replication stopped, databases and accounts dropped, first.
    fn dropped_data(&mut self, sql: &mut Vec<Step>) {
        if self.record.replication {
            self.stop_replication(sql);
        }
        for database in self.record.databases.clone() {
            self.changes.push(
                Change::new(ResourceKind::Database, database.as_str(), Action::Delete)
                    .before(json!({ "exists": true })),
            );
            sql.push(Step::new(StepKind::Sql(SqlStep::DropDatabase { database })));
        }
        for account in self.record.accounts.clone() {
            self.drop_account(account, sql);
        }
        // The data goes before the server is stopped with the other units.
        self.stop.splice(0..0, std::mem::take(sql));
    }
}
