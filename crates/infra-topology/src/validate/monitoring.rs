//! `monitoring:`: Prometheus's hosts, its settings, the exporter's database account and the
//! alert thresholds.

use super::values::SecretUse;
use super::{Checker, Known};
use crate::model::{Alerts, Firewall, FirewallMode, Monitoring};
use crate::raw::{self, Sp};

impl Checker<'_, '_> {
    pub(super) fn monitoring(
        &mut self,
        monitoring: &Sp<raw::RawMonitoring>,
        known: &Known,
        database: Option<&Sp<raw::RawDatabase>>,
    ) -> Option<Monitoring> {
        let raw = &monitoring.value;
        let hosts = self.host_list(&raw.hosts, known, "monitoring");
        let scrape_interval_seconds = self.bounded(
            raw.scrape_interval_seconds.as_ref(),
            15,
            1..=120,
            "monitoring.scrape_interval_seconds",
        );
        let retention_days = self.bounded(
            raw.retention_days.as_ref(),
            15,
            1..=3650,
            "monitoring.retention_days",
        );
        let alerts = &raw.alerts;
        let alerts = Alerts {
            for_seconds: self.bounded(
                alerts.for_seconds.as_ref(),
                60,
                0..=3600,
                "monitoring.alerts.for_seconds",
            ),
            replica_lag_seconds: self.bounded(
                alerts.replica_lag_seconds.as_ref(),
                30,
                1..=86_400,
                "monitoring.alerts.replica_lag_seconds",
            ),
            disk_used_percent: self.bounded(
                alerts.disk_used_percent.as_ref(),
                90,
                1..=99,
                "monitoring.alerts.disk_used_percent",
            ),
            app_5xx_percent: self.bounded(
                alerts.app_5xx_percent.as_ref(),
                5,
                1..=99,
                "monitoring.alerts.app_5xx_percent",
            ),
        };
        let database_user = match (&raw.database_user, database) {
            (Some(user), Some(db)) => {
                let taken = std::iter::once(&db.value.app_user.name.value)
                    .chain(db.value.replication_user.iter().map(|u| &u.name.value));
                for name in taken {
                    if *name == user.name.value {
                        self.error(
                            user.name.position,
                            format!(
                                "`{name}` is already a database account of the topology"
                            ),
                        )
                        .expected("an account of the exporter's own, such as `exporter`")
                        .hint("the exporter's account gets monitoring privileges only, from the database host itself");
                    }
                }
                self.database_user(
                    user,
                    "monitoring.database_user",
                    SecretUse::MONITORING_DATABASE,
                )
            }
            (None, Some(_)) => {
                self.error(
                    monitoring.position,
                    "monitoring a database tier needs `monitoring.database_user`",
                )
                .expected("`database_user: { name: exporter, password: \"${env:...}\" }`")
                .hint("MariaDB's exporter connects with an account of its own, allowed from the database host only");
                None
            }
            (Some(user), None) => {
                self.warning(
                    user.name.position,
                    "`monitoring.database_user` is not used: there is no database tier",
                )
                .hint("remove it, or add a `database:` tier");
                None
            }
            (None, None) => None,
        };
        Some(Monitoring {
            hosts,
            port: raw.port.as_ref().map_or(9090, |p| p.value),
            scrape_interval_seconds,
            retention_days,
            database_user,
            alerts,
        })
    }

    /// Prometheus and the exporters have no password: the firewall is what keeps them to the
    /// admin sources and the monitoring hosts, so a topology that opens them to anyone is told.
    pub(super) fn monitoring_exposure(
        &mut self,
        monitoring: &Sp<raw::RawMonitoring>,
        raw: &raw::RawFirewall,
        firewall: &Firewall,
    ) {
        match firewall.mode {
            FirewallMode::Unmanaged => {
                let position = raw
                    .enabled
                    .as_ref()
                    .map_or(monitoring.position, |e| e.position);
                self.warning(
                    position,
                    "with the firewall off, the exporters and Prometheus answer anyone who reaches them",
                )
                .hint("they have no password: keep `firewall.enabled: true`, or filter ports 9090, 9100, 9104, 9113 and the stats port yourself");
            }
            FirewallMode::Managed => {
                if firewall.admin_sources.iter().any(|s| s.prefix_len() == 0) {
                    let position = raw
                        .admin_sources
                        .as_ref()
                        .map_or(monitoring.position, |a| a.position);
                    self.warning(
                        position,
                        "Prometheus has no password, and `firewall.admin_sources` admits anyone",
                    )
                    .hint("set `firewall.admin_sources` to the networks you administer from");
                }
            }
        }
    }

    /// A number within `range`, or `default` when it is not written.
    fn bounded<T>(
        &mut self,
        value: Option<&Sp<T>>,
        default: T,
        range: std::ops::RangeInclusive<T>,
        key: &str,
    ) -> T
    where
        T: Copy + PartialOrd + std::fmt::Display,
    {
        let Some(value) = value else {
            return default;
        };
        if !range.contains(&value.value) {
            self.error(
                value.position,
                format!("`{key}` is {}, out of range", value.value),
            )
            .expected(format!("from {} to {}", range.start(), range.end()));
            return default;
        }
        value.value
    }
}
