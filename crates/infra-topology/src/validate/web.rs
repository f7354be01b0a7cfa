//! `web:`: the Nginx tier.

use super::values::Upload;
use super::{Checker, Known};
use crate::model::Web;
use crate::raw::{self, Sp};
use crate::rules;

impl Checker<'_, '_> {
    pub(super) fn web(
        &mut self,
        web: &Sp<raw::RawWeb>,
        known: &Known,
        topology_name: &str,
    ) -> Option<Web> {
        let raw = &web.value;
        let hosts = self.host_list(&raw.hosts, known, "web");
        let server_name = match &raw.server_name {
            Some(s) if !rules::is_dns_name(&s.value) => {
                self.error(
                    s.position,
                    format!("`{}` is not a valid server name", s.value),
                )
                .expected("a DNS name such as `www.example.com`");
                String::new()
            }
            Some(s) => s.value.clone(),
            None => "localhost".to_owned(),
        };
        let static_dir = raw
            .static_dir
            .as_ref()
            .and_then(|s| self.local_folder(s, "web.static_dir", Upload::Yes));
        let root = self.remote_path(
            raw.root.as_ref(),
            &format!("/var/www/{topology_name}"),
            "web.root",
        );
        let app_path = self.url_path(raw.app_path.as_ref(), "/api/");
        if let Some(p) = &raw.app_path {
            if p.value == "/" {
                self.error(p.position, "the app path cannot be `/`")
                    .expected("a path prefix such as `/api/`")
                    .hint("`/` would send every request, the static site and the load balancers' health check included, to the app");
            } else if !p.value.ends_with('/') {
                self.error(p.position, format!("`{}` must end with `/`", p.value))
                    .expected("a path prefix such as `/api/`");
            }
        }
        let rollout = self.rollout(raw.rollout.as_ref(), "web", hosts.len(), 30);
        Some(Web {
            hosts,
            server_name,
            port: raw.port.as_ref().map_or(80, |p| p.value),
            tls_port: raw.tls_port.as_ref().map_or(443, |p| p.value),
            static_dir,
            root: root?,
            app_path,
            status_port: raw.status_port.as_ref().map_or(8080, |p| p.value),
            rollout,
        })
    }
}
