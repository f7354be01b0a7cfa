//! Services: enabled and running, reloaded or restarted once for what changed (and for what
//! an earlier run that stopped still owed them); units `infra` enabled and no longer wants are
//! stopped and disabled first.

use infra_topology::UnitName;
use serde_json::{Value, json};

use super::HostDiff;
use crate::desired::{Service, Trigger};
use crate::plan::change::{Action, Change, ResourceKind};
use crate::plan::{Step, StepKind};

impl HostDiff<'_> {
    /// Reloads and restarts an earlier run that stopped still owes the units that are wanted.
    pub(super) fn owed(&mut self) {
        let owed: Vec<(UnitName, Trigger)> = self
            .record
            .owed
            .iter()
            .map(|(unit, trigger)| (unit.clone(), *trigger))
            .collect();
        for (unit, trigger) in owed {
            if self.wanted.services.iter().any(|s| s.unit == unit) {
                self.trigger(
                    &unit,
                    trigger,
                    "owed by an earlier run that stopped".to_owned(),
                );
            }
        }
    }

    pub(super) fn services(&mut self) {
        let database_unit = self.database_unit();
        let wanted: Vec<Service> = self.wanted.services.clone();
        for service in &wanted {
            let fact = self
                .facts
                .services
                .get(&service.unit)
                .cloned()
                .unwrap_or_default();
            let action = if !fact.exists() {
                Action::Create
            } else if !fact.is_enabled() || !fact.is_active() {
                Action::Update
            } else {
                Action::NoOp
            };
            let before = if fact.exists() {
                json!({ "enabled": fact.enabled, "active": fact.active })
            } else {
                Value::Null
            };
            if !fact.is_enabled() {
                self.services.push(
                    Step::new(StepKind::EnableUnit {
                        unit: service.unit.clone(),
                    })
                    .because(if fact.exists() { "disabled" } else { "new" }),
                );
            }
            // The database's server is started or restarted before its SQL, not here.
            if Some(&service.unit) != database_unit.as_ref() {
                let steps = self.run_step(&service.unit, fact.is_active());
                self.services.extend(steps);
            }
            self.changes.push(
                Change::new(ResourceKind::Service, service.unit.as_str(), action)
                    .before(before)
                    .after(json!({ "enabled": "enabled", "active": "active" })),
            );
        }
        let unwanted: Vec<UnitName> = self
            .record
            .services
            .iter()
            .filter(|unit| !self.wanted.services.iter().any(|s| &s.unit == *unit))
            .cloned()
            .collect();
        for unit in unwanted {
            let fact = self.facts.services.get(&unit).cloned().unwrap_or_default();
            self.changes.push(
                Change::new(ResourceKind::Service, unit.as_str(), Action::Delete)
                    .before(json!({ "enabled": fact.enabled, "active": fact.active })),
            );
            self.stop.push(Step::new(StepKind::DisableUnit { unit }));
        }
    }

    /// The steps that make `unit` run what it should: a restart or reload when something
    /// changed (reload starts a stopped unit), else a start when it is not running; then,
    /// when the service has a health check, a wait until it passes.
    pub(super) fn run_step(&self, unit: &UnitName, active: bool) -> Vec<Step> {
        let step = match self.trigger_reason(unit) {
            Some((Trigger::Restart, because)) => {
                Step::new(StepKind::RestartUnit { unit: unit.clone() })
                    .because(because)
                    .undone_by(StepKind::RestartUnit { unit: unit.clone() })
            }
            Some((Trigger::Reload, because)) => {
                Step::new(StepKind::ReloadUnit { unit: unit.clone() })
                    .because(because)
                    .undone_by(StepKind::ReloadUnit { unit: unit.clone() })
            }
            None if !active => {
                Step::new(StepKind::StartUnit { unit: unit.clone() }).because("not running")
            }
            None => return Vec::new(),
        };
        let mut steps = vec![step];
        steps.extend(self.health_step(unit));
        steps
    }

    /// The wait for `unit`'s health check, if it has one. Its undo waits again, after the
    /// undo of the restart before it, so a rolled-back host is seen serving again.
    pub(super) fn health_step(&self, unit: &UnitName) -> Option<Step> {
        let service = self.wanted.services.iter().find(|s| &s.unit == unit)?;
        let health = service.health.as_ref()?;
        let wait = StepKind::WaitHealthy {
            unit: unit.clone(),
            gate: health.gate.clone(),
            timeout_seconds: health.timeout_seconds,
        };
        Some(Step::new(wait.clone()).undone_by(wait))
    }
}
