//! `infra render`.

use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use infra_plan::{Display, HostState, ManagedFile, Origin, Sensitivity};

use crate::certificate::{self, Keep};
use crate::cli::RenderArgs;
use crate::exit::Exit;
use crate::ops::{self, SecretValues};
use crate::output::Hinted;
use crate::settings::Settings;

/// Prints, or writes under `--out`, every file `apply` would put on each host.
pub fn run(settings: &Settings, args: &RenderArgs) -> anyhow::Result<Exit> {
    let Some(loaded) = ops::load(settings, SecretValues::Required)? else {
        return Ok(Exit::Error);
    };
    let topology = &loaded.topology;
    for wanted in &args.hosts {
        if !topology.hosts.iter().any(|h| h.name.as_str() == wanted) {
            let names: Vec<&str> = topology.hosts.iter().map(|h| h.name.as_str()).collect();
            anyhow::bail!(Hinted::new(
                format!(
                    "no host `{}` in the topology",
                    infra_topology::text::visible_line(wanted)
                ),
                format!("the hosts are: {}", names.join(", "))
            ));
        }
    }
    let templates = ops::templates(topology)?;
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
    match (file.sensitivity, &file.display) {
        (Sensitivity::Plain, _) => file.content.clone(),
        (Sensitivity::Sensitive, _) if show_sensitive => file.content.clone(),
        (Sensitivity::Sensitive, Display::Text(text)) => text.clone().into_bytes(),
        (Sensitivity::Sensitive, Display::Binary) => {
            crate::output::scrub("(sensitive value)").into_bytes()
        }
    }
}

fn origin(file: &ManagedFile) -> String {
    match &file.origin {
        Origin::Template(name) => format!("template {name}"),
        Origin::Upload(path) => format!("upload {path}"),
        Origin::Generated(what) => format!("generated {what}"),
    }
}

/// Writes `bytes` to standard output as they are (with `--show-sensitive` they hold the
/// secrets the user asked to see). A closed pipe ends the output quietly.
fn raw(out: &mut std::io::StdoutLock<'_>, bytes: &[u8]) -> bool {
    use std::io::Write as _;
    out.write_all(bytes).is_ok()
}

fn print_all(hosts: &[&HostState], show_sensitive: bool) -> anyhow::Result<Exit> {
    let mut out = std::io::stdout().lock();
    for host in hosts {
        let tiers: Vec<&str> = host.tiers.iter().map(|t| t.key()).collect();
        let packages: Vec<&str> = host.packages.iter().map(|p| p.as_str()).collect();
        let units: Vec<&str> = host.services.iter().map(|s| s.unit.as_str()).collect();
        let mut header = format!(
            "### host {} ({}) tiers: {}\n### packages: {}\n### services: {}\n",
            host.name,
            host.address,
            tiers.join(", "),
            packages.join(" "),
            units.join(" ")
        );
        for absent in &host.absent_files {
            header.push_str(&format!("### absent: {}\n", absent.path));
        }
        if !raw(&mut out, header.as_bytes()) {
            return Ok(Exit::Success);
        }
        for file in &host.files {
            let sensitive = file.sensitivity == Sensitivity::Sensitive && !show_sensitive;
            let header = format!(
                "### file {}:{} ({} {}:{}, {}{})\n",
                host.name,
                file.path,
                file.mode,
                file.owner,
                file.group,
                origin(file),
                if sensitive { ", sensitive" } else { "" }
            );
            let bytes = shown(file, show_sensitive);
            let body = match std::str::from_utf8(&bytes) {
                Ok(text) if text.ends_with('\n') => text.to_owned(),
                Ok(text) => format!("{text}\n"),
                Err(_) => format!("(binary, {} bytes, sha256 {})\n", bytes.len(), file.sha256),
            };
            if !raw(&mut out, header.as_bytes()) || !raw(&mut out, body.as_bytes()) {
                return Ok(Exit::Success);
            }
        }
        if !raw(&mut out, b"\n") {
            return Ok(Exit::Success);
        }
    }
    Ok(Exit::Success)
}

/// Writes the files under `dir/<host>/<path>`. Nothing is written through a link: a link
/// anywhere on the way is refused, and each file is created new (an existing one is
/// unlinked first, which removes a link rather than following it) with its final mode before
/// any byte is written.
fn write_tree(dir: &Path, hosts: &[&HostState], show_sensitive: bool) -> anyhow::Result<Exit> {
    let mut written = 0;
    ensure_folder(dir)?;
    for host in hosts {
        for file in &host.files {
            let relative: PathBuf =
                Path::new(host.name.as_str()).join(file.path.as_str().trim_start_matches('/'));
            let target = folders_to(dir, &relative)?;
            write_new(&target, &shown(file, show_sensitive), file.mode.0)?;
            written += 1;
        }
    }
    crate::outln!(
        "wrote {written} files for {} hosts under `{}`",
        hosts.len(),
        dir.display()
    );
    Ok(Exit::Success)
}

/// Makes `path` a folder (0700 when new), refusing a link in its place.
fn ensure_folder(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            anyhow::bail!(Hinted::new(
                format!(
                    "`{}` is a link: refusing to write through it",
                    path.display()
                ),
                "write into a folder of your own"
            ))
        }
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => anyhow::bail!("`{}` is not a folder", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .with_context(|| format!("cannot create `{}`", path.display())),
        Err(error) => Err(error).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

/// Creates the folders of `relative` under `root` one at a time, refusing links; returns the
/// file's full path.
fn folders_to(root: &Path, relative: &Path) -> anyhow::Result<PathBuf> {
    let components: Vec<Component<'_>> = relative.components().collect();
    let mut current = root.to_path_buf();
    for (index, component) in components.iter().enumerate() {
        let Component::Normal(part) = component else {
            anyhow::bail!("`{}` is not a plain relative path", relative.display());
        };
        current.push(part);
        if index + 1 < components.len() {
            ensure_folder(&current)?;
        }
    }
    Ok(current)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            anyhow::bail!(
                "`{}` is a folder: cannot write a file there",
                path.display()
            )
        }
        Ok(_) => std::fs::remove_file(path)
            .with_context(|| format!("cannot replace `{}`", path.display()))?,
        Err(_) => {}
    }
    const O_NOFOLLOW: i32 = 0o400000;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of `{}`", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}
