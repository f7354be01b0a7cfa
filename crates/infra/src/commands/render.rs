//! `infra render`.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use infra_plan::{HostState, ManagedFile, Origin};

use super::{Outcome, load, templates};
use crate::certificate::{self, Keep};
use crate::cli::{Cli, RenderArgs};
use crate::output::{Hinted, Style};

/// Prints, or writes under `--out`, every file `apply` would put on each host.
pub fn run(cli: &Cli, args: &RenderArgs, style: Style) -> anyhow::Result<Outcome> {
    let Some(loaded) = load(cli, style)? else {
        return Ok(Outcome::Failed);
    };
    let topology = &loaded.topology;
    for wanted in &args.hosts {
        if !topology.hosts.iter().any(|h| h.name.as_str() == wanted) {
            let names: Vec<&str> = topology.hosts.iter().map(|h| h.name.as_str()).collect();
            anyhow::bail!(Hinted::new(
                format!("no host `{wanted}` in the topology"),
                format!("the hosts are: {}", names.join(", "))
            ));
        }
    }
    let templates = templates(topology)?;
    let certificate = certificate::generated(topology, Keep::OnDisk)?;
    let desired = infra_plan::desired_state(topology, &templates, certificate.as_ref())?;
    let selected: Vec<&HostState> = desired
        .hosts
        .iter()
        .filter(|h| args.hosts.is_empty() || args.hosts.iter().any(|w| w == h.name.as_str()))
        .collect();
    match &args.out {
        Some(dir) => write_tree(dir, &selected, args.show_sensitive),
        None => print_all(&selected, args.show_sensitive),
    }
}

/// The bytes shown for `file`: the real content, or with secrets replaced.
fn shown(file: &ManagedFile, show_sensitive: bool) -> Vec<u8> {
    if show_sensitive || !file.sensitive {
        file.content.clone()
    } else {
        file.display.clone().unwrap_or_default().into_bytes()
    }
}

fn origin(file: &ManagedFile) -> String {
    match &file.origin {
        Origin::Template(name) => format!("template {name}"),
        Origin::Upload(path) => format!("upload {path}"),
        Origin::Generated(what) => format!("generated {what}"),
    }
}

fn print_all(hosts: &[&HostState], show_sensitive: bool) -> anyhow::Result<Outcome> {
    let mut out = std::io::stdout().lock();
    for host in hosts {
        let tiers: Vec<&str> = host.tiers.iter().map(|t| t.key()).collect();
        writeln!(
            out,
            "### host {} ({}) tiers: {}",
            host.name,
            host.address,
            tiers.join(", ")
        )?;
        writeln!(out, "### packages: {}", host.packages.join(" "))?;
        let units: Vec<&str> = host.services.iter().map(|s| s.unit.as_str()).collect();
        writeln!(out, "### services: {}", units.join(" "))?;
        for absent in &host.absent_files {
            writeln!(out, "### absent: {absent}")?;
        }
        for file in &host.files {
            writeln!(
                out,
                "### file {}:{} ({} {}:{}, {}{})",
                host.name,
                file.path,
                file.mode,
                file.owner,
                file.group,
                origin(file),
                if file.sensitive && !show_sensitive {
                    ", sensitive"
                } else {
                    ""
                }
            )?;
            let bytes = shown(file, show_sensitive);
            match std::str::from_utf8(&bytes) {
                Ok(text) => {
                    out.write_all(text.as_bytes())?;
                    if !text.ends_with('\n') {
                        writeln!(out)?;
                    }
                }
                Err(_) => writeln!(
                    out,
                    "(binary, {} bytes, sha256 {})",
                    bytes.len(),
                    file.sha256
                )?,
            }
        }
        writeln!(out)?;
    }
    Ok(Outcome::Success)
}

fn write_tree(dir: &Path, hosts: &[&HostState], show_sensitive: bool) -> anyhow::Result<Outcome> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut written = 0;
    for host in hosts {
        let root = dir.join(host.name.as_str());
        for file in &host.files {
            let relative = file.path.trim_start_matches('/');
            let target = root.join(relative);
            if let Some(parent) = target.parent() {
                fs_err::create_dir_all(parent)?;
            }
            fs_err::write(&target, shown(file, show_sensitive))?;
            fs_err::set_permissions(&target, std::fs::Permissions::from_mode(file.mode.0))
                .with_context(|| format!("cannot set the mode of `{}`", target.display()))?;
            written += 1;
        }
    }
    println!(
        "wrote {written} files for {} hosts under `{}`",
        hosts.len(),
        dir.display()
    );
    Ok(Outcome::Success)
}
