//! `offgrid serve`: the HTTP server, in the foreground.

use std::process::ExitCode;

use offgrid_cli::Failure;

use super::{Global, Outcome};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Address to bind.
    #[arg(long)]
    host: Option<String>,
    /// Port to bind (0 picks a free one).
    #[arg(long)]
    port: Option<String>,
    /// Enable multi-user mode (true/false).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    multi_user: Option<String>,
    /// Require authentication for every request (true/false).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    require_auth: Option<String>,
    /// Let anonymous requests chat as Guest (true/false).
    #[arg(long, value_name = "BOOL")]
    guest_access: Option<String>,
    /// Allow single-user mode (no login) on a non-loopback address
    /// (true/false).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    allow_remote_single_user: Option<String>,
    /// HTTP worker threads (default: number of cores).
    #[arg(long)]
    workers: Option<usize>,
}

impl Args {
    /// The flags that override settings, as `(key, value, flag)`.
    fn overrides(&self) -> Vec<(&'static str, String, String)> {
        let flags = [
            ("host", &self.host, "--host"),
            ("port", &self.port, "--port"),
            ("multi_user_mode", &self.multi_user, "--multi-user"),
            ("require_auth", &self.require_auth, "--require-auth"),
            ("guest_access", &self.guest_access, "--guest-access"),
            (
                "allow_remote_single_user",
                &self.allow_remote_single_user,
                "--allow-remote-single-user",
            ),
        ];
        flags
            .into_iter()
            .filter_map(|(key, value, flag)| value.clone().map(|v| (key, v, flag.to_owned())))
            .collect()
    }
}

pub(crate) fn run(global: &Global, args: Args) -> Outcome {
    let loaded = global.load(args.overrides())?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let settings = loaded.settings;
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mode = if settings.multi_user_mode {
        "multi-user"
    } else {
        "single-user"
    };
    let auth_config = offgrid_server::auth_config(&settings);
    offgrid_server::check_exposure(&settings).map_err(Failure::usage)?;
    if offgrid_server::single_user_beyond_loopback(&settings) {
        tracing::warn!(
            host = %settings.host,
            "single-user mode on a non-loopback address: anyone who can reach this port \
             has full access; enable multi-user mode with require_auth for a shared network"
        );
    }
    let prepared = offgrid_server::prepare(settings, auth_config)
        .map_err(|e| Failure::new(1, format!("{e:#}")))?;
    let addr = prepared.addr;
    let setup_code = prepared.setup_code();
    actix_web::rt::System::new()
        .block_on(async move {
            let server = prepared.run(workers)?;
            println!("OffGrid listening on http://{addr} ({mode} mode)");
            if let Some(code) = setup_code {
                eprintln!(
                    "No administrator yet. Create one with `offgrid-admin setup`, or with \
                     POST /v1/auth/setup and \"setup_code\": \"{code}\" (not needed straight \
                     from this machine to a loopback-bound server, without a proxy; valid until \
                     setup is done; a new code at each start)."
                );
            }
            server.await?;
            anyhow::Ok(())
        })
        .map_err(|e| Failure::new(1, format!("{e:#}")))?;
    Ok(ExitCode::SUCCESS)
}
