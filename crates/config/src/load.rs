//! Loading and validating settings.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::keys::{KEYS, spec};

/// A secret setting: compared, never printed (`Debug` hides it, so
/// logging the settings does not leak it).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for a comparison.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The effective settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Accounts, roles and logins (`OFFGRID_MULTI_USER`).
    pub multi_user_mode: bool,
    /// In multi-user mode, refuse requests without credentials.
    pub require_auth: bool,
    /// In multi-user mode without `require_auth`, let anonymous requests chat
    /// as Guest.
    pub guest_access: bool,
    /// Address to bind.
    pub host: String,
    /// Port to bind (0 picks a free one).
    pub port: u16,
    /// Lifetime of a login token.
    pub session_ttl_hours: u32,
    /// Lifetime of a login token with "remember me".
    pub remember_me_days: u32,
    /// bcrypt work factor.
    pub bcrypt_cost: u32,
    /// A login session unused for this long ends (0: no idle timeout).
    pub session_idle_timeout_minutes: u32,
    /// Audit entries older than this are deleted (0: kept forever).
    pub audit_retention_days: u32,
    /// Whether administrators may read the messages of chat sessions not
    /// shared with them (they always see titles and counts).
    pub admin_can_read_chats: bool,
    /// The first admin's setup takes over what single-user mode made.
    pub adopt_existing_data: bool,
    /// Default quotas of administrators.
    pub quota_admin: crate::RoleQuota,
    /// Default quotas of users.
    pub quota_user: crate::RoleQuota,
    /// Default quotas of viewers.
    pub quota_viewer: crate::RoleQuota,
    /// Default quotas of guests, counted per client address.
    pub quota_guest: crate::RoleQuota,
    /// Origins allowed to call the API from a browser (CORS); empty = off.
    pub cors_origins: Vec<String>,
    /// `Host` names accepted besides loopback names (enforced whenever
    /// bound to loopback or this list is not empty).
    pub allowed_hosts: Vec<String>,
    /// Let single-user mode (no login, full access) listen on a
    /// non-loopback address.
    pub allow_remote_single_user: bool,
    /// Clients reach the server over HTTPS (e.g. through a TLS reverse
    /// proxy): the session cookie is `Secure` and named `__Host-…`.
    pub cookie_secure: bool,
    /// A bearer token that may read `GET /metrics` besides administrators
    /// (for a Prometheus scraper; at least 16 characters).
    pub metrics_token: Option<Secret>,
    /// `/metrics` has per-user request and token counters (labelled by
    /// username).
    pub metrics_per_user: bool,
    /// Users (not only administrators) may run `POST /v1/benchmark`.
    pub benchmark_users: bool,
    /// The only directory `POST /v1/models` imports from (`None`:
    /// `$OFFGRID_HOME/import`).
    pub model_import_dir: Option<PathBuf>,
    /// How long an idle model stays loaded (per request: `keep_alive`).
    pub keep_alive: crate::KeepAlive,
    /// Most models in memory at once; loading one more unloads the least
    /// recently used idle one.
    pub max_loaded_models: u32,
    /// Context served per chat model in tokens, if less than the model's
    /// own (0: the model's own).
    pub context_length: u32,
    /// Key/value cache budget of the inference engine in MiB, all running
    /// generations together (0: a quarter of the machine's memory, between
    /// 256 MiB and 4 GiB). A generation starts only when its prompt and
    /// `max_tokens` fit; until then it waits in the queue.
    pub kv_cache_mb: u32,
    /// Generations decoding at once, batched into one forward pass per
    /// step; more wait in the queue.
    pub num_parallel: u32,
    /// The chat model used when a chat names none (nor its session or
    /// preset); guests, who cannot list models, chat with it.
    pub default_model: String,
    /// The embedding model RAG indexes and searches with.
    pub embedding_model: String,
    /// Largest document upload to a RAG collection, in MiB.
    pub rag_max_upload_mb: u32,
    /// Data directory (`OFFGRID_HOME`): database, secrets, models.
    pub home: PathBuf,
}

impl Settings {
    /// The built-in defaults, with `home` as the data directory.
    pub fn defaults(home: PathBuf) -> Self {
        Settings {
            multi_user_mode: false,
            require_auth: false,
            guest_access: true,
            host: "127.0.0.1".to_owned(),
            port: 11611,
            session_ttl_hours: 24,
            remember_me_days: 7,
            bcrypt_cost: 12,
            session_idle_timeout_minutes: 24 * 60,
            audit_retention_days: 90,
            admin_can_read_chats: true,
            adopt_existing_data: true,
            quota_admin: crate::RoleQuota::UNLIMITED,
            quota_user: crate::RoleQuota {
                requests_per_minute: Some(60),
                ..crate::RoleQuota::UNLIMITED
            },
            quota_viewer: crate::RoleQuota {
                requests_per_minute: Some(30),
                ..crate::RoleQuota::UNLIMITED
            },
            quota_guest: crate::RoleQuota {
                requests_per_minute: Some(20),
                tokens_per_day: Some(50_000),
                max_concurrent: Some(1),
            },
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            allow_remote_single_user: false,
            cookie_secure: false,
            metrics_token: None,
            metrics_per_user: true,
            benchmark_users: false,
            model_import_dir: None,
            keep_alive: crate::KeepAlive::For(std::time::Duration::from_secs(300)),
            max_loaded_models: 3,
            context_length: 0,
            kv_cache_mb: 0,
            num_parallel: 8,
            default_model: "smollm2-135m-instruct".to_owned(),
            embedding_model: "all-minilm-l6-v2".to_owned(),
            rag_max_upload_mb: 20,
            home,
        }
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.home.join("offgrid.db")
    }

    /// The directory HTTP model imports are confined to.
    pub fn model_import_dir(&self) -> PathBuf {
        self.model_import_dir
            .clone()
            .unwrap_or_else(|| self.home.join("import"))
    }

    /// Whether anonymous requests are served (as Guest).
    pub fn anonymous_allowed(&self) -> bool {
        !self.multi_user_mode || (!self.require_auth && self.guest_access)
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built-in default.
    Default,
    /// The config file.
    File(PathBuf),
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A configuration problem; the message is one line naming the key, its
/// source and the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value of the wrong form.
    #[error("invalid value {value:?} for `{key}` from {origin}: expected {expected}")]
    Invalid {
        /// Key name.
        key: String,
        /// Where it came from.
        origin: Source,
        /// The offending value.
        value: String,
        /// The expected form.
        expected: &'static str,
    },
    /// A key the file does not know.
    #[error("unknown key `{key}` in {path}: known keys are {known}", path = path.display())]
    UnknownKey {
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
        /// Known keys, comma-separated.
        known: String,
    },
    /// The file is not YAML or not a mapping.
    #[error("config file {path} is not valid: {reason}", path = path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}", path = path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The IO error.
        reason: String,
    },
    /// Neither `OFFGRID_HOME` nor `HOME` is set.
    #[error("cannot find a home directory: set OFFGRID_HOME")]
    NoHome,
}

/// Values from command-line flags, applied last.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--home`.
    pub home: Option<PathBuf>,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `(key, value, flag name)` triples, e.g. `("port", "8080", "--port")`.
    pub values: Vec<(&'static str, String, String)>,
}

/// Settings plus where each value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective settings.
    pub settings: Settings,
    /// Source of every key in [`KEYS`] order, plus `home`.
    pub sources: Vec<(&'static str, Source)>,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
}

impl Loaded {
    /// `(key, value, source)` rows for display.
    pub fn rows(&self) -> Vec<(&'static str, String, &Source)> {
        let mut rows: Vec<_> = KEYS
            .iter()
            .zip(&self.sources)
            .map(|(k, (_, src))| (k.name, (k.show)(&self.settings), src))
            .collect();
        if let Some((_, src)) = self.sources.iter().find(|(n, _)| *n == "home") {
            rows.push(("home", self.settings.home.display().to_string(), src));
        }
        rows
    }
}

/// A raw value before parsing.
pub(crate) enum Raw {
    Text(String),
    List(Vec<String>),
}

impl Raw {
    pub(crate) fn as_text(&self) -> Option<&str> {
        match self {
            Raw::Text(t) => Some(t),
            Raw::List(_) => None,
        }
    }

    pub(crate) fn as_list(&self) -> Vec<String> {
        match self {
            Raw::Text(t) => t
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            Raw::List(items) => items.clone(),
        }
    }

    fn display(&self) -> String {
        match self {
            Raw::Text(t) => t.clone(),
            Raw::List(items) => items.join(","),
        }
    }
}

fn yaml_to_raw(value: &serde_yaml::Value) -> Option<Raw> {
    use serde_yaml::Value;
    match value {
        Value::Bool(b) => Some(Raw::Text(b.to_string())),
        Value::Number(n) => Some(Raw::Text(n.to_string())),
        Value::String(s) => Some(Raw::Text(s.clone())),
        Value::Null => Some(Raw::List(Vec::new())),
        Value::Sequence(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(Raw::List),
        Value::Mapping(_) | Value::Tagged(_) => None,
    }
}

fn apply(
    settings: &mut Settings,
    sources: &mut [(&'static str, Source)],
    key: &str,
    raw: &Raw,
    source: Source,
) -> Result<(), ConfigError> {
    let (index, spec) = KEYS
        .iter()
        .enumerate()
        .find(|(_, k)| k.name == key)
        .ok_or_else(|| ConfigError::BadFile {
            path: PathBuf::new(),
            reason: format!("internal: unknown key {key}"),
        })?;
    match (spec.apply)(settings, raw) {
        Some(()) => {
            sources[index].1 = source;
            Ok(())
        }
        None => Err(ConfigError::Invalid {
            key: key.to_owned(),
            origin: source,
            // A secret's value stays out of error messages and logs.
            value: if crate::keys::is_secret(key) {
                "(hidden)".to_owned()
            } else {
                raw.display()
            },
            expected: spec.expected,
        }),
    }
}

/// Reads and checks a config file, returning its `(key, raw value)` pairs.
fn read_file(path: &Path) -> Result<Vec<(String, Raw)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let value: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| ConfigError::BadFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    let mapping = match value {
        serde_yaml::Value::Null => return Ok(Vec::new()),
        serde_yaml::Value::Mapping(m) => m,
        _ => {
            return Err(ConfigError::BadFile {
                path: path.to_owned(),
                reason: "expected a mapping of `key: value` lines".to_owned(),
            });
        }
    };
    let known = || KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ");
    let mut pairs = Vec::new();
    for (k, v) in &mapping {
        let key = k
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{k:?}"));
        let Some(spec) = spec(&key) else {
            return Err(ConfigError::UnknownKey {
                key,
                path: path.to_owned(),
                known: known(),
            });
        };
        let raw = yaml_to_raw(v).ok_or_else(|| ConfigError::Invalid {
            key: key.clone(),
            origin: Source::File(path.to_owned()),
            value: if crate::keys::is_secret(&key) {
                "(hidden)".to_owned()
            } else {
                format!("{v:?}")
            },
            expected: spec.expected,
        })?;
        pairs.push((key, raw));
    }
    Ok(pairs)
}

/// Checks a config file on its own: every key known, every value valid.
pub fn validate_file(path: &Path) -> Result<(), ConfigError> {
    let mut settings = Settings::defaults(PathBuf::new());
    let mut sources: Vec<_> = KEYS.iter().map(|k| (k.name, Source::Default)).collect();
    for (key, raw) in read_file(path)? {
        apply(
            &mut settings,
            &mut sources,
            &key,
            &raw,
            Source::File(path.to_owned()),
        )?;
    }
    Ok(())
}

/// Loads settings: defaults < file < environment < flags.
///
/// `env` is the process environment (passed in so tests control it). The
/// file is `--config`, else `$OFFGRID_CONFIG`, else `$OFFGRID_HOME/config.yaml`
/// (only this last one may be absent).
pub fn load(env: &HashMap<String, String>, flags: &Overrides) -> Result<Loaded, ConfigError> {
    let (home, home_source) = match (&flags.home, env.get("OFFGRID_HOME")) {
        (Some(h), _) => (h.clone(), Source::Flag("--home".to_owned())),
        (None, Some(h)) if !h.is_empty() => (PathBuf::from(h), Source::Env("OFFGRID_HOME")),
        _ => {
            let user_home = env
                .get("HOME")
                .filter(|h| !h.is_empty())
                .ok_or(ConfigError::NoHome)?;
            (
                PathBuf::from(user_home).join(".offgrid-llm"),
                Source::Default,
            )
        }
    };
    let mut settings = Settings::defaults(home.clone());
    let mut sources: Vec<_> = KEYS.iter().map(|k| (k.name, Source::Default)).collect();

    let explicit = flags.config.clone().or_else(|| {
        env.get("OFFGRID_CONFIG")
            .filter(|c| !c.is_empty())
            .map(PathBuf::from)
    });
    let config_file = match explicit {
        Some(path) => Some(path),
        None => Some(home.join("config.yaml")).filter(|p| p.exists()),
    };
    if let Some(path) = &config_file {
        for (key, raw) in read_file(path)? {
            apply(
                &mut settings,
                &mut sources,
                &key,
                &raw,
                Source::File(path.clone()),
            )?;
        }
    }
    for spec in KEYS {
        if let Some(value) = env.get(spec.env) {
            apply(
                &mut settings,
                &mut sources,
                spec.name,
                &Raw::Text(value.clone()),
                Source::Env(spec.env),
            )?;
        }
    }
    for (key, value, flag) in &flags.values {
        apply(
            &mut settings,
            &mut sources,
            key,
            &Raw::Text(value.clone()),
            Source::Flag(flag.clone()),
        )?;
    }
    sources.push(("home", home_source));
    Ok(Loaded {
        settings,
        sources,
        config_file,
    })
}

/// [`load`] with the process environment.
pub fn load_from_process(flags: &Overrides) -> Result<Loaded, ConfigError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    load(&env, flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn home_with_file(contents: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.yaml"), contents).expect("write");
        dir
    }

    fn home_env(dir: &tempfile::TempDir) -> HashMap<String, String> {
        env(&[("OFFGRID_HOME", dir.path().to_str().expect("utf8"))])
    }

    #[test]
    fn defaults_without_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loaded = load(&home_env(&dir), &Overrides::default()).expect("load");
        let s = &loaded.settings;
        assert!(!s.multi_user_mode && !s.require_auth && s.guest_access);
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 11611));
        assert_eq!(
            (s.session_ttl_hours, s.remember_me_days, s.bcrypt_cost),
            (24, 7, 12)
        );
        assert!(loaded.config_file.is_none());
        assert!(
            loaded
                .sources
                .iter()
                .all(|(n, s)| *n == "home" || *s == Source::Default)
        );
    }

    #[test]
    fn home_defaults_to_dot_offgrid_llm() {
        let loaded = load(
            &env(&[("HOME", "/nonexistent-home")]),
            &Overrides::default(),
        )
        .expect("load");
        assert_eq!(
            loaded.settings.home,
            PathBuf::from("/nonexistent-home/.offgrid-llm")
        );
    }

    #[test]
    fn precedence_is_default_file_env_flag() {
        let dir = home_with_file("multi_user_mode: true\nport: 9000\nhost: 0.0.0.0\n");
        let mut e = home_env(&dir);
        e.insert("OFFGRID_PORT".into(), "9001".into());
        let flags = Overrides {
            values: vec![("host", "127.0.0.2".into(), "--host".into())],
            ..Overrides::default()
        };
        let loaded = load(&e, &flags).expect("load");
        assert!(loaded.settings.multi_user_mode);
        assert_eq!(loaded.settings.port, 9001);
        assert_eq!(loaded.settings.host, "127.0.0.2");
        let source = |k: &str| {
            loaded
                .sources
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, s)| s.clone())
        };
        assert!(matches!(source("multi_user_mode"), Some(Source::File(_))));
        assert_eq!(source("port"), Some(Source::Env("OFFGRID_PORT")));
        assert_eq!(source("host"), Some(Source::Flag("--host".into())));
        assert_eq!(source("guest_access"), Some(Source::Default));
    }

    #[test]
    fn omitted_keys_keep_defaults() {
        let dir = home_with_file("multi_user_mode: true\nrequire_auth: false\n");
        let loaded = load(&home_env(&dir), &Overrides::default()).expect("load");
        assert!(loaded.settings.guest_access);
    }

    #[test]
    fn bad_env_value_names_key_source_and_form() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut e = home_env(&dir);
        e.insert("OFFGRID_PORT".into(), "abc".into());
        let err = load(&e, &Overrides::default()).expect_err("must fail");
        let msg = err.to_string();
        assert!(
            msg.contains("`port`") && msg.contains("OFFGRID_PORT") && msg.contains("integer"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn bad_file_values_and_unknown_keys_fail() {
        let dir = home_with_file("multi_user_mode: maybe\n");
        let msg = load(&home_env(&dir), &Overrides::default())
            .expect_err("fail")
            .to_string();
        assert!(
            msg.contains("multi_user_mode")
                && msg.contains("config.yaml")
                && msg.contains("true or false"),
            "{msg}"
        );

        let dir = home_with_file("multi_user_mod: true\n");
        let err = load(&home_env(&dir), &Overrides::default()).expect_err("fail");
        assert!(matches!(err, ConfigError::UnknownKey { ref key, .. } if key == "multi_user_mod"));

        let dir = home_with_file("port: [1, 2\n");
        let err = load(&home_env(&dir), &Overrides::default()).expect_err("fail");
        assert!(matches!(err, ConfigError::BadFile { .. }), "{err}");
    }

    #[test]
    fn explicit_missing_config_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut e = home_env(&dir);
        e.insert(
            "OFFGRID_CONFIG".into(),
            dir.path().join("nope.yaml").display().to_string(),
        );
        let err = load(&e, &Overrides::default()).expect_err("fail");
        assert!(matches!(err, ConfigError::Unreadable { .. }));
    }

    #[test]
    fn lists_from_file_and_env() {
        let dir =
            home_with_file("cors_origins:\n  - http://localhost:3000\nallowed_hosts: [Box.Lan]\n");
        let loaded = load(&home_env(&dir), &Overrides::default()).expect("load");
        assert_eq!(loaded.settings.cors_origins, vec!["http://localhost:3000"]);
        assert_eq!(loaded.settings.allowed_hosts, vec!["box.lan"]);
        let mut e = home_env(&dir);
        e.insert("OFFGRID_CORS_ORIGINS".into(), "ftp://x".into());
        assert!(load(&e, &Overrides::default()).is_err());
    }

    #[test]
    fn exposure_cookie_and_import_dir_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loaded = load(&home_env(&dir), &Overrides::default()).expect("load");
        let s = &loaded.settings;
        assert!(!s.allow_remote_single_user && !s.cookie_secure);
        assert_eq!(s.model_import_dir(), dir.path().join("import"));

        let mut e = home_env(&dir);
        e.insert("OFFGRID_ALLOW_REMOTE_SINGLE_USER".into(), "true".into());
        e.insert("OFFGRID_COOKIE_SECURE".into(), "yes".into());
        e.insert("OFFGRID_MODEL_IMPORT_DIR".into(), "/srv/models-in".into());
        let s = load(&e, &Overrides::default()).expect("load").settings;
        assert!(s.allow_remote_single_user && s.cookie_secure);
        assert_eq!(s.model_import_dir(), PathBuf::from("/srv/models-in"));

        // A relative import directory would depend on the working directory.
        let mut e = home_env(&dir);
        e.insert("OFFGRID_MODEL_IMPORT_DIR".into(), "imports".into());
        let msg = load(&e, &Overrides::default())
            .expect_err("relative")
            .to_string();
        assert!(
            msg.contains("model_import_dir") && msg.contains("absolute"),
            "{msg}"
        );
    }

    #[test]
    fn the_metrics_token_is_checked_and_never_shown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = load(&home_env(&dir), &Overrides::default())
            .expect("load")
            .settings;
        assert_eq!(s.metrics_token, None);
        assert!(s.metrics_per_user);
        assert!(!s.benchmark_users);
        let mut e = home_env(&dir);
        e.insert("OFFGRID_BENCHMARK_USERS".into(), "true".into());
        e.insert(
            "OFFGRID_METRICS_TOKEN".into(),
            "scrape-me-0123456789".into(),
        );
        e.insert("OFFGRID_METRICS_PER_USER".into(), "false".into());
        let loaded = load(&e, &Overrides::default()).expect("load");
        let s = &loaded.settings;
        assert_eq!(
            s.metrics_token.as_ref().map(Secret::expose),
            Some("scrape-me-0123456789")
        );
        assert!(!s.metrics_per_user);
        assert!(s.benchmark_users);
        assert!(!format!("{s:?}").contains("scrape-me"));
        for bad in ["short", "has a space in it 0123456789"] {
            let mut e = home_env(&dir);
            e.insert("OFFGRID_METRICS_TOKEN".into(), bad.into());
            let msg = load(&e, &Overrides::default())
                .expect_err("refused")
                .to_string();
            assert!(msg.contains("metrics_token"), "{msg}");
            assert!(!msg.contains(bad), "the value is not echoed: {msg}");
        }
    }

    #[test]
    fn validate_file_checks_without_loading() {
        let dir = home_with_file("bcrypt_cost: 3\n");
        assert!(validate_file(&dir.path().join("config.yaml")).is_err());
        let dir = home_with_file("bcrypt_cost: 10\nguest_access: no\n");
        assert!(validate_file(&dir.path().join("config.yaml")).is_ok());
    }

    #[test]
    fn session_idle_timeout_and_audit_retention_from_file_and_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = load(&home_env(&dir), &Overrides::default())
            .expect("load")
            .settings;
        assert_eq!(
            (s.session_idle_timeout_minutes, s.audit_retention_days),
            (24 * 60, 90)
        );
        let dir = home_with_file("session_idle_timeout_minutes: 0\naudit_retention_days: 30\n");
        let mut e = home_env(&dir);
        e.insert("OFFGRID_AUDIT_RETENTION_DAYS".into(), "7".into());
        let s = load(&e, &Overrides::default()).expect("load").settings;
        assert_eq!(
            (s.session_idle_timeout_minutes, s.audit_retention_days),
            (0, 7)
        );
        e.insert("OFFGRID_SESSION_IDLE_TIMEOUT_MINUTES".into(), "-5".into());
        let msg = load(&e, &Overrides::default())
            .expect_err("negative")
            .to_string();
        assert!(msg.contains("session_idle_timeout_minutes"), "{msg}");
    }

    #[test]
    fn anonymous_allowed_follows_modes() {
        let mut s = Settings::defaults(PathBuf::new());
        assert!(s.anonymous_allowed());
        s.multi_user_mode = true;
        assert!(s.anonymous_allowed());
        s.guest_access = false;
        assert!(!s.anonymous_allowed());
        s.guest_access = true;
        s.require_auth = true;
        assert!(!s.anonymous_allowed());
    }
}
