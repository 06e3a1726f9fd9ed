//! `offgrid users`: the accounts, through the same listing as
//! `offgrid-admin users list` (multi-user mode only).

use std::process::ExitCode;

use offgrid_cli::Services;
use offgrid_domain::user::UserQuery;

use super::{Global, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(global: &Global, args: Args) -> Outcome {
    let loaded = global.load(Vec::new())?;
    if !loaded.settings.multi_user_mode {
        println!("{}.", offgrid_config::multi_user_disabled("config.yaml"));
        return Ok(ExitCode::SUCCESS);
    }
    let services = Services::open(&loaded.settings)?;
    let page = services.list_users(&UserQuery {
        search: None,
        role: None,
        limit: i64::MAX,
        offset: 0,
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"data": page.data, "total": page.total})
        );
    } else {
        println!("{:<24} {:<8} {:<8} ID", "USERNAME", "ROLE", "STATUS");
        for u in page.data {
            let status = if u.disabled { "disabled" } else { "active" };
            println!("{:<24} {:<8} {:<8} {}", u.username, u.role, status, u.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}
