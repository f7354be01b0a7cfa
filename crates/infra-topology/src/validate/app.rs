//! `app:`: the user's program as a systemd service.

use super::values::{SecretUse, Upload};
use super::{Checker, Known};
use crate::model::{App, EnvValue, PackageName};
use crate::raw::{self, Sp};
use crate::reserved;
use crate::rules;
use crate::secret;

impl Checker<'_, '_> {
    pub(super) fn app(&mut self, app: &Sp<raw::RawApp>, known: &Known) -> Option<App> {
        let raw = &app.value;
        let hosts = self.host_list(&raw.hosts, known, "app");
        let name = self.name(&raw.name, "app name");
        let source = raw
            .source
            .as_ref()
            .and_then(|s| self.local_folder(s, "app.source", Upload::Yes));
        let install_dir = self.remote_path(
            raw.install_dir.as_ref(),
            &format!("/opt/{}", raw.name.value),
            "app.install_dir",
        );
        let mut packages = Vec::new();
        for package in &raw.packages {
            match PackageName::new(package.value.clone()) {
                Some(name) => packages.push(name),
                None => {
                    self.error(
                        package.position,
                        format!("`{}` is not a Debian package name", package.value),
                    )
                    .expected(
                        "lowercase letters, digits, `+`, `-` and `.`, as `apt-get install` takes them",
                    );
                }
            }
        }
        let package_names: Vec<&str> = raw.packages.iter().map(|p| p.value.as_str()).collect();
        if let Some(reason) = reserved::app_name(&raw.name.value, &package_names) {
            self.error(
                raw.name.position,
                format!("`{}` cannot be the app's name", raw.name.value),
            )
            .expected("a name of its own, such as `counter` or `shop-api`")
            .hint(reason);
        }
        let command = self.command(&raw.command, "app.command");
        let migrate = raw.migrate.as_ref().map(|m| self.command(m, "app.migrate"));
        let environment = self.environment(&raw.environment);
        let rollout = self.rollout(raw.rollout.as_ref(), "app", hosts.len(), 60);
        Some(App {
            hosts,
            name: name?,
            source,
            install_dir: install_dir?,
            packages,
            command,
            migrate,
            port: raw.port.as_ref().map_or(8000, |p| p.value),
            health_path: self.url_path(raw.health_path.as_ref(), "/health"),
            environment,
            rollout,
        })
    }

    fn command(&mut self, raw: &Sp<String>, key: &str) -> Vec<String> {
        let command: Vec<String> = raw.value.split_whitespace().map(str::to_owned).collect();
        match command.first() {
            None => {
                self.error(raw.position, format!("`{key}` is empty"))
                    .expected("the program's absolute path and its arguments");
            }
            Some(program) if !program.starts_with('/') => {
                self.error(raw.position, format!("`{program}` is not an absolute path"))
                    .expected("an absolute path such as `/usr/bin/python3`")
                    .hint("systemd runs the command without a shell and without PATH lookup");
            }
            Some(_) => {}
        }
        if let Some(word) = command.iter().find(|w| !rules::is_command_word(w)) {
            self.error(
                raw.position,
                format!("`{word}` in `{key}` has characters that are not safe"),
            )
            .expected(
                "letters, digits and `/ . _ - = : , @ +` (no shell syntax, quotes, `$` or `%`)",
            )
            .hint("put shell logic in a script inside `app.source` and run that");
        }
        command
    }

    fn environment(
        &mut self,
        raw: &std::collections::BTreeMap<Sp<String>, Sp<String>>,
    ) -> Vec<(String, EnvValue)> {
        let mut environment = Vec::new();
        for (key, value) in raw {
            if !rules::is_env_name(&key.value) {
                self.error(
                    key.position,
                    format!("`{}` is not a valid environment variable name", key.value),
                )
                .expected("letters, digits and `_`, not starting with a digit");
            }
            if let Some(reason) = reserved::environment_name(&key.value) {
                self.error(key.position, format!("`{}` is set by `infra`", key.value))
                    .expected("a name other than `PORT` that does not start with `DB_`")
                    .hint(reason);
            }
            let value = if secret::looks_like_reference(&value.value) {
                self.secret(
                    value,
                    &format!("app.environment.{}", key.value),
                    SecretUse::APP_ENVIRONMENT,
                )
                .map(EnvValue::Secret)
            } else if rules::is_env_value(&value.value) {
                Some(EnvValue::Plain(value.value.clone()))
            } else {
                self.error(
                    value.position,
                    format!(
                        "the value of `{}` has characters that are not safe",
                        key.value
                    ),
                )
                .expected("one printable line without `\"`, `\\`, `$`, `%` or backticks");
                None
            };
            if let Some(value) = value {
                environment.push((key.value.clone(), value));
            }
        }
        environment
    }
}
