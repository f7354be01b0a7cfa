//! Folders, files and the firewall table.

use infra_topology::RemotePath;
use serde_json::{Value, json};
use similar::TextDiff;

use super::{HostDiff, content_id};
use crate::desired::{CheckTarget, Display, FirewallWanted, ManagedFile, Origin, Sensitivity};
use crate::facts::{DirectoryFact, FileFact, Ownership, Shown};
use crate::hash::{Fingerprint, Sha256};
use crate::paths;
use crate::plan::change::{Action, Change, ResourceKind};
use crate::plan::{Backup, FileState, Precondition, Restore, Step, StepKind};

/// A unified diff from `old` to `new` with three lines of context, every line made visible
/// (a control character from a host's file is shown as `\x1b`, never sent to the terminal).
pub fn unified(path: &RemotePath, old: &str, new: &str) -> String {
    let old = infra_topology::text::visible(old);
    let new = infra_topology::text::visible(new);
    TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&format!("{path} (now)"), &format!("{path} (wanted)"))
        .to_string()
}

fn ownership_json(ownership: &Ownership) -> Value {
    json!({
        "owner": ownership.owner,
        "group": ownership.group,
        "mode": format!("{:04o}", ownership.mode),
    })
}

impl HostDiff<'_> {
    pub(super) fn directories(&mut self) {
        for directory in &self.wanted.directories {
            let after = json!({
                "owner": directory.owner, "group": directory.group, "mode": directory.mode.to_string(),
            });
            let fact = self.facts.directories.get(&directory.path);
            let (action, before) = match fact {
                Some(DirectoryFact::Present(ownership)) => {
                    let same = ownership.owner == directory.owner.as_str()
                        && ownership.group == directory.group.as_str()
                        && ownership.mode == directory.mode.0;
                    let action = if same { Action::NoOp } else { Action::Update };
                    (action, ownership_json(ownership))
                }
                Some(DirectoryFact::Absent) | None => (Action::Create, Value::Null),
            };
            let step = match action {
                Action::Create => Some(StepKind::CreateDirectory {
                    path: directory.path.clone(),
                    owner: directory.owner.clone(),
                    group: directory.group.clone(),
                    mode: directory.mode,
                }),
                Action::Update => Some(StepKind::FixDirectory {
                    path: directory.path.clone(),
                    owner: directory.owner.clone(),
                    group: directory.group.clone(),
                    mode: directory.mode,
                }),
                Action::NoOp | Action::Delete => None,
            };
            self.directories.extend(step.map(Step::new));
            self.changes.push(
                Change::new(ResourceKind::Directory, directory.path.as_str(), action)
                    .before(before)
                    .after(after),
            );
        }
        let mut gone: Vec<RemotePath> = self
            .record
            .directories
            .iter()
            .filter(|d| !self.wanted.directories.iter().any(|w| &w.path == *d))
            .cloned()
            .collect();
        // Deepest first, so a folder is empty when its turn comes.
        gone.sort_by_key(|d| std::cmp::Reverse(d.as_str().len()));
        for path in gone {
            self.changes.push(
                Change::new(ResourceKind::Directory, path.as_str(), Action::Delete)
                    .before(json!({ "created_by": "infra" }))
                    .note("removed if empty"),
            );
            self.cleanup
                .push(Step::new(StepKind::RemoveDirectory { path }));
        }
    }

    pub(super) fn files(&mut self) {
        // Files that go come first: a check of the whole tree (`nginx -t`) must not see
        // Debian's default site, or an old name of a renamed file, beside the new one.
        self.removed_files();
        self.unwanted_files();
        let wanted: Vec<ManagedFile> = self.wanted.files.clone();
        for file in &wanted {
            self.file(file);
        }
        let unit_files = paths::systemd_units();
        let touches_units = self.files.iter().any(|s| {
            matches!(&s.kind, StepKind::CommitFile { path, .. } if path.starts_with(&unit_files))
                || matches!(&s.kind, StepKind::RemoveFile { path, .. } if path.starts_with(&unit_files))
                || matches!(&s.kind, StepKind::RestoreRemovedFile { path } if path.starts_with(&unit_files))
        });
        if touches_units {
            self.after_files.push(
                Step::new(StepKind::DaemonReload)
                    .because("unit files changed")
                    .undone_by(StepKind::DaemonReload),
            );
        }
    }

    /// A file the topology wants.
    fn file(&mut self, file: &ManagedFile) {
        let fact = self
            .facts
            .files
            .get(&file.path)
            .unwrap_or(&FileFact::Absent);
        let sensitive = file.sensitivity == Sensitivity::Sensitive;
        let fingerprinter = self.input.fingerprinter;
        let shown_sha = |sha: &Sha256| -> Value {
            if sensitive {
                json!({ "fingerprint": fingerprinter.shown(sha.as_str().as_bytes()) })
            } else {
                json!({ "sha256": sha })
            }
        };
        let mut after = json!({
            "owner": file.owner, "group": file.group, "mode": file.mode.to_string(),
            "content": if sensitive { crate::PLACEHOLDER } else { "(see diff)" },
        });
        merge(&mut after, shown_sha(&file.sha256));
        let sensitive_keys: &'static [&'static str] = if sensitive { &["content"] } else { &[] };
        let (action, before, diff, note, expects) = match fact {
            FileFact::Absent => {
                let diff = match (&file.display, &file.origin) {
                    (Display::Text(text), Origin::Template(_) | Origin::Generated(_)) => {
                        Some(unified(&file.path, "", text))
                    }
                    (Display::Text(_) | Display::Binary, _) => None,
                };
                // A package installed in this run may bring a file of its own there first.
                let state = if self.installing.is_empty() {
                    FileState::Absent
                } else {
                    FileState::Any
                };
                (Action::Create, Value::Null, diff, None, state)
            }
            FileFact::Other => (
                Action::Update,
                json!({ "type": "not a regular file" }),
                None,
                Some("something that is not a file is in the way: it is replaced".to_owned()),
                FileState::Other,
            ),
            FileFact::File {
                ownership,
                sha256,
                shown,
            } => {
                let mut before = ownership_json(ownership);
                merge(&mut before, shown_sha(sha256));
                let state = FileState::Content(self.file_fingerprint(file.sensitivity, sha256));
                if *sha256 == file.sha256 {
                    let same = ownership.owner == file.owner.as_str()
                        && ownership.group == file.group.as_str()
                        && ownership.mode == file.mode.0;
                    let action = if same { Action::NoOp } else { Action::Update };
                    (action, before, None, None, state)
                } else {
                    let (diff, note) = self.content_diff(file, shown.as_ref());
                    (Action::Update, before, diff, note, state)
                }
            }
        };
        let content_changes = match fact {
            FileFact::File { sha256, .. } => *sha256 != file.sha256,
            FileFact::Absent | FileFact::Other => true,
        };
        if content_changes {
            self.write_steps(file, fact, expects);
        } else if action == Action::Update {
            self.files.push(Step::new(StepKind::FixFile {
                path: file.path.clone(),
                owner: file.owner.clone(),
                group: file.group.clone(),
                mode: file.mode,
            }));
        }
        let mut change = Change::new(ResourceKind::File, file.path.as_str(), action)
            .before(before)
            .after(after)
            .sensitive(sensitive_keys)
            .diff(diff);
        let note = match (&file.note, action) {
            (Some(reason), Action::Create | Action::Update) => Some(reason.clone()),
            (Some(_) | None, _) => note,
        };
        if let Some(note) = note {
            change = change.note(note);
        }
        self.changes.push(change);
    }

    /// The diff of a changed file: of its text when it holds no secret now and held none when
    /// `infra` wrote it; of its redacted forms when it is or was sensitive (the host sends the
    /// redacted copy it kept, never the content); none when there is nothing safe to compare.
    fn content_diff(
        &self,
        file: &ManagedFile,
        shown: Option<&Shown>,
    ) -> (Option<String>, Option<String>) {
        let Display::Text(new) = &file.display else {
            return (None, Some("binary content changes".to_owned()));
        };
        match shown {
            Some(Shown::Content(old)) => match std::str::from_utf8(old) {
                Ok(old) => (Some(unified(&file.path, old, new)), None),
                Err(_) => (None, Some("the file now is not text".to_owned())),
            },
            Some(Shown::Redacted(old)) => (Some(unified(&file.path, old, new)), None),
            None => (
                None,
                Some(
                    "the current content is not shown: the file is or was sensitive, and `infra` has no redacted copy of it as it is now"
                        .to_owned(),
                ),
            ),
        }
    }

    /// Stage, check and commit a file whose content changes, each with its undo.
    fn write_steps(&mut self, file: &ManagedFile, fact: &FileFact, expects: FileState) {
        let content = content_id(self.input.fingerprinter, file);
        let recorded =
            self.record.files.contains_key(&file.path) || self.record.backups.contains(&file.path);
        let backup = match fact {
            FileFact::File { .. } | FileFact::Other if !recorded => Backup::KeepOriginal,
            FileFact::File { .. } | FileFact::Other | FileFact::Absent => Backup::Nothing,
        };
        let reason = match fact {
            FileFact::Absent => "missing",
            FileFact::Other | FileFact::File { .. } => "changed",
        };
        self.files.push(
            Step::new(StepKind::StageFile {
                path: file.path.clone(),
                content: content.clone(),
                owner: file.owner.clone(),
                group: file.group.clone(),
                mode: file.mode,
            })
            .undone_by(StepKind::DiscardStaged {
                path: file.path.clone(),
            }),
        );
        let check = file.check;
        if let Some(check) = check.filter(|c| c.target() == CheckTarget::Staged) {
            self.files.push(Step::new(StepKind::Check {
                check,
                path: file.path.clone(),
                target: CheckTarget::Staged,
            }));
        }
        self.files.push(
            Step::new(StepKind::CommitFile {
                path: file.path.clone(),
                content,
                sensitivity: file.sensitivity,
                backup,
                notify: file.notify.clone(),
            })
            .because(reason)
            .expecting(Precondition::File { state: expects })
            .undone_by(StepKind::RestorePrevious {
                path: file.path.clone(),
            }),
        );
        if let Some(check) = check.filter(|c| c.target() == CheckTarget::Installed) {
            self.files.push(Step::new(StepKind::Check {
                check,
                path: file.path.clone(),
                target: CheckTarget::Installed,
            }));
        }
        if let Some(notify) = &file.notify {
            self.trigger(
                &notify.unit,
                notify.trigger,
                format!("changed: {}", file.path),
            );
        }
    }

    /// Files that must not exist: removed when they are there, or when the package that brings
    /// them is installed in this run. Destroy puts back the ones `infra` removed.
    fn unwanted_files(&mut self) {
        let absent = self.wanted.absent_files.clone();
        for wanted in &absent {
            let present = matches!(
                self.facts.files.get(&wanted.path),
                Some(FileFact::File { .. } | FileFact::Other)
            );
            let arriving = self.installing.contains(&wanted.brought_by);
            let (action, note) = if present {
                (Action::Delete, None)
            } else if arriving {
                (
                    Action::Delete,
                    Some(format!(
                        "`{}`, installed in this run, brings it",
                        wanted.brought_by
                    )),
                )
            } else {
                (Action::NoOp, None)
            };
            if action == Action::Delete {
                self.files.push(
                    Step::new(StepKind::RemoveUnwantedFile {
                        path: wanted.path.clone(),
                    })
                    .expecting(Precondition::File {
                        state: FileState::Any,
                    })
                    .undone_by(StepKind::RestorePrevious {
                        path: wanted.path.clone(),
                    }),
                );
                self.trigger(
                    &wanted.reload,
                    crate::desired::Trigger::Reload,
                    format!("removed: {}", wanted.path),
                );
            }
            let before = if present {
                json!({ "exists": true })
            } else {
                Value::Null
            };
            let mut change =
                Change::new(ResourceKind::AbsentFile, wanted.path.as_str(), action).before(before);
            if let Some(note) = note {
                change = change.note(note);
            }
            self.changes.push(change);
        }
    }

    /// Files in the record that are no longer wanted: removed (their original put back), and
    /// files `infra` removed that no longer need to be gone: put back. First, so a renamed
    /// file's old copy is gone before the new one is checked.
    fn removed_files(&mut self) {
        let gone: Vec<(RemotePath, crate::record::RecordedFile)> = self
            .record
            .files
            .iter()
            .filter(|(path, _)| self.wanted.file(path).is_none())
            .map(|(path, recorded)| (path.clone(), recorded.clone()))
            .collect();
        for (path, recorded) in gone {
            let restore = if self.record.backups.contains(&path) {
                Restore::Original
            } else {
                Restore::Nothing
            };
            let fact = self.facts.files.get(&path).unwrap_or(&FileFact::Absent);
            let state = match fact {
                FileFact::Absent => FileState::Absent,
                FileFact::Other => FileState::Other,
                FileFact::File { sha256, .. } => {
                    FileState::Content(self.file_fingerprint(recorded.sensitivity, sha256))
                }
            };
            let note = match restore {
                Restore::Original => "the original it replaced is put back",
                Restore::Nothing => "written by `infra`",
            };
            self.changes.push(
                Change::new(ResourceKind::File, path.as_str(), Action::Delete)
                    .before(json!({ "written_by": "infra" }))
                    .note(note),
            );
            self.files.push(
                Step::new(StepKind::RemoveFile {
                    path: path.clone(),
                    restore,
                })
                .expecting(Precondition::File { state })
                .undone_by(StepKind::RestorePrevious { path }),
            );
        }
        let put_back: Vec<RemotePath> = self
            .record
            .removed
            .iter()
            .filter(|path| !self.wanted.absent_files.iter().any(|a| &a.path == *path))
            .cloned()
            .collect();
        for path in put_back {
            self.changes.push(
                Change::new(ResourceKind::AbsentFile, path.as_str(), Action::Delete)
                    .before(json!({ "removed_by": "infra" }))
                    .note("put back from its backup"),
            );
            self.files
                .push(Step::new(StepKind::RestoreRemovedFile { path }));
        }
    }

    /// How a file's content is named in a plan: its SHA-256, or a keyed fingerprint when the
    /// file is or was sensitive.
    pub(super) fn file_fingerprint(&self, sensitivity: Sensitivity, sha: &Sha256) -> Fingerprint {
        match sensitivity {
            Sensitivity::Plain => Fingerprint::from(sha),
            Sensitivity::Sensitive => self.input.fingerprinter.full(sha.as_str().as_bytes()),
        }
    }

    pub(super) fn firewall(&mut self) {
        let fact = &self.facts.firewall;
        match self.wanted.firewall {
            FirewallWanted::Loaded => {
                let rules = self
                    .wanted
                    .file(&paths::firewall_nft())
                    .map(|f| f.sha256.clone());
                let file_changes = self.files.iter().any(|s| {
                    matches!(&s.kind, StepKind::CommitFile { path, .. } if *path == paths::firewall_nft())
                });
                let (action, reason) = if fact.loaded.is_none() {
                    (Action::Create, "not loaded")
                } else if !fact.is_current() {
                    (Action::Update, "changed since `infra` loaded it")
                } else if file_changes {
                    (Action::Update, "its rules changed")
                } else if fact.recorded_file != rules {
                    (Action::Update, "its rules were written but not loaded")
                } else {
                    (Action::NoOp, "")
                };
                let before = match (&fact.loaded, fact.is_current()) {
                    (None, _) => Value::Null,
                    (Some(_), current) => {
                        json!({ "loaded": true, "changed_since_apply": !current })
                    }
                };
                if action != Action::NoOp {
                    // Undone after the rules file is put back: reloaded from it, or, on a host
                    // that had no table (and so no file), taken away.
                    let undo = if fact.loaded.is_some() {
                        StepKind::LoadFirewall
                    } else {
                        StepKind::RemoveFirewall
                    };
                    self.after_files.push(
                        Step::new(StepKind::LoadFirewall)
                            .because(reason)
                            .undone_by(undo),
                    );
                }
                self.changes.push(
                    Change::new(ResourceKind::Firewall, "inet infra", action)
                        .before(before)
                        .after(json!({ "loaded": true, "from": paths::firewall_nft() })),
                );
            }
            FirewallWanted::Absent => {
                if self.record.firewall {
                    self.after_files.push(Step::new(StepKind::RemoveFirewall));
                    self.changes.push(
                        Change::new(ResourceKind::Firewall, "inet infra", Action::Delete)
                            .before(json!({ "loaded": fact.loaded.is_some() })),
                    );
                }
            }
        }
    }
}

/// Adds `extra`'s keys to `value` (both objects).
fn merge(value: &mut Value, extra: Value) {
    if let (Value::Object(map), Value::Object(extra)) = (value, extra) {
        map.extend(extra);
    }
}
