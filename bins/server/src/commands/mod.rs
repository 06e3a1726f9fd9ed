//! What the `offgrid` commands share: the global options, loading the
//! settings, and reaching a server or an in-process model for `run` and
//! `chat`.

use std::path::PathBuf;
use std::process::ExitCode;

use offgrid_cli::Failure;
use offgrid_config::{Loaded, Overrides, load_from_process};

use crate::client;

pub(crate) mod api;
pub(crate) mod benchmark;
pub(crate) mod chat;
pub(crate) mod config;
pub(crate) mod models;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod session;
pub(crate) mod users;

/// The name failures are printed after.
pub(crate) const BIN: &str = "offgrid";

/// What a command ends with: its exit code, or a failure to print.
pub(crate) type Outcome = Result<ExitCode, Failure>;

/// The options every command takes.
pub(crate) struct Global {
    /// `--home`.
    pub(crate) home: Option<PathBuf>,
    /// `--config`.
    pub(crate) config: Option<PathBuf>,
}

impl Global {
    /// The settings, with `values` as `(key, value, flag)` from the
    /// command's own flags; a bad value is a usage error.
    pub(crate) fn load(
        &self,
        values: Vec<(&'static str, String, String)>,
    ) -> Result<Loaded, Failure> {
        let overrides = Overrides {
            home: self.home.clone(),
            config: self.config.clone(),
            values,
        };
        load_from_process(&overrides).map_err(|e| Failure::usage(e.to_string()))
    }
}

/// A running server, or the model loaded in this process (`run`, `chat`).
pub(crate) fn connect(
    loaded: &Loaded,
    url: Option<String>,
    model: &str,
    temperature: f64,
) -> Result<client::Backend, Failure> {
    if !(0.0..=2.0).contains(&temperature) {
        return Err(Failure::usage("--temperature must be between 0 and 2"));
    }
    let explicit = url.is_some();
    let url = server_url(loaded, url);
    let models = loaded.settings.home.join("models");
    client::Backend::connect(&url, explicit, &models, model, temperature)
        .map_err(|e| Failure::new(1, e))
}

/// The server's base URL: `--url`, else the configured host and port.
pub(crate) fn server_url(loaded: &Loaded, url: Option<String>) -> String {
    url.unwrap_or_else(|| {
        let host = match loaded.settings.host.as_str() {
            "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
            h => h,
        };
        format!("http://{host}:{}", loaded.settings.port)
    })
    .trim_end_matches('/')
    .to_owned()
}
