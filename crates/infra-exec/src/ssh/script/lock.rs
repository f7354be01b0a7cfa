//! The lock scripts. Taking the lock is one `rename(2)` of a complete folder onto
//! `/var/lib/infra/lock`: it succeeds for exactly one run (the target must not exist or be
//! empty), and the lock is never seen without its holder file.

use std::fmt::Write as _;

use infra_plan::lock::{Lease, LockFact, LockHolder};
use infra_plan::shell::quote;

use super::decode_text;
use crate::transport::{LockAnswer, LockRequest};

const HELD: &str = r#"held() {
  h=$(cat "$R/lock/holder" 2>/dev/null)
  e=$(printf '%s\n' "$h" | sed -n 's/^expires\t//p')
  lease=live; case "$e" in ''|*[!0-9]*) ;; *) [ "$(date +%s)" -gt "$e" ] && lease=expired ;; esac
  printf 'lock\t%s\t%s\t%s\n' "$1" "$(printf '%s' "$h" | base64 -w0)" "$lease"
}
mine() { [ "$(sed -n 's/^id\t//p' "$R/lock/holder" 2>/dev/null)" = "$1" ]; }
"#;

/// The script of `request`.
pub fn script(request: &LockRequest) -> String {
    let mut script = String::from("set -u\numask 077\nexport LC_ALL=C\nR=/var/lib/infra\n");
    script.push_str(HELD);
    match request {
        LockRequest::Acquire {
            holder,
            lease,
            serial,
            topology,
        } => {
            // The holder's times come from the host's clock, not the controller's.
            let mut lines = holder.to_file();
            lines = lines
                .lines()
                .filter(|l| !l.starts_with("since\t") && !l.starts_with("expires\t"))
                .map(|l| format!("{l}\n"))
                .collect();
            let expected = match serial {
                None => "any".to_owned(),
                Some(None) => "none".to_owned(),
                Some(Some(serial)) => serial.to_string(),
            };
            let _ = write!(
                script,
                r#"mkdir -p "$R" && chmod 700 "$R" || {{ printf 'lock\terror\n'; exit 0; }}
now=$(date +%s); exp=$((now + {lease}))
tmp="$R/lock.{id}"
rm -rf "$tmp"; mkdir "$tmp" || {{ printf 'lock\terror\n'; exit 0; }}
{{ printf '%s' {lines}; printf 'since\t%s\nexpires\t%s\n' "$now" "$exp"; }} > "$tmp/holder"
if mv -T "$tmp" "$R/lock" 2>/dev/null; then
  J="$R/record/"{topology}
  s=none; [ -f "$J" ] && s=$(sed -n 's/^serial\t//p' "$J" | tail -n 1)
  if [ {expected} = any ] || [ "$s" = {expected} ]; then printf 'lock\tacquired\n'
  else rm -rf "$R/lock"; printf 'lock\tserial\t%s\n' "$s"; fi
else
  rm -rf "$tmp"; held held
fi
"#,
                id = holder.id,
                lines = quote(&lines),
                topology = quote(topology.as_str()),
                expected = quote(&expected),
            );
        }
        LockRequest::Renew { id, lease } => {
            let _ = write!(
                script,
                r#"if mine {id}; then
  exp=$(( $(date +%s) + {lease} ))
  sed "s/^expires\t.*/expires\t$exp/" "$R/lock/holder" > "$R/lock/holder.new" && mv -f "$R/lock/holder.new" "$R/lock/holder"
  printf 'lock\tacquired\n'
elif [ -d "$R/lock" ]; then held other
else printf 'lock\tnone\n'; fi
"#,
                id = quote(id.as_str()),
            );
        }
        LockRequest::Release { id } => {
            let _ = write!(
                script,
                r#"if mine {id}; then rm -rf "$R/lock"; rmdir "$R" 2>/dev/null; printf 'lock\treleased\n'
elif [ -d "$R/lock" ]; then held other
else printf 'lock\tnone\n'; fi
"#,
                id = quote(id.as_str()),
            );
        }
    }
    script
}

/// Reads a lock script's answer.
pub fn parse(stdout: &str) -> Result<LockAnswer, String> {
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let fact = |data: &str, lease: &str| -> Result<LockFact, String> {
            Ok(LockFact {
                holder: LockHolder::from_file(&decode_text(data)?),
                lease: if lease == "expired" {
                    Lease::Expired
                } else {
                    Lease::Live
                },
            })
        };
        return match fields.as_slice() {
            ["lock", "acquired"] => Ok(LockAnswer::Acquired),
            ["lock", "released"] => Ok(LockAnswer::Released),
            ["lock", "none"] => Ok(LockAnswer::NotHolder(None)),
            ["lock", "serial", serial] => Ok(LockAnswer::SerialMoved {
                now: serial.parse().ok(),
            }),
            ["lock", "held", data, lease] => Ok(LockAnswer::Held(fact(data, lease)?)),
            ["lock", "other", data, lease] => Ok(LockAnswer::NotHolder(Some(fact(data, lease)?))),
            ["lock", "error"] => Err("cannot make /var/lib/infra on the host".to_owned()),
            _ => continue,
        };
    }
    Err("no answer about the lock".to_owned())
}
