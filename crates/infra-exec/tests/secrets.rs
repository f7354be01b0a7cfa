//! No secret reaches a plan: whatever the secrets are, wherever they sit in the files, and
//! however they change between what the hosts have and what the topology wants (rotated,
//! renamed, removed, a certificate renewed), neither the plan text, nor its JSON, nor the
//! saved plan holds any old or new secret value, or the private key.

mod harness;

use harness::Lab;
use infra_plan::plan::{DataPolicy, PlanMode};
use infra_plan::view;
use proptest::prelude::*;

/// A secret made of characters every format takes, with a prefix no plan text holds.
fn secret(
    prefix: &'static str,
    length: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            proptest::char::range('a', 'z'),
            proptest::char::range('A', 'Z'),
            proptest::char::range('0', '9'),
            Just('_'),
            Just('.'),
            Just('+'),
            Just('='),
        ],
        length,
    )
    .prop_map(move |chars| format!("{prefix}{}", chars.into_iter().collect::<String>()))
}

/// One topology's secrets and how the file uses them.
#[derive(Debug, Clone)]
struct Variant {
    stats_password: String,
    stats_user: String,
    with_stats: bool,
    vrrp: String,
    with_vrrp: bool,
    app_password: String,
    repl_password: String,
    monitor_password: String,
    token: String,
    token_name: Option<&'static str>,
    key: String,
}

fn variant() -> impl Strategy<Value = Variant> {
    (
        secret("Sq", 6..=14),
        prop_oneof![Just("admin"), Just("ops"), Just("monitor")],
        any::<bool>(),
        secret("Vq", 6..=6),
        any::<bool>(),
        (
            secret("Aq", 6..=20),
            secret("Rq", 6..=20),
            secret("Tq", 6..=20),
            secret("Mq", 6..=20),
        ),
        prop_oneof![
            Just(None),
            Just(Some("COUNTER_TOKEN")),
            Just(Some("COUNTER_KEY"))
        ],
        secret("Kq", 20..=40),
    )
        .prop_map(
            |(
                stats_password,
                user,
                with_stats,
                vrrp,
                with_vrrp,
                (app, repl, token, monitor),
                token_name,
                key,
            )| Variant {
                stats_password,
                stats_user: user.to_owned(),
                with_stats,
                vrrp,
                with_vrrp,
                app_password: app,
                repl_password: repl,
                monitor_password: monitor,
                token,
                token_name,
                key,
            },
        )
}

impl Variant {
    fn values(&self) -> Vec<String> {
        vec![
            self.stats_password.clone(),
            self.vrrp.clone(),
            self.app_password.clone(),
            self.repl_password.clone(),
            self.monitor_password.clone(),
            self.token.clone(),
            self.key.clone(),
        ]
    }

    /// Makes `lab` use this variant: its topology text, its secrets and its certificate.
    fn apply_to(&self, lab: &mut Lab) {
        let original =
            std::fs::read_to_string(harness::example_dir().join("infra.yaml")).expect("example");
        let mut text =
            original.replace("    user: admin", &format!("    user: {}", self.stats_user));
        if !self.with_stats {
            text = text.replace(
                &format!("  stats:\n    port: 8404\n    user: {}\n    password: ${{env:INFRA_STATS_PASSWORD}}\n", self.stats_user),
                "",
            );
            assert!(!text.contains("stats:"), "the stats block is gone");
        }
        if !self.with_vrrp {
            text = text.replace("  vrrp_password: ${env:INFRA_VRRP_PASSWORD}\n", "");
        }
        if let Some(name) = self.token_name {
            text = text.replace(
                "    COUNTER_GREETING: hello from the scale-up example\n",
                &format!("    COUNTER_GREETING: hello from the scale-up example\n    {name}: ${{env:APP_TOKEN}}\n"),
            );
        }
        std::fs::write(lab.file(), text).expect("write");
        lab.secrets = [
            ("INFRA_STATS_PASSWORD", &self.stats_password),
            ("INFRA_VRRP_PASSWORD", &self.vrrp),
            ("INFRA_DB_APP_PASSWORD", &self.app_password),
            ("INFRA_DB_REPL_PASSWORD", &self.repl_password),
            ("INFRA_DB_MONITOR_PASSWORD", &self.monitor_password),
            ("APP_TOKEN", &self.token),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).clone()))
        .collect();
        // The certificate changes with the key: a renewal shows the chain, never the key.
        lab.certificate = format!(
            "-----BEGIN CERTIFICATE-----\nCHAIN{}\n-----END CERTIFICATE-----\n",
            &self.key[2..10]
        );
        lab.key = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            self.key
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn no_secret_old_or_new_reaches_a_plan(old in variant(), new in variant()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let mut lab = Lab::example();
            old.apply_to(&mut lab);
            let report = lab.converge(PlanMode::Apply).await;
            prop_assert!(!report.failed(), "{:?}", report.errors());
            new.apply_to(&mut lab);
            let secrets: Vec<String> = old.values().into_iter().chain(new.values()).collect();
            for mode in [PlanMode::Apply, PlanMode::Destroy(DataPolicy::Delete)] {
                let (_, _, plan) = lab.plan(mode).await;
                let text = view::text::text(&plan, view::text::Colour::Off);
                let json = serde_json::to_string(&view::json::view(&plan)).expect("JSON");
                let saved = serde_json::to_string(&plan).expect("saved");
                for secret in &secrets {
                    prop_assert!(!text.contains(secret.as_str()), "the plan text holds `{}`:\n{}", secret, text);
                    prop_assert!(!json.contains(secret.as_str()), "the plan JSON holds `{}`", secret);
                    prop_assert!(!saved.contains(secret.as_str()), "the saved plan holds `{}`", secret);
                }
            }
            Ok(())
        })?;
    }
}
