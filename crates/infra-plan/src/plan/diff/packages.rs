//! Packages: installed first, everywhere at once (the packages wave); purged last.

use infra_topology::PackageName;
use serde_json::json;

use super::HostDiff;
use crate::facts::PackageFact;
use crate::plan::change::{Action, Change, ResourceKind};
use crate::plan::{Step, StepKind};

impl HostDiff<'_> {
    pub(super) fn packages(&mut self) {
        if let Some(interrupted) = &self.record.interrupted_install {
            let names: Vec<&str> = interrupted.iter().map(PackageName::as_str).collect();
            self.notes.push(format!(
                "an earlier run was stopped while it installed {}: what that install brought is recorded now",
                names.join(" ")
            ));
            self.packages
                .push(Step::new(StepKind::FinishInterruptedInstall));
        }
        let mut install = Vec::new();
        for package in &self.wanted.packages {
            let before = match self.facts.packages.get(package) {
                Some(PackageFact::Installed { version }) => json!({ "version": version }),
                Some(PackageFact::Absent) | None => serde_json::Value::Null,
            };
            let action = if before.is_null() {
                install.push(package.clone());
                Action::Create
            } else {
                Action::NoOp
            };
            self.changes.push(
                Change::new(ResourceKind::Package, package.as_str(), action)
                    .before(before)
                    .after(json!({ "installed": true })),
            );
        }
        if !install.is_empty() {
            self.packages.push(
                Step::new(StepKind::InstallPackages {
                    packages: install.clone(),
                })
                .because("missing"),
            );
        }
        self.installing = install;
    }

    /// Packages `infra` installed that are no longer wanted: purged with the dependencies they
    /// brought, then (destroy) the system accounts they made and the shadow tools' backups.
    pub(super) fn removed_packages(&mut self) {
        let removed: Vec<PackageName> = self
            .record
            .packages
            .iter()
            .filter(|p| !self.wanted.packages.contains(p))
            .cloned()
            .collect();
        for package in &removed {
            let version = match self.facts.packages.get(package) {
                Some(PackageFact::Installed { version }) => Some(version.clone()),
                Some(PackageFact::Absent) | None => None,
            };
            self.changes.push(
                Change::new(ResourceKind::Package, package.as_str(), Action::Delete)
                    .before(json!({ "version": version, "installed_by": "infra" })),
            );
        }
        if !removed.is_empty() {
            let dependencies: Vec<PackageName> = self
                .record
                .dependencies
                .iter()
                .filter(|d| !removed.contains(d) && !self.wanted.packages.contains(d))
                .cloned()
                .collect();
            self.cleanup.push(Step::new(StepKind::PurgePackages {
                packages: removed.clone(),
                dependencies,
            }));
        }
        if self.destroying() {
            if !self.record.users.is_empty() || !self.record.groups.is_empty() {
                self.cleanup.push(Step::new(StepKind::RemoveAccounts {
                    users: self.record.users.iter().cloned().collect(),
                    groups: self.record.groups.iter().cloned().collect(),
                }));
            }
            if !self.record.packages.is_empty() {
                self.cleanup.push(Step::new(StepKind::RestoreShadowBackups));
            }
            let mariadb = removed.iter().any(|p| p.as_str() == "mariadb-server");
            if self.deleting_data() && mariadb {
                self.cleanup.push(Step::new(StepKind::DeleteDatabaseFiles));
            }
        }
    }
}
