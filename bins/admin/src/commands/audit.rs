//! `offgrid-admin audit [--follow]` shows the audit log; `audit prune`
//! applies the retention period now.

use clap::Subcommand;
use offgrid_auth::Actor;
use offgrid_cli::Failure;
use offgrid_domain::Timestamp;
use offgrid_domain::audit::{AuditEvent, AuditQuery};
use serde_json::json;

use super::{Ctx, auth_failure, find_user};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Option<Prune>,
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
}

#[derive(Subcommand, Debug)]
enum Prune {
    /// Delete audit entries older than the retention period (the server
    /// also does this every hour).
    Prune {
        /// Age limit in days (default: the `audit_retention_days` setting).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
        older_than_days: Option<u32>,
    },
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text)
        .ok_or_else(|| format!("expected an RFC 3339 time like 2026-01-01T00:00:00Z, got {text:?}"))
}

fn audit_line(e: &AuditEvent) -> String {
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

pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<(), Failure> {
    if let Some(Prune::Prune { older_than_days }) = args.command {
        return prune(ctx, older_than_days);
    }
    let services = ctx.services()?;
    let actor_id = match args.actor {
        Some(a) => Some(find_user(&services, &a)?.id),
        None => None,
    };
    let mut query = AuditQuery {
        action: args.action,
        actor_id,
        target: args.target,
        since: args.since,
        after_id: None,
        limit: args.limit,
        offset: 0,
    };
    let audit = &services.auth.repos().audit;
    let page = audit.list(&query)?;
    if !args.follow {
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
            if ctx.json() {
                println!("{}", json!(event));
            } else {
                println!("{}", audit_line(event));
            }
            last = last.max(event.id);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
        query.after_id = Some(last);
        query.limit = 1000;
        batch = audit.list(&query)?.data;
    }
}

fn prune(ctx: &Ctx, older_than_days: Option<u32>) -> Result<(), Failure> {
    let services = ctx.services()?;
    let days = older_than_days.unwrap_or(ctx.settings.audit_retention_days);
    if days == 0 {
        return Err(Failure::usage(
            "audit_retention_days is 0 (keep forever): pass --older-than-days",
        ));
    }
    let deleted = services
        .auth
        .prune_audit(days, &Actor::operator(&ctx.operator))
        .map_err(auth_failure)?;
    ctx.print(json!({"deleted": deleted, "older_than_days": days}), || {
        format!("deleted {deleted} audit entries older than {days} days")
    });
    Ok(())
}
