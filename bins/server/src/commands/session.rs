//! `offgrid session list|show|export|delete`: chat sessions on a running
//! server, through the same HTTP API (and access rules) as every client. An
//! API key can be given in `OFFGRID_API_KEY`; single-user mode needs none.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use offgrid_cli::Failure;
use offgrid_http::wire::{Session, SessionList};

use super::api::Api;
use super::{Global, Outcome, server_url};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Markdown.
    Md,
    /// JSON.
    Json,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// List sessions, most recently changed first.
    List {
        /// Sessions shared with you instead of your own.
        #[arg(long)]
        shared: bool,
        /// Every user's (administrators).
        #[arg(long, conflicts_with = "shared")]
        all: bool,
        /// Only titles containing this text.
        #[arg(long, short)]
        q: Option<String>,
        /// At most this many (1 to 100).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Server URL (default: from the host and port settings).
        #[arg(long)]
        url: Option<String>,
    },
    /// Show one session with its messages.
    Show {
        /// Session id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Server URL.
        #[arg(long)]
        url: Option<String>,
    },
    /// Write a session as Markdown or JSON.
    Export {
        /// Session id.
        id: String,
        /// Format.
        #[arg(long, value_enum, default_value_t = Format::Md)]
        format: Format,
        /// Write to this file instead of stdout (it must not exist).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Server URL.
        #[arg(long)]
        url: Option<String>,
    },
    /// Delete a session (its owner or an administrator).
    Delete {
        /// Session id.
        id: String,
        /// Server URL.
        #[arg(long)]
        url: Option<String>,
    },
}

fn path_id(id: &str) -> String {
    // Ids are UUIDs; anything else is sent escaped and answered 404.
    id.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn line(s: &Session) -> String {
    format!(
        "{}  {:<7} {:>4} msgs  {}  {}  {}",
        s.id,
        s.permission,
        s.message_count,
        s.updated_at.to_rfc3339(),
        s.owner.username,
        s.title
    )
}

fn json_out(text: serde_json::Result<String>) -> Result<(), Failure> {
    println!("{}", text.map_err(|e| Failure::new(1, e.to_string()))?);
    Ok(())
}

pub(crate) fn run(global: &Global, cmd: Command) -> Outcome {
    let loaded = global.load(Vec::new())?;
    match cmd {
        Command::List {
            shared,
            all,
            q,
            limit,
            json,
            url,
        } => {
            let api = Api::new(server_url(&loaded, url))?;
            let mut query = vec![("limit", limit.to_string())];
            if shared {
                query.push(("shared", "true".into()));
            }
            if all {
                query.push(("all", "true".into()));
            }
            if let Some(q) = q {
                query.push(("q", q));
            }
            let list: SessionList = api
                .send(
                    api.request(reqwest::Method::GET, "/v1/sessions")
                        .query(&query),
                )?
                .json()
                .map_err(|e| Failure::new(1, e.to_string()))?;
            if json {
                json_out(serde_json::to_string(&list))?;
            } else if list.data.is_empty() {
                println!("no sessions");
            } else {
                for s in &list.data {
                    println!("{}", line(s));
                }
            }
        }
        Command::Show { id, json, url } => {
            let api = Api::new(server_url(&loaded, url))?;
            let path = format!("/v1/sessions/{}", path_id(&id));
            let s: Session = api
                .send(api.request(reqwest::Method::GET, &path))?
                .json()
                .map_err(|e| Failure::new(1, e.to_string()))?;
            if json {
                json_out(serde_json::to_string(&s))?;
            } else {
                println!("{}", line(&s));
                match &s.messages {
                    None => println!("(messages not readable by you)"),
                    Some(messages) => {
                        for m in messages {
                            let cut = if m.interrupted { " (interrupted)" } else { "" };
                            println!("\n[{}]{cut}\n{}", m.role.as_str(), m.content);
                        }
                    }
                }
            }
        }
        Command::Export {
            id,
            format,
            output,
            url,
        } => {
            let api = Api::new(server_url(&loaded, url))?;
            let fmt = match format {
                Format::Md => "md",
                Format::Json => "json",
            };
            let path = format!("/v1/sessions/{}/export", path_id(&id));
            let body = api
                .send(
                    api.request(reqwest::Method::GET, &path)
                        .query(&[("format", fmt)]),
                )?
                .bytes()
                .map_err(|e| Failure::new(1, e.to_string()))?;
            match output {
                None => std::io::stdout().write_all(&body)?,
                Some(file) => {
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&file)
                        .map_err(|e| Failure::new(1, format!("{}: {e}", file.display())))?;
                    f.write_all(&body)?;
                }
            }
        }
        Command::Delete { id, url } => {
            let api = Api::new(server_url(&loaded, url))?;
            let path = format!("/v1/sessions/{}", path_id(&id));
            api.send(api.request(reqwest::Method::DELETE, &path))?;
            println!("deleted {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
