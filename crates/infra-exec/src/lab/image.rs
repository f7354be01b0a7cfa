//! The lab's base images: Debian 12 (bookworm) or 13 (trixie) with systemd as PID 1 and sshd,
//! each built once and cached.
//!
//! Where `debian:<release>` can be had (a local image or a registry), the image is built from it
//! with `docker build`; otherwise from a `debootstrap` root filesystem imported with
//! `docker import`. Both run the same customisation script, so both give the same host: no SSH
//! host keys in the image (each container generates its own at first boot) and an empty
//! machine-id (each container gets its own).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use infra_topology::Release;

use super::{LabError, Reporter, docker};
use crate::process;

/// The recipe's number: it changes whenever the recipe does, so an old cached image is never
/// used with a new recipe.
const RECIPE: u32 = 2;

/// The image the lab hosts of `release` run, e.g. `infra-lab:bookworm-2`.
pub fn image(release: Release) -> String {
    format!("infra-lab:{}-{RECIPE}", release.codename())
}

/// The Debian packages of a lab host besides the base system.
const PACKAGES: &str = "systemd,systemd-sysv,dbus,openssh-server,iproute2,ca-certificates,sudo";

/// Runs inside the new root filesystem (chroot or `docker build`).
const CUSTOMISE: &str = r#"set -e
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/infra-lab-hostkeys.service <<'UNIT'
[Unit]
Description=Generate this host's own SSH host keys (infra lab)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target ssh.service
UNIT
mkdir -p /etc/systemd/system/multi-user.target.wants /etc/systemd/system/ssh.service.wants
ln -sf /etc/systemd/system/infra-lab-hostkeys.service /etc/systemd/system/multi-user.target.wants/infra-lab-hostkeys.service
ln -sf /etc/systemd/system/infra-lab-hostkeys.service /etc/systemd/system/ssh.service.wants/infra-lab-hostkeys.service
# Timers that wake at random times on a lab host: apt-daily takes apt's lock in the middle of a
# test's apply, and the others have nothing to do in a container. (Measured idle: 9 MiB a host.)
for t in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null /etc/systemd/system/$t
done
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/*
"#;

/// How the image was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource {
    /// It was already there.
    Cached,
    /// Built from `debian:<release>`.
    BuiltFromDebianImage,
    /// Built from a debootstrap root filesystem.
    BuiltWithDebootstrap,
}

/// Makes sure the image of `release` exists, building it if needed.
pub async fn ensure(
    release: Release,
    mirror: &str,
    reporter: &dyn Reporter,
) -> Result<ImageSource, LabError> {
    let image = image(release);
    if docker::image_exists(&image).await? {
        return Ok(ImageSource::Cached);
    }
    let base = format!("debian:{}", release.codename());
    if debian_image_available(&base, reporter).await? {
        reporter.step(None, &format!("building `{image}` from `{base}`"));
        build_from_debian_image(&base, &image).await?;
        return Ok(ImageSource::BuiltFromDebianImage);
    }
    reporter.step(
        None,
        &format!("building `{image}` with debootstrap (about a minute, once)"),
    );
    build_with_debootstrap(release, &image, mirror).await?;
    Ok(ImageSource::BuiltWithDebootstrap)
}

async fn debian_image_available(base: &str, reporter: &dyn Reporter) -> Result<bool, LabError> {
    if docker::image_exists(base).await? {
        return Ok(true);
    }
    let pulled = process::run("docker", ["pull", base], None, Duration::from_secs(300)).await;
    match pulled {
        Ok(output) if output.success => Ok(true),
        Ok(_) | Err(process::ProcessError::TimedOut { .. }) => {
            reporter.step(None, "no registry reachable: falling back to debootstrap");
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

async fn build_from_debian_image(base: &str, image: &str) -> Result<(), LabError> {
    let packages = PACKAGES.replace(',', " ");
    let script = CUSTOMISE.replace('\n', "\\n").replace('\'', "'\"'\"'");
    let dockerfile = format!(
        "FROM {base}\n\
         RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {packages}\n\
         RUN printf '%s' '{script}' > /tmp/customise.sh && sh /tmp/customise.sh && rm /tmp/customise.sh\n\
         ENV container=docker\n\
         STOPSIGNAL SIGRTMIN+3\n\
         CMD [\"/sbin/init\"]\n"
    );
    process::check(
        "docker",
        ["build", "--tag", image, "--label", "infra.lab=image", "-"],
        Some(dockerfile.as_bytes()),
        Duration::from_secs(900),
    )
    .await?;
    Ok(())
}

async fn build_with_debootstrap(
    release: Release,
    image: &str,
    mirror: &str,
) -> Result<(), LabError> {
    if process::run("debootstrap", ["--version"], None, Duration::from_secs(30))
        .await
        .is_err()
    {
        return Err(LabError::DebootstrapMissing);
    }
    let scratch = tempfile::Builder::new()
        .prefix("infra-lab-rootfs-")
        .tempdir_in(std::env::temp_dir())
        .map_err(|source| LabError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    let root = scratch.path().join("root");
    let root_text = root.display().to_string();
    let include = format!("--include={PACKAGES}");
    process::check(
        "debootstrap",
        [
            "--variant=minbase",
            include.as_str(),
            release.codename(),
            root_text.as_str(),
            mirror,
        ],
        None,
        Duration::from_secs(1200),
    )
    .await
    .map_err(LabError::Debootstrap)?;
    process::check(
        "chroot",
        [root_text.as_str(), "/bin/sh", "-e"],
        Some(CUSTOMISE.as_bytes()),
        Duration::from_secs(120),
    )
    .await?;
    import(&root, image).await
}

/// `tar -C ROOT -c . | docker import ... - IMAGE`
async fn import(root: &Path, image: &str) -> Result<(), LabError> {
    let mut tar = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(root)
        .args(["-c", "."])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| process::ProcessError::Spawn {
            program: "tar".to_owned(),
            source,
        })?;
    let tar_out: Stdio = tar
        .stdout
        .take()
        .and_then(|out| out.try_into().ok())
        .ok_or(LabError::ImageImport {
            message: "cannot connect tar to docker import".to_owned(),
        })?;
    let import = tokio::process::Command::new("docker")
        .args([
            "import",
            "--change",
            "CMD [\"/sbin/init\"]",
            "--change",
            "ENV container=docker",
            "--change",
            "LABEL infra.lab=image",
            "-",
            image,
        ])
        .stdin(tar_out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let (import, tar) = tokio::join!(import, tar.wait());
    let import = import.map_err(|source| process::ProcessError::Spawn {
        program: "docker".to_owned(),
        source,
    })?;
    let tar_ok = tar.map(|s| s.success()).unwrap_or(false);
    if !import.status.success() || !tar_ok {
        return Err(LabError::ImageImport {
            message: process::tail(&String::from_utf8_lossy(&import.stderr), 4),
        });
    }
    Ok(())
}
