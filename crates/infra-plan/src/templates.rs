//! The built-in Tera templates, and a user's overrides of them.

use std::path::{Path, PathBuf};

use tera::Tera;

use crate::RenderError;

/// Every built-in template: its name (the file name a user overrides it with) and its text.
pub const BUILT_IN: [(&str, &str); 18] = [
    (
        "haproxy.cfg",
        include_str!("../../../templates/haproxy.cfg"),
    ),
    (
        "keepalived.conf",
        include_str!("../../../templates/keepalived.conf"),
    ),
    (
        "nginx-site.conf",
        include_str!("../../../templates/nginx-site.conf"),
    ),
    (
        "app.service",
        include_str!("../../../templates/app.service"),
    ),
    ("app.env", include_str!("../../../templates/app.env")),
    (
        "mariadb-primary.cnf",
        include_str!("../../../templates/mariadb-primary.cnf"),
    ),
    (
        "mariadb-replica.cnf",
        include_str!("../../../templates/mariadb-replica.cnf"),
    ),
    (
        "firewall.nft",
        include_str!("../../../templates/firewall.nft"),
    ),
    (
        "infra-firewall.service",
        include_str!("../../../templates/infra-firewall.service"),
    ),
    (
        "prometheus.yml",
        include_str!("../../../templates/prometheus.yml"),
    ),
    (
        "prometheus-rules.yml",
        include_str!("../../../templates/prometheus-rules.yml"),
    ),
    (
        "prometheus.default",
        include_str!("../../../templates/prometheus.default"),
    ),
    (
        "blackbox.yml",
        include_str!("../../../templates/blackbox.yml"),
    ),
    (
        "blackbox-exporter.conf",
        include_str!("../../../templates/blackbox-exporter.conf"),
    ),
    (
        "blackbox-exporter.default",
        include_str!("../../../templates/blackbox-exporter.default"),
    ),
    (
        "nginx-exporter.default",
        include_str!("../../../templates/nginx-exporter.default"),
    ),
    (
        "mysqld-exporter.default",
        include_str!("../../../templates/mysqld-exporter.default"),
    ),
    (
        "mysqld-exporter.cnf",
        include_str!("../../../templates/mysqld-exporter.cnf"),
    ),
];

/// The templates in force: the built-in ones, each possibly replaced by a user's file.
pub struct Templates {
    tera: Tera,
    overridden: Vec<(String, PathBuf)>,
}

impl Templates {
    /// Loads the built-in templates, then every file of `override_dir` (if given) in place of
    /// the built-in template of the same name. A file that matches no built-in name is an error,
    /// so a misspelt override is never silently ignored.
    pub fn load(override_dir: Option<&Path>) -> Result<Templates, RenderError> {
        let mut tera = Tera::new();
        tera.autoescape_on(Vec::<&str>::new());
        let mut sources: Vec<(String, String)> = BUILT_IN
            .iter()
            .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
            .collect();
        let mut overridden = Vec::new();
        if let Some(dir) = override_dir {
            let entries = fs_err::read_dir(dir).map_err(|source| RenderError::Read {
                path: dir.to_path_buf(),
                source,
            })?;
            let mut paths: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            paths.sort();
            for path in paths {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let Some(slot) = sources.iter_mut().find(|(n, _)| *n == name) else {
                    return Err(RenderError::UnknownOverride {
                        path,
                        known: BUILT_IN
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                };
                slot.1 = fs_err::read_to_string(&path).map_err(|source| RenderError::Read {
                    path: path.clone(),
                    source,
                })?;
                overridden.push((name, path));
            }
        }
        for (name, text) in &sources {
            tera.add_raw_template(name, text)
                .map_err(|source| RenderError::Template {
                    template: name.clone(),
                    source: Box::new(source),
                })?;
        }
        Ok(Templates { tera, overridden })
    }

    /// Renders `name` with `context`. Any undefined variable is an error naming the template
    /// and the line.
    pub fn render(&self, name: &str, context: &serde_json::Value) -> Result<String, RenderError> {
        let context =
            tera::Context::from_serialize(context).map_err(|source| RenderError::Template {
                template: name.to_owned(),
                source: Box::new(source),
            })?;
        self.tera
            .render(name, &context)
            .map_err(|source| RenderError::Template {
                template: name.to_owned(),
                source: Box::new(source),
            })
    }

    /// The templates replaced by a user's file, with that file's path.
    pub fn overridden(&self) -> &[(String, PathBuf)] {
        &self.overridden
    }
}
