//! `offgrid`: the OffGrid server and its local commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use offgrid_config::{Loaded, Overrides, load_from_process, validate_file};
use offgrid_domain::user::UserQuery;

/// OffGrid: a self-hosted, offline LLM server.
#[derive(Parser, Debug)]
#[command(name = "offgrid", version, about)]
struct Cli {
    /// Data directory (default: $OFFGRID_HOME or ~/.offgrid-llm).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Config file (default: $OFFGRID_CONFIG or $OFFGRID_HOME/config.yaml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Show or check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Installed models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Send one prompt and stream the answer, from a running server or,
    /// when none answers, from the model loaded in this process (Ctrl-C
    /// stops the generation).
    Run {
        /// Model id.
        model: String,
        /// The prompt (read from stdin when absent).
        prompt: Option<String>,
        /// Server URL (default: from the host and port settings).
        #[arg(long)]
        url: Option<String>,
        /// Sampling temperature, 0 to 2 (0: greedy).
        #[arg(long, default_value_t = 0.7)]
        temperature: f64,
    },
    /// Chat with a model on a running server, or in this process when none
    /// answers (Ctrl-C stops the current answer; Ctrl-D or /exit quits).
    Chat {
        /// Model id.
        #[arg(long, default_value = "smollm2-135m-instruct")]
        model: String,
        /// Server URL (default: from the host and port settings).
        #[arg(long)]
        url: Option<String>,
        /// Sampling temperature, 0 to 2 (0: greedy).
        #[arg(long, default_value_t = 0.7)]
        temperature: f64,
    },
    /// List user accounts (multi-user mode).
    Users {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
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

#[derive(Subcommand, Debug)]
enum ModelsCommand {
    /// List installed models.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one model's details.
    Show {
        /// Model id (its folder name under $OFFGRID_HOME/models).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy a local .gguf file (or an embedding model folder with
    /// model.safetensors, tokenizer.json and config.json) into the models
    /// folder, after checking it is a model OffGrid can run.
    Import {
        /// The .gguf file or the embedding model folder.
        path: std::path::PathBuf,
        /// The model id (default: the file name without .gguf, lowercased).
        #[arg(long)]
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete an installed model and its files.
    Remove {
        /// Model id.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print the effective settings and where each value came from.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a config file (default: the one `serve` would read).
    Validate {
        /// The file to check.
        file: Option<PathBuf>,
    },
}

/// Exit code for configuration and usage errors.
const EXIT_USAGE: u8 = 2;

fn overrides(cli: &Cli) -> Overrides {
    let mut values = Vec::new();
    if let Command::Serve(args) = &cli.command {
        let flags = [
            ("host", &args.host, "--host"),
            ("port", &args.port, "--port"),
            ("multi_user_mode", &args.multi_user, "--multi-user"),
            ("require_auth", &args.require_auth, "--require-auth"),
            ("guest_access", &args.guest_access, "--guest-access"),
            (
                "allow_remote_single_user",
                &args.allow_remote_single_user,
                "--allow-remote-single-user",
            ),
        ];
        for (key, value, flag) in flags {
            if let Some(v) = value {
                values.push((key, v.clone(), flag.to_owned()));
            }
        }
    }
    Overrides {
        home: cli.home.clone(),
        config: cli.config.clone(),
        values,
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("offgrid: {message}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let informational = matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if informational {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line, not clap's usage block.
            let text = e.to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            return fail(EXIT_USAGE, line.trim_start_matches("error: "));
        }
    };
    if let Command::Config(ConfigCommand::Validate { file: Some(file) }) = &cli.command {
        return match validate_file(file) {
            Ok(()) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(EXIT_USAGE, e),
        };
    }
    let loaded = match load_from_process(&overrides(&cli)) {
        Ok(l) => l,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    match cli.command {
        Command::Serve(args) => serve(loaded, args.workers),
        Command::Config(ConfigCommand::Show { json }) => {
            show_config(&loaded, json);
            ExitCode::SUCCESS
        }
        // An explicit FILE was handled above, before loading.
        Command::Config(ConfigCommand::Validate { .. }) => match &loaded.config_file {
            Some(path) => {
                println!("{}: ok", path.display());
                ExitCode::SUCCESS
            }
            None => {
                println!("no config file; defaults and environment are valid");
                ExitCode::SUCCESS
            }
        },
        Command::Users { json } => users(&loaded, json),
        Command::Models(cmd) => models::run(&loaded.settings.home.join("models"), cmd),
        Command::Run {
            model,
            prompt,
            url,
            temperature,
        } => match connect(&loaded, url, &model, temperature) {
            Ok(backend) => client::run(&backend, &model, prompt),
            Err(code) => code,
        },
        Command::Chat {
            model,
            url,
            temperature,
        } => match connect(&loaded, url, &model, temperature) {
            Ok(backend) => client::chat(&backend, &model),
            Err(code) => code,
        },
    }
}

mod client;
mod models;

/// A running server, or the model loaded in this process.
fn connect(
    loaded: &Loaded,
    url: Option<String>,
    model: &str,
    temperature: f64,
) -> Result<client::Backend, ExitCode> {
    if !(0.0..=2.0).contains(&temperature) {
        eprintln!("offgrid: --temperature must be between 0 and 2");
        return Err(ExitCode::from(2));
    }
    let explicit = url.is_some();
    let url = server_url(loaded, url);
    let models = loaded.settings.home.join("models");
    client::Backend::connect(&url, explicit, &models, model, temperature).map_err(|e| {
        eprintln!("offgrid: {e}");
        ExitCode::from(1)
    })
}

/// The server's base URL: `--url`, else the configured host and port.
fn server_url(loaded: &Loaded, url: Option<String>) -> String {
    url.unwrap_or_else(|| {
        let host = match loaded.settings.host.as_str() {
            "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
            h => h,
        };
        format!("http://{host}:{}", loaded.settings.port)
    })
    .trim_end_matches('/')
    .to_owned()
}

fn show_config(loaded: &Loaded, json: bool) {
    let rows = loaded.rows();
    if json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(k, v, s)| {
                (
                    (*k).to_owned(),
                    serde_json::json!({"value": v, "source": s.to_string()}),
                )
            })
            .collect();
        println!("{}", serde_json::Value::Object(map));
        return;
    }
    let width = rows.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    for (key, value, source) in rows {
        println!("{key:width$}  {value:<30}  ({source})");
    }
}

fn users(loaded: &Loaded, json: bool) -> ExitCode {
    if !loaded.settings.multi_user_mode {
        println!("{}.", offgrid_config::multi_user_disabled("config.yaml"));
        return ExitCode::SUCCESS;
    }
    let services = match offgrid_cli::Services::open(&loaded.settings) {
        Ok(services) => services,
        Err(e) => return fail(1, e),
    };
    let query = UserQuery {
        search: None,
        role: None,
        limit: i64::MAX,
        offset: 0,
    };
    match services.list_users(&query) {
        Ok(page) if json => {
            println!(
                "{}",
                serde_json::json!({"data": page.data, "total": page.total})
            );
            ExitCode::SUCCESS
        }
        Ok(page) => {
            println!("{:<24} {:<8} {:<8} ID", "USERNAME", "ROLE", "STATUS");
            for u in page.data {
                let status = if u.disabled { "disabled" } else { "active" };
                println!("{:<24} {:<8} {:<8} {}", u.username, u.role, status, u.id);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}

fn serve(loaded: Loaded, workers: Option<usize>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let settings = loaded.settings;
    let workers =
        workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mode = if settings.multi_user_mode {
        "multi-user"
    } else {
        "single-user"
    };
    let auth_config = offgrid_server::auth_config(&settings);
    if let Err(refusal) = offgrid_server::check_exposure(&settings) {
        return fail(EXIT_USAGE, refusal);
    }
    if !offgrid_http::is_loopback_name(&settings.host) && !settings.multi_user_mode {
        tracing::warn!(
            host = %settings.host,
            "single-user mode on a non-loopback address: anyone who can reach this port \
             has full access; enable multi-user mode with require_auth for a shared network"
        );
    }
    let prepared = match offgrid_server::prepare(settings, auth_config) {
        Ok(p) => p,
        Err(e) => return fail(1, format!("{e:#}")),
    };
    let addr = prepared.addr;
    let setup_code = prepared.setup_code();
    let result = actix_web::rt::System::new().block_on(async move {
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
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
