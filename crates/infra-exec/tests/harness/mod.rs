//! The example topology on a fleet of fake hosts, run the way the binary runs it: gather,
//! plan, take the hosts' locks, execute, give the locks back.
#![allow(dead_code, reason = "each test file uses a different part")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use infra_exec::executor::{self, Cancel, Event, Execution, MaxFail, Report, Reporter};
use infra_exec::fake::{FakeFleet, FakeHost};
use infra_exec::gather::{self, Gathered};
use infra_exec::locks;
use infra_plan::facts::GatherRequest;
use infra_plan::hash::Fingerprinter;
use infra_plan::lock::{LockHolder, LockId};
use infra_plan::plan::{self, Plan, PlanInput, PlanMode, TierOrder};
use infra_plan::{DesiredState, EdgeCertificate, Templates, desired_state};
use infra_topology::{HostName, Secret, SecretSource, SqlName, Topology};

/// The test secrets.
pub const SECRETS: [(&str, &str); 5] = [
    ("INFRA_STATS_PASSWORD", "stats-Secret-1"),
    ("INFRA_DB_APP_PASSWORD", "app-Secret-2"),
    ("INFRA_DB_REPL_PASSWORD", "repl-Secret-3"),
    ("INFRA_VRRP_PASSWORD", "vrrp4567"),
    ("INFRA_DB_MONITOR_PASSWORD", "monitor-Secret-6"),
];

/// The edge certificate's private key in tests.
pub const KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nTESTKEYMATERIALabcdefgh\n-----END PRIVATE KEY-----\n";

pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scale-up")
}

/// A copy of the example (so a test may edit it) and the fleet it runs on.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub fleet: FakeFleet,
    pub secrets: BTreeMap<String, String>,
    pub certificate: String,
    /// The certificate's private key.
    pub key: String,
    /// An earlier version's local records.
    pub local_records: BTreeMap<HostName, infra_plan::record::HostRecord>,
}

/// Everything one run needs, loaded from the copy as it is now.
pub struct Loaded {
    pub topology: Topology,
    pub desired: DesiredState,
    pub fingerprinter: Fingerprinter,
    pub order: TierOrder,
    pub passwords: BTreeMap<SqlName, Secret>,
}

/// A hook called on each event.
pub type EventHook = Box<dyn Fn(&Event) + Send + Sync>;

/// Events, kept.
#[derive(Default)]
pub struct Recorder {
    pub events: std::sync::Mutex<Vec<String>>,
    /// Called on each event (to send Ctrl-C at a given point).
    pub on_event: Option<EventHook>,
}

impl Reporter for Recorder {
    fn event(&self, event: Event) {
        if let Some(hook) = &self.on_event {
            hook(&event);
        }
        if let Ok(mut events) = self.events.lock() {
            events.push(format!("{event:?}"));
        }
    }
}

impl Lab {
    pub fn example() -> Lab {
        Lab::with(|text| text)
    }

    pub fn with(edit: impl FnOnce(String) -> String) -> Lab {
        let dir = tempfile::tempdir().expect("temporary folder");
        for sub in ["site", "app"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create");
            for entry in std::fs::read_dir(example_dir().join(sub)).expect("read") {
                let entry = entry.expect("entry");
                std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name()))
                    .expect("copy");
            }
        }
        let text = std::fs::read_to_string(example_dir().join("infra.yaml")).expect("example");
        std::fs::write(dir.path().join("infra.yaml"), edit(text)).expect("write");
        let hosts = [
            "lb1", "lb2", "web1", "web2", "app1", "app2", "db1", "db2", "mon1",
        ]
        .map(|h| HostName::new(h).expect("host"));
        Lab {
            dir,
            fleet: FakeFleet::new(hosts),
            secrets: SECRETS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            certificate: "-----BEGIN CERTIFICATE-----\nTESTCHAIN\n-----END CERTIFICATE-----\n"
                .to_owned(),
            local_records: BTreeMap::new(),
            key: KEY.to_owned(),
        }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("infra.yaml")
    }

    /// Replaces `old` with `new` in the topology.
    pub fn edit(&self, old: &str, new: &str) {
        let text = std::fs::read_to_string(self.file()).expect("read");
        assert!(text.contains(old), "`{old}` not in the topology");
        std::fs::write(self.file(), text.replacen(old, new, 1)).expect("write");
    }

    pub fn host(&self, name: &str) -> HostName {
        HostName::new(name).expect("host")
    }

    /// Changes a fake host.
    pub fn on<T>(&self, host: &str, change: impl FnOnce(&mut FakeHost) -> T) -> T {
        self.fleet
            .with_host(&self.host(host), change)
            .expect("a host of the fleet")
    }

    pub fn load(&self) -> Loaded {
        let secrets = self.secrets.clone();
        let lookup = move |name: &str| secrets.get(name).cloned();
        let loaded = infra_topology::load(&self.file(), &lookup).expect("the topology is valid");
        let topology = loaded.topology;
        let templates = Templates::load(topology.templates.as_deref()).expect("templates");
        let certificate = EdgeCertificate {
            chain_pem: self.certificate.clone(),
            key_pem: Secret::new(SecretSource::Env("KEY".to_owned()), self.key.clone()),
            renewal: None,
        };
        let desired = desired_state(&topology, &templates, Some(&certificate)).expect("renders");
        let values: Vec<&str> = topology.secrets().iter().map(|s| s.expose()).collect();
        let fingerprinter = Fingerprinter::new(topology.name.as_str(), &values);
        let passwords: BTreeMap<SqlName, Secret> = topology
            .database_users()
            .into_iter()
            .map(|user| (user.name.clone(), user.password.clone()))
            .collect();
        Loaded {
            order: TierOrder::of(&topology),
            topology,
            desired,
            fingerprinter,
            passwords,
        }
    }

    pub async fn gather(&self, loaded: &Loaded) -> Gathered {
        let requests = loaded
            .topology
            .hosts
            .iter()
            .map(|host| {
                let state = loaded.desired.host(&host.name).expect("a desired state");
                (
                    host.clone(),
                    GatherRequest::for_host(&loaded.topology.name, state),
                )
            })
            .collect();
        gather::gather(
            Arc::new(self.fleet.clone()),
            requests,
            10,
            gather::Connections::Keep,
        )
        .await
    }

    pub fn plan_of(&self, loaded: &Loaded, mode: PlanMode, gathered: &Gathered) -> Plan {
        plan::make(PlanInput {
            mode,
            desired: &loaded.desired,
            facts: &gathered.facts,
            unreachable: gathered.unreachable(),
            order: &loaded.order,
            fingerprinter: &loaded.fingerprinter,
            new_lineage: "0123456789abcdef".to_owned(),
            local_records: &self.local_records,
        })
    }

    /// Gathers and plans.
    pub async fn plan(&self, mode: PlanMode) -> (Loaded, Gathered, Plan) {
        let loaded = self.load();
        let gathered = self.gather(&loaded).await;
        let plan = self.plan_of(&loaded, mode, &gathered);
        (loaded, gathered, plan)
    }

    /// Runs `plan` as `infra apply` does: lock every host it changes (checking their
    /// serials), execute, give the locks back.
    pub async fn run(
        &self,
        loaded: &Loaded,
        gathered: &Gathered,
        plan: &Plan,
        settings: RunSettings,
    ) -> Result<Report, locks::AcquireError> {
        let lock = LockId::random();
        let holder = LockHolder {
            id: lock.clone(),
            user: "tester".to_owned(),
            controller: "test-machine".to_owned(),
            pid: 1,
            operation: "apply".to_owned(),
            topology: loaded.topology.name.to_string(),
            ci: None,
            since: 0,
            expires: 0,
        };
        let serials: BTreeMap<HostName, Option<Option<u64>>> = plan
            .changed_hosts()
            .into_iter()
            .map(|h| (h.clone(), plan.host(h).map(|p| p.expects.serial)))
            .collect();
        let never = || false;
        locks::acquire_all(
            &gathered.transports,
            &serials,
            &holder,
            &loaded.topology.name,
            Duration::ZERO,
            10,
            &never,
        )
        .await?;
        let facts = gathered.facts_by_host();
        let execution = Execution {
            plan,
            desired: &loaded.desired,
            passwords: loaded.passwords.clone(),
            facts: &facts,
            fingerprinter: &loaded.fingerprinter,
            lock: lock.clone(),
            parallelism: settings.parallelism,
            max_fail: settings.max_fail,
            cancel: settings.cancel,
            reporter: settings.reporter,
        };
        let report = executor::execute(&execution, &gathered.transports).await;
        let hosts: Vec<HostName> = serials.keys().cloned().collect();
        locks::release_all(&gathered.transports, &hosts, &lock, 10).await;
        Ok(report)
    }

    /// Plans and runs `mode` with default settings.
    pub async fn converge(&self, mode: PlanMode) -> Report {
        let (loaded, gathered, plan) = self.plan(mode).await;
        self.run(&loaded, &gathered, &plan, RunSettings::default())
            .await
            .expect("the locks are free")
    }
}

/// How a run runs.
pub struct RunSettings {
    pub parallelism: usize,
    pub max_fail: MaxFail,
    pub cancel: Cancel,
    pub reporter: Arc<dyn Reporter>,
}

impl Default for RunSettings {
    fn default() -> RunSettings {
        RunSettings {
            parallelism: 10,
            max_fail: MaxFail::Count(0),
            cancel: Cancel::default(),
            reporter: Arc::new(Recorder::default()),
        }
    }
}
