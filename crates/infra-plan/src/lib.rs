//! `infra-plan`: decides everything. From a checked topology and the facts of the hosts, it
//! makes the desired state of every host and the plan: the typed program `apply` runs.
//!
//! Pure: it reads local files the topology names (templates, static files, the app's
//! source, a certificate) but never touches a host and never prints.

mod context;
pub mod desired;
pub mod facts;
pub mod firewall;
pub mod graph;
pub mod hash;
pub mod lock;
pub mod migrate;
pub mod paths;
pub mod plan;
pub mod preflight;
pub mod record;
pub mod shell;
pub mod sql;
mod templates;
pub mod view;

use std::path::PathBuf;

pub use context::{PLACEHOLDER, Secrets};
pub use desired::{
    AbsentFile, CertificateFiles, Check, CheckTarget, DatabaseAccount, DatabaseObjects,
    DatabaseRole, DesiredState, Directory, Display, EdgeCertificate, FirewallWanted, Grant,
    HostState, ManagedFile, Migration, Mode, Notify, Origin, ReplicationSource, RestartEffect,
    Sensitivity, Service, Trigger, desired_state,
};
pub use templates::{BUILT_IN, Templates};

/// Why the desired state could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template failed to parse or to render (the source names template, line and column).
    #[error("template `{template}` failed")]
    Template {
        /// The template's name.
        template: String,
        /// Tera's report.
        #[source]
        source: Box<tera::Error>,
    },
    /// A file in the override folder does not match any built-in template.
    #[error("`{}` does not override any built-in template (expected one of: {known})", path.display())]
    UnknownOverride {
        /// The file.
        path: PathBuf,
        /// The built-in names.
        known: String,
    },
    /// A local file could not be read.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file to upload has a name that is not safe on the host.
    #[error("`{}` has a name that is not safe to upload (letters, digits, `.`, `_` and `-` only)", path.display())]
    UnsafeUploadName {
        /// The file.
        path: PathBuf,
    },
    /// A link in an upload folder leads outside the topology's folder (or into `.infra/`).
    #[error("`{}` links to `{}`, outside the topology's folder: it is not uploaded", path.display(), target.display())]
    UploadOutside {
        /// The link.
        path: PathBuf,
        /// Where it leads.
        target: PathBuf,
    },
    /// A link in an upload folder leads to a folder.
    #[error("`{}` links to a folder: put the folder itself there", path.display())]
    UploadLinkedFolder {
        /// The link.
        path: PathBuf,
    },
    /// A file in an upload folder is too large.
    #[error("`{}` is larger than 64 MiB", path.display())]
    UploadTooLarge {
        /// The file.
        path: PathBuf,
    },
    /// An upload folder holds something that is neither a file nor a folder.
    #[error("`{}` is not a regular file or folder (a FIFO, a socket, a device?)", path.display())]
    UploadNotAFile {
        /// The entry.
        path: PathBuf,
    },
    /// TLS was asked for but no certificate was given or generated.
    #[error("TLS is enabled but no certificate was provided")]
    MissingCertificate,
}
