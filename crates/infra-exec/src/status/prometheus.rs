//! Prometheus's own view, read on a monitoring host: whether each target is up and which
//! alerts fire (its HTTP API, `/api/v1/targets` and `/api/v1/alerts`).

use base64::Engine as _;
use serde::Deserialize;

use super::StatusLine;

#[derive(Deserialize)]
struct Answer<T> {
    status: String,
    data: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Targets {
    active_targets: Vec<Target>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    labels: std::collections::BTreeMap<String, String>,
    health: String,
    #[serde(default)]
    last_error: String,
}

#[derive(Deserialize)]
struct Alerts {
    alerts: Vec<Alert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
    state: String,
    #[serde(default)]
    active_at: String,
}

/// The name of the check that fails when Prometheus's API does not answer (or not readably).
pub const API: &str = "prometheus API";

/// The lines of one API answer (`what` is `targets` or `alerts`, `body` its base64 text).
pub(super) fn read(what: &str, body: &str) -> Vec<StatusLine> {
    let failed = |detail: String| {
        vec![StatusLine {
            kind: "check".to_owned(),
            name: format!("{API} {what}"),
            ok: false,
            detail,
        }]
    };
    let text = match base64::engine::general_purpose::STANDARD.decode(body.trim()) {
        Ok(text) if !text.is_empty() => text,
        Ok(_) | Err(_) => return failed("no answer from Prometheus's API".to_owned()),
    };
    let parsed = match what {
        "targets" => serde_json::from_slice::<Answer<Targets>>(&text)
            .map(|answer| (answer.status, targets(answer.data))),
        "alerts" => serde_json::from_slice::<Answer<Alerts>>(&text)
            .map(|answer| (answer.status, alerts(answer.data))),
        _ => return Vec::new(),
    };
    match parsed {
        Ok((status, lines)) if status == "success" => lines,
        Ok((status, _)) => failed(format!("Prometheus's API answered `{status}`")),
        Err(error) => failed(format!("Prometheus's API answer does not read: {error}")),
    }
}

fn targets(data: Targets) -> Vec<StatusLine> {
    let mut lines: Vec<StatusLine> = data
        .active_targets
        .into_iter()
        .map(|target| {
            let label = |key: &str| target.labels.get(key).cloned().unwrap_or_default();
            let who = match target.labels.get("host") {
                Some(host) => host.clone(),
                None => label("instance"),
            };
            let up = target.health == "up";
            StatusLine {
                kind: "target".to_owned(),
                name: format!("{} {who}", label("job")),
                ok: up,
                detail: if up || target.last_error.is_empty() {
                    target.health
                } else {
                    format!("{}: {}", target.health, target.last_error)
                },
            }
        })
        .collect();
    lines.sort_by(|a, b| a.name.cmp(&b.name));
    lines
}

fn alerts(data: Alerts) -> Vec<StatusLine> {
    let mut lines: Vec<StatusLine> = data
        .alerts
        .into_iter()
        .map(|alert| {
            let name = alert
                .labels
                .get("alertname")
                .cloned()
                .unwrap_or_else(|| "(unnamed)".to_owned());
            let summary = alert
                .annotations
                .get("summary")
                .cloned()
                .unwrap_or_default();
            StatusLine {
                kind: "alert".to_owned(),
                name,
                ok: alert.state != "firing",
                detail: format!("{} since {}: {summary}", alert.state, alert.active_at),
            }
        })
        .collect();
    lines.sort_by(|a, b| a.name.cmp(&b.name).then(a.detail.cmp(&b.detail)));
    if lines.iter().all(|l| l.ok) {
        lines.push(StatusLine {
            kind: "check".to_owned(),
            name: "alerts".to_owned(),
            ok: true,
            detail: "none firing".to_owned(),
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn encoded(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn targets_read_as_up_or_down_with_the_scrape_error() {
        let body = r#"{"status":"success","data":{"activeTargets":[
            {"labels":{"job":"node","instance":"10.0.0.21:9100","host":"web2"},"health":"down","lastError":"connection refused"},
            {"labels":{"job":"node","instance":"10.0.0.21:9100","host":"web1"},"health":"up","lastError":""}
        ],"droppedTargets":[]}}"#;
        let lines = read("targets", &encoded(body));
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].name, "node web1");
        assert!(lines[0].ok);
        assert_eq!(lines[1].name, "node web2");
        assert!(!lines[1].ok);
        assert_eq!(lines[1].detail, "down: connection refused");
    }

    #[test]
    fn a_firing_alert_fails_and_a_pending_one_does_not() {
        let body = r#"{"status":"success","data":{"alerts":[
            {"labels":{"alertname":"BackendServerDown"},"annotations":{"summary":"web2 is down"},"state":"firing","activeAt":"2026-11-23T00:00:00Z"},
            {"labels":{"alertname":"ReplicaLagging"},"annotations":{},"state":"pending","activeAt":"2026-11-23T00:00:05Z"}
        ]}}"#;
        let lines = read("alerts", &encoded(body));
        assert_eq!(lines.len(), 2);
        assert!(!lines[0].ok);
        assert!(lines[0].detail.starts_with("firing since"));
        assert!(lines[0].detail.ends_with("web2 is down"));
        assert!(lines[1].ok);
        let quiet = read(
            "alerts",
            &encoded(r#"{"status":"success","data":{"alerts":[]}}"#),
        );
        assert_eq!(quiet.len(), 1);
        assert!(quiet[0].ok && quiet[0].detail == "none firing");
    }

    #[test]
    fn no_answer_or_a_bad_one_is_a_failed_check() {
        for body in [String::new(), encoded("not json"), "%%%".to_owned()] {
            let lines = read("targets", &body);
            assert_eq!(lines.len(), 1);
            assert!(!lines[0].ok);
            assert_eq!(lines[0].name, "prometheus API targets");
        }
    }
}
