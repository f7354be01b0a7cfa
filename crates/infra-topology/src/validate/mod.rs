//! Every semantic check of a topology, collecting all findings at once. One module per part
//! of the file; this one holds the checker and the topology as a whole.

mod app;
mod database;
mod firewall;
mod hosts;
mod load_balancer;
mod monitoring;
mod ports;
mod rollout;
mod values;
mod web;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{Name, Topology};
use crate::raw::{self, Sp};
use crate::reserved;
use crate::source::Position;

/// Looks up environment variables for `${env:NAME}` secrets (the binary passes the process
/// environment it read once; tests pass a map).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Resolves a host's DNS name to its addresses, or says why it cannot (the binary uses the
/// system's resolver, [`resolve_system`]; tests pass a map).
pub type Resolve<'a> = &'a dyn Fn(&str) -> Result<Vec<std::net::IpAddr>, String>;

/// The system's resolver (`getaddrinfo`: `/etc/hosts`, then DNS, as `/etc/nsswitch.conf` says).
pub fn resolve_system(name: &str) -> Result<Vec<std::net::IpAddr>, String> {
    use std::net::ToSocketAddrs as _;
    (name, 0)
        .to_socket_addrs()
        .map(|found| found.map(|a| a.ip()).collect())
        .map_err(|e| e.to_string())
}

/// Checks `raw` and builds the model. Returns `None` when any error was found; every finding
/// (errors and warnings) is added to `diagnostics`. `topology_file` is the file itself, which
/// an upload folder may not contain.
pub(crate) fn validate(
    raw: raw::RawTopology,
    base_dir: &Path,
    topology_file: &Path,
    env: EnvLookup<'_>,
    resolve_name: Resolve<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<Topology> {
    let mut checker = Checker {
        base_dir,
        topology_file,
        env,
        resolve_name,
        diagnostics,
        suggestions_left: SUGGESTION_BUDGET,
        secret_files: Vec::new(),
        upload_folders: Vec::new(),
    };
    checker.topology(raw)
}

/// "Did you mean" suggestions cost an edit distance against every known name; a file with
/// thousands of dangling references gets them for the first few only.
const SUGGESTION_BUDGET: usize = 50;

pub(crate) struct Checker<'a, 'd> {
    base_dir: &'a Path,
    topology_file: &'a Path,
    env: EnvLookup<'a>,
    resolve_name: Resolve<'a>,
    diagnostics: &'d mut Diagnostics,
    suggestions_left: usize,
    /// Files read as `${file:...}` secrets (canonical paths), with the key that named them.
    secret_files: Vec<(PathBuf, String)>,
    /// Folders uploaded to hosts (canonical paths), with the key and position that named them.
    upload_folders: Vec<(PathBuf, String, Position)>,
}

/// Host names declared under `hosts`, with where each is written.
type Known = BTreeMap<String, Position>;

impl Checker<'_, '_> {
    fn error(&mut self, position: Position, message: impl Into<String>) -> &mut Diagnostic {
        self.diagnostics
            .push_mut(Diagnostic::error(position, message))
    }

    fn warning(&mut self, position: Position, message: impl Into<String>) -> &mut Diagnostic {
        self.diagnostics
            .push_mut(Diagnostic::warning(position, message))
    }

    /// The closest of `known` to `word`, while the suggestion budget lasts.
    fn suggest<'k>(&mut self, word: &str, known: &[&'k str]) -> Option<&'k str> {
        if self.suggestions_left == 0 {
            return None;
        }
        self.suggestions_left -= 1;
        crate::node::closest(word, known)
    }

    fn topology(&mut self, raw: raw::RawTopology) -> Option<Topology> {
        let name = self.name(&raw.name, "topology name");
        if let Some(reserved) = reserved::topology_name(&raw.name.value) {
            self.error(
                raw.name.position,
                format!("`{}` cannot be a topology name", raw.name.value),
            )
            .expected("a name no file of Debian's collides with")
            .hint(reserved);
        }
        let templates = raw
            .templates
            .as_ref()
            .and_then(|t| self.local_folder(t, "templates", values::Upload::No));
        let hosts = self.hosts(&raw);
        let known: Known = raw
            .hosts
            .value
            .keys()
            .map(|k| (k.value.clone(), k.position))
            .collect();
        let firewall = self.firewall(&raw.firewall);
        let load_balancer = raw
            .load_balancer
            .as_ref()
            .and_then(|lb| self.load_balancer(lb, &known, &hosts, &firewall));
        let web = raw
            .web
            .as_ref()
            .and_then(|w| self.web(w, &known, &raw.name.value));
        let app = raw.app.as_ref().and_then(|a| self.app(a, &known));
        let database = raw.database.as_ref().and_then(|d| self.database(d, &known));
        let monitoring = raw
            .monitoring
            .as_ref()
            .and_then(|m| self.monitoring(m, &known, raw.database.as_ref()));
        if let Some(m) = &raw.monitoring {
            self.monitoring_exposure(m, &raw.firewall, &firewall);
        }
        let lab = self.lab(&raw, &hosts, load_balancer.as_ref());

        if raw.load_balancer.is_some() && raw.web.is_none() {
            self.error(
                raw.load_balancer
                    .as_ref()
                    .map_or(Position::UNKNOWN, |l| l.position),
                "a load balancer tier needs a web tier to send traffic to",
            )
            .hint("add a `web:` section with at least one host");
        }
        self.tier_membership(&raw, &known);
        self.port_collisions(&raw, &hosts);
        self.uploads_hold_no_secrets();

        if self.diagnostics.has_errors() {
            return None;
        }
        Some(Topology {
            name: name?,
            base_dir: self.base_dir.to_path_buf(),
            templates,
            hosts: hosts.into_iter().map(|(_, h)| h).collect(),
            load_balancer,
            web,
            app,
            database,
            monitoring,
            firewall,
            lab,
        })
    }

    /// A topology, host or app name.
    fn name(&mut self, name: &Sp<String>, what: &str) -> Option<Name> {
        let checked = Name::new(name.value.clone());
        if checked.is_none() {
            self.error(
                name.position,
                format!("`{}` is not a valid {what}", name.value),
            )
            .expected("a lowercase letter, then lowercase letters, digits and `-` (at most 63)")
            .hint("names end up in file paths, container names and shell commands");
        }
        checked
    }

    /// Hosts that are in no tier get a warning.
    fn tier_membership(&mut self, raw: &raw::RawTopology, known: &Known) {
        let mut used = BTreeSet::new();
        let lists = [
            raw.load_balancer.as_ref().map(|l| &l.value.hosts.value),
            raw.web.as_ref().map(|w| &w.value.hosts.value),
            raw.app.as_ref().map(|a| &a.value.hosts.value),
            raw.database
                .as_ref()
                .and_then(|d| d.value.replicas.as_ref().map(|r| &r.value)),
            raw.monitoring.as_ref().map(|m| &m.value.hosts.value),
        ];
        for list in lists.into_iter().flatten() {
            used.extend(list.iter().map(|n| n.value.clone()));
        }
        if let Some(db) = &raw.database {
            used.insert(db.value.primary.value.clone());
        }
        for (name, position) in known {
            if !used.contains(name) {
                let managed = if raw.firewall.enabled.as_ref().is_none_or(|e| e.value) {
                    "`infra` will only manage its firewall"
                } else {
                    "`infra` will manage nothing on it"
                };
                self.warning(*position, format!("host `{name}` is in no tier"))
                    .hint(format!("{managed}; add it to a tier or remove it"));
            }
        }
    }

    /// No folder that is uploaded to the hosts (and served, for the web tier) may hold a file
    /// the topology reads a secret from.
    fn uploads_hold_no_secrets(&mut self) {
        let findings: Vec<(Position, String)> = self
            .upload_folders
            .iter()
            .flat_map(|(folder, key, position)| {
                self.secret_files
                    .iter()
                    .filter(move |(file, _)| file.starts_with(folder))
                    .map(move |(file, secret)| {
                        (
                            *position,
                            format!(
                                "`{key}` holds `{}`, the secret file of `{secret}`",
                                file.display()
                            ),
                        )
                    })
            })
            .collect();
        for (position, message) in findings {
            self.error(position, message)
                .expected("secret files outside every folder that is uploaded to the hosts")
                .hint("move the secret file elsewhere (for example under `.infra/`, which is never uploaded)");
        }
    }
}
