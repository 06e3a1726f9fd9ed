//! `offgrid-admin keys create|list|revoke`: any user's API keys.

use clap::Subcommand;
use offgrid_auth::{Actor, KEY_EXPIRY_DAYS, KeyIssuer, KeyRequest, key_expiry_in_days};
use offgrid_cli::Failure;
use offgrid_domain::{ApiKeyId, Scope};
use serde_json::json;

use super::{Ctx, auth_failure, find_user};

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create an API key (shown once).
    Create {
        /// Owner: username or id.
        user: String,
        /// Key name.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Expire after this many days.
        #[arg(long, value_parser = clap::value_parser!(u32).range(
            i64::from(*KEY_EXPIRY_DAYS.start())..=i64::from(*KEY_EXPIRY_DAYS.end())
        ))]
        expires_in_days: Option<u32>,
        /// Let requests made with this key create more API keys.
        #[arg(long)]
        can_create_keys: bool,
    },
    /// List a user's keys.
    List {
        /// Owner: username or id.
        user: String,
    },
    /// Revoke a key.
    Revoke {
        /// Owner: username or id.
        user: String,
        /// Key id.
        key_id: String,
    },
}

pub(crate) fn run(ctx: &Ctx, cmd: Command) -> Result<(), Failure> {
    let services = ctx.services()?;
    let auth = &services.auth;
    let op = Actor::operator(&ctx.operator);
    let scope = Scope::operator(&ctx.operator);
    match cmd {
        Command::Create {
            user,
            name,
            expires_in_days,
            can_create_keys,
        } => {
            let u = find_user(&services, &user)?;
            let expires = expires_in_days
                .map(|d| {
                    key_expiry_in_days(d).ok_or_else(|| {
                        Failure::usage(format!("--expires-in-days {d} is out of range"))
                    })
                })
                .transpose()?;
            let request = KeyRequest {
                owner: u.id.clone(),
                name,
                expires_at: expires,
                can_create_keys,
            };
            let issued = auth
                .create_api_key(KeyIssuer::Operator(&ctx.operator), &scope, request, &op)
                .map_err(auth_failure)?;
            ctx.print(json!({"api_key": issued.key, "key": issued.secret}), || {
                format!(
                    "created key {} for {}\nAPI key (shown once): {}",
                    issued.key.id, u.username, issued.secret
                )
            });
        }
        Command::List { user } => {
            let u = find_user(&services, &user)?;
            let keys = auth.list_api_keys(&scope, &u.id).map_err(auth_failure)?;
            ctx.print(json!({"data": keys}), || {
                keys.iter()
                    .map(|k| {
                        let state = if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        format!("{}  {:<16} {:<14} {state}", k.id, k.name, k.prefix)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Revoke { user, key_id } => {
            let u = find_user(&services, &user)?;
            let key = auth
                .revoke_api_key(&scope, &u.id, &ApiKeyId::from_string(key_id), &op)
                .map_err(auth_failure)?;
            ctx.print(json!({"api_key": key}), || {
                format!("revoked key {}", key.id)
            });
        }
    }
    Ok(())
}
