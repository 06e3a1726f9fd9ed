//! `offgrid-admin quota show|set|reset USER`: a user's limits, overrides
//! and usage, through the same workspace service (and audit log) as
//! `GET|PUT /v1/users/{id}/quota`.

use clap::Subcommand;
use offgrid_cli::Failure;
use offgrid_domain::Principal;
use offgrid_domain::quota::QuotaOverrides;
use offgrid_workspace::quota::QuotaStatus;
use offgrid_workspace::{Actor, WorkspaceError};
use serde_json::json;

use super::{Ctx, find_user};

/// A limit on the command line: a number, `unlimited`, or `default` (the
/// role's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitArg {
    /// The role's default.
    Default,
    /// No limit.
    Unlimited,
    /// This limit.
    Max(u64),
}

fn limit_arg(text: &str) -> Result<LimitArg, String> {
    match text {
        "default" => Ok(LimitArg::Default),
        "unlimited" => Ok(LimitArg::Unlimited),
        n => match n.parse::<u64>() {
            Ok(n) if (1..=1 << 40).contains(&n) => Ok(LimitArg::Max(n)),
            _ => Err("a number from 1 to 2^40, `unlimited` or `default`".to_owned()),
        },
    }
}

impl LimitArg {
    fn apply(self, slot: &mut Option<Option<u64>>) {
        *slot = match self {
            LimitArg::Default => None,
            LimitArg::Unlimited => Some(None),
            LimitArg::Max(n) => Some(Some(n)),
        };
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Show a user's limits, overrides and usage.
    Show {
        /// Username or id.
        user: String,
    },
    /// Override some of a user's limits (the others stay as they are).
    Set {
        /// Username or id.
        user: String,
        /// Requests in any 60 seconds.
        #[arg(long, value_parser = limit_arg, value_name = "N|unlimited|default")]
        requests_per_minute: Option<LimitArg>,
        /// Prompt and completion tokens per UTC day.
        #[arg(long, value_parser = limit_arg, value_name = "N|unlimited|default")]
        tokens_per_day: Option<LimitArg>,
        /// Generations at once.
        #[arg(long, value_parser = limit_arg, value_name = "N|unlimited|default")]
        max_concurrent: Option<LimitArg>,
    },
    /// Clear a user's counters (requests this minute, tokens today).
    Reset {
        /// Username or id.
        user: String,
    },
}

fn failure(e: WorkspaceError) -> Failure {
    let code = if matches!(e, WorkspaceError::Invalid { .. }) {
        offgrid_cli::EXIT_USAGE
    } else {
        1
    };
    Failure::new(code, e.to_string())
}

fn limit(v: Option<u64>) -> String {
    v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

fn show(ctx: &Ctx, username: &str, (status, overrides): (QuotaStatus, QuotaOverrides)) {
    let l = status.limits;
    let overridden = |v: Option<Option<u64>>| if v.is_some() { " (override)" } else { "" };
    ctx.print(
        json!({
            "limits": l,
            "used": {
                "requests_per_minute": status.requests,
                "tokens_per_day": status.tokens,
                "max_concurrent": status.running,
            },
            "overrides": {
                "requests_per_minute": overrides.requests_per_minute,
                "tokens_per_day": overrides.tokens_per_day,
                "max_concurrent": overrides.max_concurrent,
            },
        }),
        || {
            format!(
                "{username}\n  requests per minute: {} used of {}{}\n  tokens per day:      {} used of {}{}\n  generations at once: {} of {}{}",
                status.requests,
                limit(l.requests_per_minute),
                overridden(overrides.requests_per_minute),
                status.tokens,
                limit(l.tokens_per_day),
                overridden(overrides.tokens_per_day),
                status.running,
                limit(l.max_concurrent),
                overridden(overrides.max_concurrent),
            )
        },
    );
}

pub(crate) fn run(ctx: &Ctx, cmd: Command) -> Result<(), Failure> {
    let services = ctx.services()?;
    let ws = &services.workspace;
    // The machine's operator acts as the built-in administrator.
    let op = Actor::new(Principal::local_owner(), None);
    match cmd {
        Command::Show { user } => {
            let u = find_user(&services, &user)?;
            let found = ws.user_quota(&op, &u.id).map_err(failure)?;
            show(ctx, &u.username, found);
        }
        Command::Set {
            user,
            requests_per_minute,
            tokens_per_day,
            max_concurrent,
        } => {
            if requests_per_minute.is_none() && tokens_per_day.is_none() && max_concurrent.is_none()
            {
                return Err(Failure::usage(
                    "give at least one of --requests-per-minute, --tokens-per-day, --max-concurrent",
                ));
            }
            let u = find_user(&services, &user)?;
            let (_, mut overrides) = ws.user_quota(&op, &u.id).map_err(failure)?;
            for (arg, slot) in [
                (requests_per_minute, &mut overrides.requests_per_minute),
                (tokens_per_day, &mut overrides.tokens_per_day),
                (max_concurrent, &mut overrides.max_concurrent),
            ] {
                if let Some(arg) = arg {
                    arg.apply(slot);
                }
            }
            let changed = ws.set_user_quota(&op, &u.id, &overrides).map_err(failure)?;
            show(ctx, &u.username, changed);
        }
        Command::Reset { user } => {
            let u = find_user(&services, &user)?;
            ws.reset_user_quota(&op, &u.id).map_err(failure)?;
            ctx.print(json!({"reset": u.username}), || {
                format!("cleared the quota counters of {}", u.username)
            });
        }
    }
    Ok(())
}
