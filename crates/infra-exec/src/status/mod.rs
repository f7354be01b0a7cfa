//! `infra status`: per host, whether each managed service is active and each health check
//! passes, checked on the host itself (so the firewall does not get in the way).

use infra_plan::shell::quote;
use infra_plan::{DatabaseRole, HostState};
use infra_topology::{Tier, TlsMode, Topology};

mod prometheus;

pub use prometheus::API as PROMETHEUS_API;

/// One line of the status: a service or a check, and whether it is fine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// `service` or `check`.
    pub kind: String,
    /// The unit or the check's name.
    pub name: String,
    /// Fine or not.
    pub ok: bool,
    /// What was seen (`active`, `HTTP 200`, the error...).
    pub detail: String,
}

const FUNCTIONS: &str = r#"set -u
export LC_ALL=C
service() { a=$(systemctl is-active "$1" 2>/dev/null); printf 'service\t%s\t%s\t%s\n' "$1" "$([ "$a" = active ] && echo ok || echo fail)" "${a:-unknown}"; }
http() {
  r=$(timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3; printf 'GET $4 HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3; head -n1 <&3" 2>/dev/null | tr -d '\r')
  case "$r" in *" 200 "*|*" 200") printf 'check\t%s\tok\t%s\n' "$1" "$r" ;; *) printf 'check\t%s\tfail\t%s\n' "$1" "${r:-no answer}" ;; esac
}
tcp() {
  if timeout 3 bash -c "</dev/tcp/$2/$3" 2>/dev/null; then printf 'check\t%s\tok\tport %s open\n' "$1" "$3"; else printf 'check\t%s\tfail\tport %s closed\n' "$1" "$3"; fi
}
sql() {
  if out=$(mariadb -N -B -e "$2" 2>&1); then printf 'check\t%s\tok\t%s\n' "$1" "$(printf '%s' "$out" | tr '\n\t' '  ')"; else printf 'check\t%s\tfail\t%s\n' "$1" "$(printf '%s' "$out" | head -n1)"; fi
}
replica() {
  s=$(mariadb --batch --vertical -e 'SHOW REPLICA STATUS' 2>/dev/null | awk -F': ' '/Slave_IO_Running:|Slave_SQL_Running:/ { printf "%s ", $2 }')
  case "$s" in "Yes Yes ") printf 'check\treplication\tok\tIO and SQL threads running\n' ;; *) printf 'check\treplication\tfail\t%s\n' "${s:-not configured}" ;; esac
}
# prometheus PORT PATH NAME: Prometheus's API answer, in base64 on one line (read by `parse`).
prometheus() {
  body=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; printf 'GET $2 HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3; cat <&3" 2>/dev/null | sed '1,/^\r$/d' | base64 -w0)
  printf 'prometheus\t%s\t%s\n' "$3" "$body"
}
vip() { if ip -4 addr show | grep -q " $1/"; then printf 'check\tvip\tok\tholds %s\n' "$1"; else printf 'check\tvip\tok\tbackup (does not hold %s)\n' "$1"; fi; }
"#;

/// The script that reports `state`'s services and health checks.
pub fn script(topology: &Topology, state: &HostState) -> String {
    let mut script = String::from(FUNCTIONS);
    for service in &state.services {
        script.push_str(&format!("service {}\n", quote(service.unit.as_str())));
    }
    for tier in &state.tiers {
        match tier {
            Tier::LoadBalancer => {
                if let Some(lb) = &topology.load_balancer {
                    script.push_str("tcp http 127.0.0.1 80\n");
                    if lb.tls.mode != TlsMode::Off {
                        script.push_str("tcp https 127.0.0.1 443\n");
                    }
                    if let Some(stats) = &lb.stats {
                        script.push_str(&format!("tcp stats 127.0.0.1 {}\n", stats.port));
                    }
                    script.push_str(&format!("vip {}\n", quote(&lb.vip.addr().to_string())));
                }
            }
            Tier::Web => {
                if let (Some(web), Some(lb)) = (&topology.web, &topology.load_balancer) {
                    let path = quote(&lb.health_check.path);
                    script.push_str(&format!("http health 127.0.0.1 {} {path}\n", web.port));
                    script.push_str(&format!(
                        "http stub_status 127.0.0.1 {} /nginx_status\n",
                        web.status_port
                    ));
                }
            }
            Tier::App => {
                if let Some(app) = &topology.app {
                    script.push_str(&format!(
                        "http health 127.0.0.1 {} {}\n",
                        app.port,
                        quote(&app.health_path)
                    ));
                }
            }
            Tier::Monitoring => {
                if let Some(monitoring) = &topology.monitoring {
                    let port = monitoring.port;
                    script.push_str(&format!(
                        "prometheus {port} '/api/v1/targets?state=active' targets\nprometheus {port} /api/v1/alerts alerts\n"
                    ));
                }
            }
            Tier::Database => {
                if let Some(objects) = &state.database {
                    script.push_str("sql server 'SELECT VERSION()'\n");
                    if objects.role == DatabaseRole::Replica {
                        script.push_str("replica\n");
                    }
                }
            }
        }
    }
    script
}

/// Reads the script's output.
pub fn parse(output: &str) -> Vec<StatusLine> {
    let mut lines = Vec::new();
    for line in output.lines() {
        let mut fields = line.splitn(4, '\t');
        let (Some(kind), Some(name), Some(verdict)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let detail = fields.next().unwrap_or_default();
        match kind {
            "service" | "check" => lines.push(StatusLine {
                kind: kind.to_owned(),
                name: name.to_owned(),
                ok: verdict == "ok",
                detail: detail.to_owned(),
            }),
            "prometheus" => lines.extend(prometheus::read(name, verdict)),
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse_and_bad_lines_are_skipped() {
        let lines =
            parse("service\tnginx.service\tok\tactive\ncheck\thealth\tfail\tno answer\nnoise\n");
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ok && lines[0].name == "nginx.service");
        assert!(!lines[1].ok && lines[1].detail == "no answer");
    }
}
