//! The few Docker CLI calls the lab needs, with errors that say how to get Docker working.

use std::time::Duration;

use serde::Deserialize;

use super::LabError;
use crate::process;

const QUICK: Duration = Duration::from_secs(60);

/// Checks that a Docker engine answers.
pub async fn ensure_available() -> Result<(), LabError> {
    match process::run(
        "docker",
        ["info", "--format", "{{.ServerVersion}}"],
        None,
        QUICK,
    )
    .await
    {
        Err(process::ProcessError::Spawn { .. }) => Err(LabError::DockerMissing),
        Ok(output) if output.success => Ok(()),
        Ok(output) => Err(LabError::DockerNotRunning {
            message: process::tail(&output.stderr, 2),
        }),
        Err(error) => Err(LabError::Docker(error)),
    }
}

/// Runs `docker ARGS`, failing on a non-zero exit.
pub async fn docker(args: &[&str]) -> Result<String, LabError> {
    Ok(process::check("docker", args, None, QUICK).await?.stdout)
}

/// Runs `docker ARGS` with `stdin`, failing on a non-zero exit.
pub async fn docker_with_input(args: &[&str], stdin: &[u8]) -> Result<String, LabError> {
    Ok(process::check("docker", args, Some(stdin), QUICK)
        .await?
        .stdout)
}

/// Whether an image exists locally.
pub async fn image_exists(image: &str) -> Result<bool, LabError> {
    Ok(process::run(
        "docker",
        ["image", "inspect", "--format", "{{.Id}}", image],
        None,
        QUICK,
    )
    .await?
    .success)
}

/// A Docker network, as `docker network inspect` describes it.
#[derive(Debug, Clone)]
pub struct Network {
    /// Its name.
    pub name: String,
    /// Its subnets.
    pub subnets: Vec<ipnet::IpNet>,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawNetwork {
    name: String,
    #[serde(rename = "IPAM")]
    ipam: RawIpam,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawIpam {
    #[serde(default)]
    config: Option<Vec<RawIpamConfig>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawIpamConfig {
    #[serde(default)]
    subnet: Option<String>,
}

/// Every Docker network with its subnets and labels.
pub async fn networks() -> Result<Vec<Network>, LabError> {
    let ids = docker(&["network", "ls", "--quiet", "--no-trunc"]).await?;
    let ids: Vec<&str> = ids.lines().filter(|l| !l.is_empty()).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["network", "inspect"];
    args.extend(ids);
    let text = docker(&args).await?;
    let raw: Vec<RawNetwork> =
        serde_json::from_str(&text).map_err(|source| LabError::DockerOutput {
            what: "docker network inspect",
            source,
        })?;
    Ok(raw
        .into_iter()
        .map(|n| Network {
            name: n.name,
            subnets: n
                .ipam
                .config
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c.subnet.as_deref()?.parse().ok())
                .collect(),
            labels: n.labels.unwrap_or_default(),
        })
        .collect())
}

/// A container, as `docker ps -a` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Container {
    /// Its ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its name.
    #[serde(rename = "Names")]
    pub name: String,
    /// `running`, `exited`, `created`...
    #[serde(rename = "State")]
    pub state: String,
    /// Its labels, `k=v,k=v`.
    #[serde(rename = "Labels")]
    pub labels: String,
}

impl Container {
    /// The value of `label`, if set.
    pub fn label(&self, label: &str) -> Option<&str> {
        self.labels
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == label)
            .map(|(_, value)| value)
    }
}

/// Containers carrying `label=value` (running or not).
pub async fn containers_labelled(label: &str, value: &str) -> Result<Vec<Container>, LabError> {
    let filter = format!("label={label}={value}");
    let text = docker(&[
        "ps",
        "--all",
        "--no-trunc",
        "--filter",
        &filter,
        // Only the fields we read: `{{json .}}` makes Docker work out every field of every
        // container (a quarter of a second for a 50-host lab, on every run that connects).
        "--format",
        r#"{"ID":{{json .ID}},"Names":{{json .Names}},"State":{{json .State}},"Labels":{{json .Labels}}}"#,
    ])
    .await?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).map_err(|source| LabError::DockerOutput {
                what: "docker ps",
                source,
            })
        })
        .collect()
}
