//! What every `offgrid-admin` command shares: the loaded settings, the
//! operator's capability, the services, `--json` output, password input
//! and finding a user by name or id.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use offgrid_auth::AuthError;
use offgrid_cli::{Failure, Services};
use offgrid_config::{Overrides, Settings, load_from_process};
use offgrid_domain::user::User;
use offgrid_domain::{OperatorCapability, UserId};
use offgrid_storage::Database;

pub(crate) mod audit;
pub(crate) mod db;
pub(crate) mod invite;
pub(crate) mod keys;
pub(crate) mod quota;
pub(crate) mod setup;
pub(crate) mod users;

/// A command's surroundings.
pub(crate) struct Ctx {
    pub(crate) settings: Settings,
    json: bool,
    /// This binary is the machine's operator: it alone may see every row.
    pub(crate) operator: OperatorCapability,
}

impl Ctx {
    /// Loads the settings (a bad value is a usage error) for `--home`,
    /// `--config` and `--json`.
    pub(crate) fn load(
        home: Option<PathBuf>,
        config: Option<PathBuf>,
        json: bool,
    ) -> Result<Self, Failure> {
        let overrides = Overrides {
            home,
            config,
            values: Vec::new(),
        };
        let loaded = load_from_process(&overrides).map_err(|e| Failure::usage(e.to_string()))?;
        Ok(Ctx {
            settings: loaded.settings,
            json,
            operator: OperatorCapability::assume(),
        })
    }

    /// The database, not migrated (for `db`).
    pub(crate) fn open_db(&self) -> Result<Database, Failure> {
        Ok(offgrid_cli::open_database(&self.settings)?)
    }

    /// The migrated database and the account service, as the server opens
    /// them.
    pub(crate) fn services(&self) -> Result<Services, Failure> {
        Ok(Services::open(&self.settings)?)
    }

    /// Prints `value` with `--json`, else the text.
    pub(crate) fn print(&self, value: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }

    /// Whether `--json` was given.
    pub(crate) fn json(&self) -> bool {
        self.json
    }
}

/// An account service error: exit code 2 when the input was wrong, else 1.
pub(crate) fn auth_failure(e: AuthError) -> Failure {
    let code = if matches!(e, AuthError::Invalid { .. } | AuthError::CommonPassword) {
        offgrid_cli::EXIT_USAGE
    } else {
        1
    };
    Failure::new(code, e.to_string())
}

/// A password from the first line of stdin, or typed twice at a prompt.
pub(crate) fn read_password(from_stdin: bool) -> Result<String, Failure> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            return Err(Failure::usage("--password-stdin: stdin was empty"));
        }
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "no terminal to prompt for a password: pass --password-stdin",
        ));
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Repeat password: ")?;
    if first != second {
        return Err(Failure::usage("passwords do not match"));
    }
    Ok(first)
}

/// The account with this username, else with this id.
pub(crate) fn find_user(services: &Services, name_or_id: &str) -> Result<User, Failure> {
    let users = &services.auth.repos().users;
    match users.get_by_username(name_or_id) {
        Ok(u) => Ok(u),
        Err(_) => users
            .get(&UserId::from_string(name_or_id))
            .map_err(|_| Failure::new(1, format!("no user {name_or_id:?}"))),
    }
}
