//! The table of settings keys: name, environment variable, expected form and
//! how to apply a value. One row per key keeps file, environment and flags
//! consistent.

use crate::load::{Raw, Settings};

/// One settings key.
pub struct KeySpec {
    /// Name in the YAML file and in `config show`.
    pub name: &'static str,
    /// Environment variable that overrides it.
    pub env: &'static str,
    /// The expected form, for error messages.
    pub expected: &'static str,
    pub(crate) apply: fn(&mut Settings, &Raw) -> Option<()>,
    pub(crate) show: fn(&Settings) -> String,
}

fn parse_bool(raw: &Raw) -> Option<bool> {
    match raw.as_text()?.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn parse_int<T: std::str::FromStr>(raw: &Raw) -> Option<T> {
    raw.as_text()?.trim().parse().ok()
}

fn in_range(v: u32, lo: u32, hi: u32) -> Option<u32> {
    (lo..=hi).contains(&v).then_some(v)
}

const QUOTA_FORM: &str = "`unlimited`, or some of requests_per_minute=N, tokens_per_day=N, max_concurrent=N separated by commas (N from 1 to 2^40)";

/// Whether the key holds a secret (its value is never shown).
pub(crate) fn is_secret(key: &str) -> bool {
    key == "metrics_token"
}

/// Every key, in display order.
pub static KEYS: &[KeySpec] = &[
    KeySpec {
        name: "multi_user_mode",
        env: "OFFGRID_MULTI_USER",
        expected: "true or false",
        apply: |s, r| {
            s.multi_user_mode = parse_bool(r)?;
            Some(())
        },
        show: |s| s.multi_user_mode.to_string(),
    },
    KeySpec {
        name: "require_auth",
        env: "OFFGRID_REQUIRE_AUTH",
        expected: "true or false",
        apply: |s, r| {
            s.require_auth = parse_bool(r)?;
            Some(())
        },
        show: |s| s.require_auth.to_string(),
    },
    KeySpec {
        name: "guest_access",
        env: "OFFGRID_GUEST_ACCESS",
        expected: "true or false",
        apply: |s, r| {
            s.guest_access = parse_bool(r)?;
            Some(())
        },
        show: |s| s.guest_access.to_string(),
    },
    KeySpec {
        name: "host",
        env: "OFFGRID_HOST",
        expected: "an IP address or host name to bind, e.g. 127.0.0.1",
        apply: |s, r| {
            let text = r.as_text()?.trim().to_owned();
            let ok = !text.is_empty()
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:_[]".contains(c));
            ok.then(|| s.host = text)
        },
        show: |s| s.host.clone(),
    },
    KeySpec {
        name: "port",
        env: "OFFGRID_PORT",
        expected: "an integer from 0 to 65535",
        apply: |s, r| {
            s.port = parse_int::<u16>(r)?;
            Some(())
        },
        show: |s| s.port.to_string(),
    },
    KeySpec {
        name: "session_ttl_hours",
        env: "OFFGRID_SESSION_TTL_HOURS",
        expected: "an integer number of hours from 1 to 8760",
        apply: |s, r| {
            s.session_ttl_hours = in_range(parse_int(r)?, 1, 8760)?;
            Some(())
        },
        show: |s| s.session_ttl_hours.to_string(),
    },
    KeySpec {
        name: "remember_me_days",
        env: "OFFGRID_REMEMBER_ME_DAYS",
        expected: "an integer number of days from 1 to 365",
        apply: |s, r| {
            s.remember_me_days = in_range(parse_int(r)?, 1, 365)?;
            Some(())
        },
        show: |s| s.remember_me_days.to_string(),
    },
    KeySpec {
        name: "bcrypt_cost",
        env: "OFFGRID_BCRYPT_COST",
        expected: "an integer from 4 to 31",
        apply: |s, r| {
            s.bcrypt_cost = in_range(parse_int(r)?, 4, 31)?;
            Some(())
        },
        show: |s| s.bcrypt_cost.to_string(),
    },
    KeySpec {
        name: "session_idle_timeout_minutes",
        env: "OFFGRID_SESSION_IDLE_TIMEOUT_MINUTES",
        expected: "an integer number of minutes from 0 (no idle timeout) to 525600",
        apply: |s, r| {
            s.session_idle_timeout_minutes = in_range(parse_int(r)?, 0, 525_600)?;
            Some(())
        },
        show: |s| s.session_idle_timeout_minutes.to_string(),
    },
    KeySpec {
        name: "audit_retention_days",
        env: "OFFGRID_AUDIT_RETENTION_DAYS",
        expected: "an integer number of days from 0 (keep forever) to 36500",
        apply: |s, r| {
            s.audit_retention_days = in_range(parse_int(r)?, 0, 36_500)?;
            Some(())
        },
        show: |s| s.audit_retention_days.to_string(),
    },
    KeySpec {
        name: "admin_can_read_chats",
        env: "OFFGRID_ADMIN_CAN_READ_CHATS",
        expected: "true or false",
        apply: |s, r| {
            s.admin_can_read_chats = parse_bool(r)?;
            Some(())
        },
        show: |s| s.admin_can_read_chats.to_string(),
    },
    KeySpec {
        name: "adopt_existing_data",
        env: "OFFGRID_ADOPT_EXISTING_DATA",
        expected: "true or false",
        apply: |s, r| {
            s.adopt_existing_data = parse_bool(r)?;
            Some(())
        },
        show: |s| s.adopt_existing_data.to_string(),
    },
    KeySpec {
        name: "quota_admin",
        env: "OFFGRID_QUOTA_ADMIN",
        expected: QUOTA_FORM,
        apply: |s, r| {
            s.quota_admin = crate::RoleQuota::parse(r.as_text()?)?;
            Some(())
        },
        show: |s| s.quota_admin.to_string(),
    },
    KeySpec {
        name: "quota_user",
        env: "OFFGRID_QUOTA_USER",
        expected: QUOTA_FORM,
        apply: |s, r| {
            s.quota_user = crate::RoleQuota::parse(r.as_text()?)?;
            Some(())
        },
        show: |s| s.quota_user.to_string(),
    },
    KeySpec {
        name: "quota_viewer",
        env: "OFFGRID_QUOTA_VIEWER",
        expected: QUOTA_FORM,
        apply: |s, r| {
            s.quota_viewer = crate::RoleQuota::parse(r.as_text()?)?;
            Some(())
        },
        show: |s| s.quota_viewer.to_string(),
    },
    KeySpec {
        name: "quota_guest",
        env: "OFFGRID_QUOTA_GUEST",
        expected: QUOTA_FORM,
        apply: |s, r| {
            s.quota_guest = crate::RoleQuota::parse(r.as_text()?)?;
            Some(())
        },
        show: |s| s.quota_guest.to_string(),
    },
    KeySpec {
        name: "cors_origins",
        env: "OFFGRID_CORS_ORIGINS",
        expected: "a list of origins like https://host:port (comma-separated in the environment), or \"*\"",
        apply: |s, r| {
            let list = r.as_list();
            let ok = list.iter().all(|o| {
                o == "*"
                    || ((o.starts_with("http://") || o.starts_with("https://"))
                        && !o.ends_with('/'))
            });
            ok.then(|| s.cors_origins = list)
        },
        show: |s| s.cors_origins.join(","),
    },
    KeySpec {
        name: "allowed_hosts",
        env: "OFFGRID_ALLOWED_HOSTS",
        expected: "a list of host names (comma-separated in the environment)",
        apply: |s, r| {
            let list = r.as_list();
            let ok = list
                .iter()
                .all(|h| !h.is_empty() && !h.contains('/') && !h.contains(' '));
            ok.then(|| s.allowed_hosts = list.into_iter().map(|h| h.to_ascii_lowercase()).collect())
        },
        show: |s| s.allowed_hosts.join(","),
    },
    KeySpec {
        name: "allow_remote_single_user",
        env: "OFFGRID_ALLOW_REMOTE_SINGLE_USER",
        expected: "true or false",
        apply: |s, r| {
            s.allow_remote_single_user = parse_bool(r)?;
            Some(())
        },
        show: |s| s.allow_remote_single_user.to_string(),
    },
    KeySpec {
        name: "cookie_secure",
        env: "OFFGRID_COOKIE_SECURE",
        expected: "true or false (true when clients connect over HTTPS)",
        apply: |s, r| {
            s.cookie_secure = parse_bool(r)?;
            Some(())
        },
        show: |s| s.cookie_secure.to_string(),
    },
    KeySpec {
        name: "metrics_token",
        env: "OFFGRID_METRICS_TOKEN",
        expected: "a token of 16 to 256 printable ASCII characters without spaces, or empty for none",
        apply: |s, r| {
            let token = r.as_text()?.trim().to_owned();
            s.metrics_token = match token.len() {
                0 => None,
                16..=256 if token.chars().all(|c| c.is_ascii_graphic()) => {
                    Some(crate::load::Secret::new(token))
                }
                _ => return None,
            };
            Some(())
        },
        // A secret: whether it is set, never its value.
        show: |s| {
            if s.metrics_token.is_some() {
                "(set)".to_owned()
            } else {
                String::new()
            }
        },
    },
    KeySpec {
        name: "benchmark_users",
        env: "OFFGRID_BENCHMARK_USERS",
        expected: "true or false",
        apply: |s, r| {
            s.benchmark_users = parse_bool(r)?;
            Some(())
        },
        show: |s| s.benchmark_users.to_string(),
    },
    KeySpec {
        name: "metrics_per_user",
        env: "OFFGRID_METRICS_PER_USER",
        expected: "true or false",
        apply: |s, r| {
            s.metrics_per_user = parse_bool(r)?;
            Some(())
        },
        show: |s| s.metrics_per_user.to_string(),
    },
    KeySpec {
        name: "model_import_dir",
        env: "OFFGRID_MODEL_IMPORT_DIR",
        expected: "an absolute directory path",
        apply: |s, r| {
            let path = std::path::PathBuf::from(r.as_text()?.trim());
            path.is_absolute().then(|| s.model_import_dir = Some(path))
        },
        show: |s| s.model_import_dir().display().to_string(),
    },
    KeySpec {
        name: "keep_alive",
        env: "OFFGRID_KEEP_ALIVE",
        expected: "a duration like 5m, 1h30m, 45s or 0 (unload at once), or -1 (never unload)",
        apply: |s, r| {
            s.keep_alive = crate::KeepAlive::parse(r.as_text()?)?;
            Some(())
        },
        show: |s| s.keep_alive.to_string(),
    },
    KeySpec {
        name: "max_loaded_models",
        env: "OFFGRID_MAX_LOADED_MODELS",
        expected: "an integer from 1 to 64",
        apply: |s, r| {
            s.max_loaded_models = in_range(parse_int(r)?, 1, 64)?;
            Some(())
        },
        show: |s| s.max_loaded_models.to_string(),
    },
    KeySpec {
        name: "context_length",
        env: "OFFGRID_CONTEXT_LENGTH",
        expected: "an integer from 256 to 1048576, or 0 (each model's own)",
        apply: |s, r| {
            let n = parse_int(r)?;
            s.context_length = if n == 0 {
                0
            } else {
                in_range(n, 256, 1 << 20)?
            };
            Some(())
        },
        show: |s| s.context_length.to_string(),
    },
    KeySpec {
        name: "kv_cache_mb",
        env: "OFFGRID_KV_CACHE_MB",
        expected: "an integer from 16 to 1048576 (MiB), or 0 (automatic)",
        apply: |s, r| {
            let n = parse_int(r)?;
            s.kv_cache_mb = if n == 0 { 0 } else { in_range(n, 16, 1 << 20)? };
            Some(())
        },
        show: |s| s.kv_cache_mb.to_string(),
    },
    KeySpec {
        name: "num_parallel",
        env: "OFFGRID_NUM_PARALLEL",
        expected: "an integer from 1 to 64",
        apply: |s, r| {
            s.num_parallel = in_range(parse_int(r)?, 1, 64)?;
            Some(())
        },
        show: |s| s.num_parallel.to_string(),
    },
    KeySpec {
        name: "default_model",
        env: "OFFGRID_DEFAULT_MODEL",
        expected: "an installed chat model's id, e.g. smollm2-135m-instruct",
        apply: |s, r| {
            let text = r.as_text()?.trim().to_owned();
            model_id(&text).then(|| s.default_model = text)
        },
        show: |s| s.default_model.clone(),
    },
    KeySpec {
        name: "embedding_model",
        env: "OFFGRID_EMBEDDING_MODEL",
        expected: "an installed embedding model's id, e.g. all-minilm-l6-v2",
        apply: |s, r| {
            let text = r.as_text()?.trim().to_owned();
            model_id(&text).then(|| s.embedding_model = text)
        },
        show: |s| s.embedding_model.clone(),
    },
    KeySpec {
        name: "rag_max_upload_mb",
        env: "OFFGRID_RAG_MAX_UPLOAD_MB",
        expected: "an integer from 1 to 1024",
        apply: |s, r| {
            s.rag_max_upload_mb = in_range(parse_int(r)?, 1, 1024)?;
            Some(())
        },
        show: |s| s.rag_max_upload_mb.to_string(),
    },
];

/// The row for `name`, if it is a known key.
pub(crate) fn spec(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name == name)
}

/// Whether `text` can be a model id: 1 to 128 characters of letters,
/// digits and `._-:`.
fn model_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
}
