//! `offgrid-admin users list|create|show|set-role|disable|enable|delete|reset-password`.

use clap::Subcommand;
use offgrid_auth::{AccountInput, Actor, KeyIssuer};
use offgrid_cli::{Failure, Services};
use offgrid_domain::user::{User, UserPatch, UserQuery};
use offgrid_domain::{Role, Scope};
use serde_json::json;

use super::{Ctx, auth_failure, find_user, read_password};

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// List accounts.
    List {
        /// Substring of username, display name or e-mail.
        #[arg(long)]
        search: Option<String>,
        /// Only this role.
        #[arg(long)]
        role: Option<Role>,
        /// How many.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(i64).range(1..=100000))]
        limit: i64,
    },
    /// Create an account (and a first API key, shown once).
    Create {
        /// Login name.
        username: String,
        /// Role.
        #[arg(long, default_value = "user")]
        role: Role,
        /// Optional e-mail.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// Do not create an API key.
        #[arg(long)]
        no_api_key: bool,
    },
    /// Show one account.
    Show {
        /// Username or id.
        user: String,
    },
    /// Change an account's role.
    SetRole {
        /// Username or id.
        user: String,
        /// New role.
        role: Role,
    },
    /// Disable an account (its sessions and keys stop working at once).
    Disable {
        /// Username or id.
        user: String,
    },
    /// Enable a disabled account.
    Enable {
        /// Username or id.
        user: String,
    },
    /// Delete an account with its keys, logins, chat sessions and presets.
    Delete {
        /// Username or id.
        user: String,
        /// A User or Admin (username or id) who inherits the chat sessions
        /// and presets instead.
        #[arg(long, value_name = "USER")]
        transfer_to: Option<String>,
    },
    /// Set a new password (every session and key of the user ends).
    ResetPassword {
        /// Username or id.
        user: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn user_line(u: &User) -> String {
    let status = if u.disabled { "disabled" } else { "active" };
    let last = u
        .last_login_at
        .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
    format!(
        "{:<24} {:<7} {:<8} {}  last login: {}",
        u.username, u.role, status, u.id, last
    )
}

pub(crate) fn run(ctx: &Ctx, cmd: Command) -> Result<(), Failure> {
    let services = ctx.services()?;
    let auth = &services.auth;
    let op = Actor::operator(&ctx.operator);
    match cmd {
        Command::List {
            search,
            role,
            limit,
        } => {
            let page = services.list_users(&UserQuery {
                search,
                role,
                limit,
                offset: 0,
            })?;
            ctx.print(json!({"data": page.data, "total": page.total}), || {
                page.data
                    .iter()
                    .map(user_line)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Create {
            username,
            role,
            email,
            display_name,
            password_stdin,
            no_api_key,
        } => {
            let password = read_password(password_stdin)?;
            let input = AccountInput {
                username,
                password,
                email,
                display_name,
                role,
            };
            let (user, key) = auth
                .create_user(
                    input,
                    (!no_api_key).then_some(KeyIssuer::Operator(&ctx.operator)),
                    &op,
                )
                .map_err(auth_failure)?;
            let secret = key.as_ref().map(|k| k.secret.clone());
            ctx.print(json!({"user": user, "api_key": secret}), || {
                let mut out = format!("created {} ({}) {}", user.username, user.role, user.id);
                if let Some(s) = &secret {
                    out.push_str(&format!("\nAPI key (shown once): {s}"));
                }
                out
            });
        }
        Command::Show { user } => {
            let u = find_user(&services, &user)?;
            let keys = auth
                .list_api_keys(&Scope::operator(&ctx.operator), &u.id)
                .map_err(auth_failure)?;
            ctx.print(json!({"user": u, "api_keys": keys}), || {
                format!("{}\nAPI keys: {}", user_line(&u), keys.len())
            });
        }
        Command::SetRole { user, role } => {
            let u = find_user(&services, &user)?;
            let patch = UserPatch {
                role: Some(role),
                ..UserPatch::default()
            };
            let u = auth.update_user(&u.id, patch, &op).map_err(auth_failure)?;
            ctx.print(json!({"user": u}), || {
                format!("{} is now {}", u.username, u.role)
            });
        }
        Command::Disable { user } => set_disabled(ctx, &services, &user, true)?,
        Command::Enable { user } => set_disabled(ctx, &services, &user, false)?,
        Command::Delete { user, transfer_to } => {
            let u = find_user(&services, &user)?;
            let heir = transfer_to.map(|h| find_user(&services, &h)).transpose()?;
            auth.delete_user(&u.id, heir.as_ref().map(|h| &h.id), &op)
                .map_err(auth_failure)?;
            ctx.print(json!({"deleted": true, "id": u.id}), || {
                format!("deleted {}", u.username)
            });
        }
        Command::ResetPassword {
            user,
            password_stdin,
        } => {
            let u = find_user(&services, &user)?;
            let password = read_password(password_stdin)?;
            auth.reset_password(&u.id, &password, &op)
                .map_err(auth_failure)?;
            ctx.print(json!({"success": true, "id": u.id}), || {
                format!(
                    "password reset for {}; their sessions and API keys were ended",
                    u.username
                )
            });
        }
    }
    Ok(())
}

fn set_disabled(ctx: &Ctx, services: &Services, user: &str, disabled: bool) -> Result<(), Failure> {
    let u = find_user(services, user)?;
    let patch = UserPatch {
        disabled: Some(disabled),
        ..UserPatch::default()
    };
    let u = services
        .auth
        .update_user(&u.id, patch, &Actor::operator(&ctx.operator))
        .map_err(auth_failure)?;
    let word = if disabled { "disabled" } else { "enabled" };
    ctx.print(json!({"user": u}), || format!("{} {word}", u.username));
    Ok(())
}
