//! `offgrid-admin db migrate|status|backup`: database maintenance.

use std::path::PathBuf;

use clap::Subcommand;
use offgrid_cli::Failure;
use serde_json::json;

use super::Ctx;

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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

pub(crate) fn run(ctx: &Ctx, cmd: Command) -> Result<(), Failure> {
    let db = ctx.open_db()?;
    match cmd {
        Command::Migrate => {
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
        Command::Status => {
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
        Command::Backup { path } => {
            db.backup(&path)?;
            ctx.print(json!({"backup": path}), || {
                format!("backup written to {}", path.display())
            });
        }
    }
    Ok(())
}
