//! `offgrid-admin setup`: creates the first administrator, as someone on
//! this machine (no setup code needed).

use offgrid_auth::{AccountInput, Actor, SetupProof};
use offgrid_cli::Failure;
use offgrid_domain::Role;
use serde_json::json;

use super::{Ctx, auth_failure, read_password};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Login name.
    username: String,
    /// Optional e-mail.
    #[arg(long)]
    email: Option<String>,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    password_stdin: bool,
}

pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<(), Failure> {
    let services = ctx.services()?;
    let password = read_password(args.password_stdin)?;
    let input = AccountInput {
        username: args.username,
        password,
        email: args.email,
        display_name: None,
        role: Role::Admin,
    };
    let user = services
        .auth
        .setup(input, SetupProof::Local, &Actor::operator(&ctx.operator))
        .map_err(auth_failure)?;
    ctx.print(json!({"user": user}), || {
        format!("created administrator {}", user.username)
    });
    Ok(())
}
