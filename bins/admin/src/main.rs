//! `offgrid-admin`: operator tasks on OffGrid's database. Works whether or
//! not the server is running (SQLite WAL + busy timeout + immediate
//! transactions make the two safe side by side). Passwords come from a
//! prompt or `--password-stdin`, never from argv.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use offgrid_auth::{
    AccountInput, Actor, AuthError, AuthService, KEY_EXPIRY_DAYS, KeyIssuer, KeyRequest,
    ServerSecret, SetupProof, key_expiry_in_days,
};
use offgrid_config::{Overrides, Settings, load_from_process};
use offgrid_domain::audit::AuditQuery;
use offgrid_domain::user::{User, UserPatch, UserQuery};
use offgrid_domain::{ApiKeyId, OperatorCapability, Role, Scope, Timestamp, UserId};
use offgrid_storage::Database;
use serde_json::json;

/// OffGrid administration on the server's database.
#[derive(Parser, Debug)]
#[command(name = "offgrid-admin", version, about)]
struct Cli {
    /// Data directory (default: $OFFGRID_HOME or ~/.offgrid-llm).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Config file (default: $OFFGRID_CONFIG or $OFFGRID_HOME/config.yaml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage user accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create the first administrator.
    Setup {
        /// Login name.
        username: String,
        /// Optional e-mail.
        #[arg(long)]
        email: Option<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Database maintenance.
    #[command(subcommand)]
    Db(DbCommand),
    /// Show the audit log, newest first (or `audit prune`).
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        #[command(subcommand)]
        command: Option<AuditCommand>,
        /// Exact action, or a family ending in `.` (e.g. `login.`).
        #[arg(long)]
        action: Option<String>,
        /// Only events by this user (name or id).
        #[arg(long)]
        actor: Option<String>,
        /// Only events about this target id.
        #[arg(long)]
        target: Option<String>,
        /// Only events at or after this RFC 3339 time.
        #[arg(long, value_parser = parse_time)]
        since: Option<Timestamp>,
        /// How many events.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10000))]
        limit: i64,
        /// Keep printing new events as they are recorded (Ctrl-C to stop).
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Delete audit entries older than the retention period (the server
    /// also does this every hour).
    Prune {
        /// Age limit in days (default: the `audit_retention_days` setting).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
        older_than_days: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
enum UsersCommand {
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
    /// Delete an account with its keys and sessions.
    Delete {
        /// Username or id.
        user: String,
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

#[derive(Subcommand, Debug)]
enum KeysCommand {
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

#[derive(Subcommand, Debug)]
enum DbCommand {
    /// Apply pending migrations.
    Migrate,
    /// List migrations and whether each is applied.
    Status,
    /// Write a consistent online copy of the database to PATH.
    Backup {
        /// Destination file (must not exist).
        path: PathBuf,
    },
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text)
        .ok_or_else(|| format!("expected an RFC 3339 time like 2026-01-01T00:00:00Z, got {text:?}"))
}

/// An error with its exit code; printed as one line.
struct Failure {
    code: u8,
    message: String,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 1,
            message: e.to_string(),
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

fn auth_failure(e: AuthError) -> Failure {
    let code = if matches!(e, AuthError::Invalid { .. } | AuthError::CommonPassword) {
        2
    } else {
        1
    };
    Failure {
        code,
        message: e.to_string(),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let text = e.to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("offgrid-admin: {}", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("offgrid-admin: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

struct Ctx {
    settings: Settings,
    json: bool,
    /// This binary is the machine's operator: it alone may see every row.
    operator: OperatorCapability,
}

impl Ctx {
    fn open_db(&self) -> Result<Database, Failure> {
        offgrid_storage::make_private_dir(&self.settings.home)?;
        Ok(Database::open(&self.settings.database_path())?)
    }

    fn service(&self) -> Result<AuthService, Failure> {
        let db = self.open_db()?;
        db.migrate()?;
        let secret = ServerSecret::load_or_create(&self.settings.home.join("secret.key"))?;
        let config = offgrid_auth::AuthConfig::from_settings(
            self.settings.bcrypt_cost,
            self.settings.session_ttl_hours,
            self.settings.remember_me_days,
        );
        AuthService::new(db.repositories(), &secret, config).map_err(auth_failure)
    }

    fn print(&self, value: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}

fn read_password(from_stdin: bool) -> Result<String, Failure> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            return Err(usage("--password-stdin: stdin was empty"));
        }
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage(
            "no terminal to prompt for a password: pass --password-stdin",
        ));
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Repeat password: ")?;
    if first != second {
        return Err(usage("passwords do not match"));
    }
    Ok(first)
}

fn find_user(auth: &AuthService, name_or_id: &str) -> Result<User, Failure> {
    let users = &auth.repos().users;
    match users.get_by_username(name_or_id) {
        Ok(u) => Ok(u),
        Err(_) => users
            .get(&UserId::from_string(name_or_id))
            .map_err(|_| Failure {
                code: 1,
                message: format!("no user {name_or_id:?}"),
            }),
    }
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

fn run(cli: Cli) -> Result<(), Failure> {
    let overrides = Overrides {
        home: cli.home.clone(),
        config: cli.config.clone(),
        values: Vec::new(),
    };
    let loaded = load_from_process(&overrides).map_err(|e| usage(e.to_string()))?;
    let ctx = Ctx {
        settings: loaded.settings,
        json: cli.json,
        operator: OperatorCapability::assume(),
    };
    match cli.command {
        Command::Users(cmd) => users(&ctx, cmd),
        Command::Keys(cmd) => keys(&ctx, cmd),
        Command::Setup {
            username,
            email,
            password_stdin,
        } => {
            let auth = ctx.service()?;
            let password = read_password(password_stdin)?;
            let input = AccountInput {
                username,
                password,
                email,
                display_name: None,
                role: Role::Admin,
            };
            let user = auth
                .setup(input, SetupProof::Local, &Actor::operator(&ctx.operator))
                .map_err(auth_failure)?;
            ctx.print(json!({"user": user}), || {
                format!("created administrator {}", user.username)
            });
            Ok(())
        }
        Command::Db(cmd) => db(&ctx, cmd),
        Command::Audit {
            command: Some(AuditCommand::Prune { older_than_days }),
            ..
        } => {
            let auth = ctx.service()?;
            let days = older_than_days.unwrap_or(ctx.settings.audit_retention_days);
            if days == 0 {
                return Err(usage(
                    "audit_retention_days is 0 (keep forever): pass --older-than-days",
                ));
            }
            let deleted = auth
                .prune_audit(days, &Actor::operator(&ctx.operator))
                .map_err(auth_failure)?;
            ctx.print(json!({"deleted": deleted, "older_than_days": days}), || {
                format!("deleted {deleted} audit entries older than {days} days")
            });
            Ok(())
        }
        Command::Audit {
            command: None,
            action,
            actor,
            target,
            since,
            limit,
            follow,
        } => {
            let auth = ctx.service()?;
            let actor_id = match actor {
                Some(a) => Some(find_user(&auth, &a)?.id),
                None => None,
            };
            let mut query = AuditQuery {
                action,
                actor_id,
                target,
                since,
                after_id: None,
                limit,
                offset: 0,
            };
            let page = auth.repos().audit.list(&query)?;
            if !follow {
                ctx.print(json!({"data": page.data, "total": page.total}), || {
                    page.data
                        .iter()
                        .map(audit_line)
                        .collect::<Vec<_>>()
                        .join("\n")
                });
                return Ok(());
            }
            // Follow: oldest first, then each new event as it arrives.
            let mut last = 0;
            let mut batch = page.data;
            loop {
                batch.reverse();
                for event in &batch {
                    if ctx.json {
                        println!("{}", json!(event));
                    } else {
                        println!("{}", audit_line(event));
                    }
                    last = last.max(event.id);
                }
                std::thread::sleep(std::time::Duration::from_secs(1));
                query.after_id = Some(last);
                query.limit = 1000;
                batch = auth.repos().audit.list(&query)?.data;
            }
        }
    }
}

fn audit_line(e: &offgrid_domain::audit::AuditEvent) -> String {
    let repeats = match (e.repeats, e.last_at) {
        (n, Some(last)) if n > 1 => format!(" ({n} times, last {last})"),
        _ => String::new(),
    };
    format!(
        "{}  {:<22} actor={} target={} addr={}{}{repeats}",
        e.at,
        e.action,
        e.actor.as_deref().unwrap_or("-"),
        e.target.as_deref().unwrap_or("-"),
        e.client_addr.as_deref().unwrap_or("-"),
        e.details
            .as_deref()
            .map(|d| format!(" {d}"))
            .unwrap_or_default()
    )
}

fn users(ctx: &Ctx, cmd: UsersCommand) -> Result<(), Failure> {
    let auth = ctx.service()?;
    let op = Actor::operator(&ctx.operator);
    match cmd {
        UsersCommand::List {
            search,
            role,
            limit,
        } => {
            let page = auth.repos().users.list(&UserQuery {
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
        UsersCommand::Create {
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
        UsersCommand::Show { user } => {
            let u = find_user(&auth, &user)?;
            let keys = auth
                .list_api_keys(&Scope::operator(&ctx.operator), &u.id)
                .map_err(auth_failure)?;
            ctx.print(json!({"user": u, "api_keys": keys}), || {
                format!("{}\nAPI keys: {}", user_line(&u), keys.len())
            });
        }
        UsersCommand::SetRole { user, role } => {
            let u = find_user(&auth, &user)?;
            let patch = UserPatch {
                role: Some(role),
                ..UserPatch::default()
            };
            let u = auth.update_user(&u.id, patch, &op).map_err(auth_failure)?;
            ctx.print(json!({"user": u}), || {
                format!("{} is now {}", u.username, u.role)
            });
        }
        UsersCommand::Disable { user } => set_disabled(ctx, &auth, &user, true)?,
        UsersCommand::Enable { user } => set_disabled(ctx, &auth, &user, false)?,
        UsersCommand::Delete { user } => {
            let u = find_user(&auth, &user)?;
            auth.delete_user(&u.id, &op).map_err(auth_failure)?;
            ctx.print(json!({"deleted": true, "id": u.id}), || {
                format!("deleted {}", u.username)
            });
        }
        UsersCommand::ResetPassword {
            user,
            password_stdin,
        } => {
            let u = find_user(&auth, &user)?;
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

fn set_disabled(ctx: &Ctx, auth: &AuthService, user: &str, disabled: bool) -> Result<(), Failure> {
    let u = find_user(auth, user)?;
    let patch = UserPatch {
        disabled: Some(disabled),
        ..UserPatch::default()
    };
    let u = auth
        .update_user(&u.id, patch, &Actor::operator(&ctx.operator))
        .map_err(auth_failure)?;
    let word = if disabled { "disabled" } else { "enabled" };
    ctx.print(json!({"user": u}), || format!("{} {word}", u.username));
    Ok(())
}

fn keys(ctx: &Ctx, cmd: KeysCommand) -> Result<(), Failure> {
    let auth = ctx.service()?;
    let op = Actor::operator(&ctx.operator);
    let scope = Scope::operator(&ctx.operator);
    match cmd {
        KeysCommand::Create {
            user,
            name,
            expires_in_days,
            can_create_keys,
        } => {
            let u = find_user(&auth, &user)?;
            let expires = expires_in_days
                .map(|d| {
                    key_expiry_in_days(d)
                        .ok_or_else(|| usage(format!("--expires-in-days {d} is out of range")))
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
        KeysCommand::List { user } => {
            let u = find_user(&auth, &user)?;
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
        KeysCommand::Revoke { user, key_id } => {
            let u = find_user(&auth, &user)?;
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

fn db(ctx: &Ctx, cmd: DbCommand) -> Result<(), Failure> {
    let db = ctx.open_db()?;
    match cmd {
        DbCommand::Migrate => {
            let applied = db.migrate()?;
            ctx.print(json!({"applied": applied}), || {
                if applied.is_empty() {
                    "database is up to date".to_owned()
                } else {
                    format!(
                        "applied {} migration(s): {}",
                        applied.len(),
                        applied.join(", ")
                    )
                }
            });
        }
        DbCommand::Status => {
            let status = db.migration_status()?;
            let rows: Vec<_> = status
                .iter()
                .map(|m| json!({"name": m.name, "applied": m.applied}))
                .collect();
            ctx.print(json!({"migrations": rows}), || {
                status
                    .iter()
                    .map(|m| {
                        format!(
                            "{}  {}",
                            if m.applied { "applied" } else { "pending" },
                            m.name
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DbCommand::Backup { path } => {
            db.backup(&path)?;
            ctx.print(json!({"backup": path}), || {
                format!("backup written to {}", path.display())
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
