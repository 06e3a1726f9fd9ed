//! `offgrid-admin invite create|list|revoke`: invitations, through the same
//! `AuthService` calls as `/v1/invitations`, so the rules and audit entries
//! are the server's. The code is printed once, by `create`.

use clap::Subcommand;
use offgrid_auth::service::now;
use offgrid_auth::{Actor, DEFAULT_INVITATION_HOURS, INVITATION_EXPIRY_HOURS, InvitationRequest};
use offgrid_cli::Failure;
use offgrid_domain::invitation::Invitation;
use offgrid_domain::{InvitationId, Role, Timestamp};
use serde_json::{Value, json};

use super::{Ctx, auth_failure};

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Make an invitation; its code is shown this once.
    Create {
        /// The new account's role: admin, user or viewer.
        #[arg(long)]
        role: Role,
        /// How long the code works, in hours.
        #[arg(long, default_value_t = DEFAULT_INVITATION_HOURS,
            value_parser = clap::value_parser!(u32).range(
                i64::from(*INVITATION_EXPIRY_HOURS.start())..=i64::from(*INVITATION_EXPIRY_HOURS.end())
            ))]
        expires_in_hours: u32,
        /// Whom it is for.
        #[arg(long)]
        note: Option<String>,
    },
    /// List invitations, newest first, with their status (never a code).
    List,
    /// Revoke an unused invitation.
    Revoke {
        /// Invitation id.
        id: String,
    },
}

/// An invitation as `--json` prints it: as stored, with its status now.
fn invitation_json(invitation: &Invitation, at: Timestamp) -> Value {
    let mut value = json!(invitation);
    value["status"] = json!(invitation.status(at));
    value
}

pub(crate) fn run(ctx: &Ctx, cmd: Command) -> Result<(), Failure> {
    let services = ctx.services()?;
    let auth = &services.auth;
    let op = Actor::operator(&ctx.operator);
    match cmd {
        Command::Create {
            role,
            expires_in_hours,
            note,
        } => {
            let request = InvitationRequest {
                role,
                expires_in_hours,
                note,
            };
            let issued = auth.create_invitation(request, &op).map_err(auth_failure)?;
            let i = &issued.invitation;
            let path = format!("/invite/{}", issued.code);
            ctx.print(
                json!({
                    "id": i.id,
                    "code": issued.code,
                    "path": path,
                    "role": i.role,
                    "expires_at": i.expires_at,
                }),
                || {
                    format!(
                        "created invitation {} ({}, until {})\ncode (shown once): {}\npath: {path}",
                        i.id, i.role, i.expires_at, issued.code
                    )
                },
            );
        }
        Command::List => {
            let mut all = Vec::new();
            let mut cursor = None;
            loop {
                let page = auth
                    .list_invitations(None, cursor.as_deref())
                    .map_err(auth_failure)?;
                all.extend(page.data);
                match page.next_cursor {
                    Some(next) => cursor = Some(next.encode()),
                    None => break,
                }
            }
            let at = now();
            let data: Vec<Value> = all.iter().map(|i| invitation_json(i, at)).collect();
            ctx.print(json!({ "data": data }), || {
                all.iter()
                    .map(|i| {
                        let status = i.status(at).as_str();
                        let by = i
                            .used_by
                            .as_ref()
                            .map(|u| format!(" by {}", u.username))
                            .unwrap_or_default();
                        let note = i.note.as_deref().unwrap_or("");
                        format!(
                            "{}  {:<6} {status}{by}  until {}  from {}  {note}",
                            i.id, i.role, i.expires_at, i.created_by.name
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Revoke { id } => {
            let invitation = auth
                .revoke_invitation(&InvitationId::from_string(id), &op)
                .map_err(auth_failure)?;
            ctx.print(
                json!({ "invitation": invitation_json(&invitation, now()) }),
                || format!("revoked invitation {}", invitation.id),
            );
        }
    }
    Ok(())
}
