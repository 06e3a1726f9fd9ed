//! The role/permission matrix.
//!
//! | Role   | Permissions                                                     |
//! |--------|-----------------------------------------------------------------|
//! | Admin  | everything: users, models, RAG, all sessions, metrics, audit    |
//! | User   | chat, view models, RAG, own sessions, own account               |
//! | Viewer | chat, view models, own account                                  |
//! | Guest  | chat                                                            |
//!
//! The single-user owner has every permission. A disabled user has none;
//! the auth crate never builds a principal for one.

use offgrid_domain::principal::Credential;
use offgrid_domain::{Permission, Principal, Role};

/// Whether `role` holds `permission`. Exhaustive on both enums, so adding a
/// role or a permission forces a decision here.
pub fn role_has(role: Role, permission: Permission) -> bool {
    use Permission as P;
    match role {
        Role::Admin => true,
        Role::User => match permission {
            P::Chat | P::ViewModels | P::UseRag | P::OwnSessions | P::ManageOwnAccount => true,
            P::ManageModels | P::AllSessions | P::ManageUsers | P::ViewMetrics | P::ViewAudit => {
                false
            }
        },
        Role::Viewer => match permission {
            P::Chat | P::ViewModels | P::ManageOwnAccount => true,
            P::ManageModels
            | P::UseRag
            | P::OwnSessions
            | P::AllSessions
            | P::ManageUsers
            | P::ViewMetrics
            | P::ViewAudit => false,
        },
        Role::Guest => match permission {
            P::Chat => true,
            P::ViewModels
            | P::ManageModels
            | P::UseRag
            | P::OwnSessions
            | P::AllSessions
            | P::ManageUsers
            | P::ViewMetrics
            | P::ViewAudit
            | P::ManageOwnAccount => false,
        },
    }
}

/// Every permission `role` holds, in [`Permission::ALL`] order.
pub fn permissions_of(role: Role) -> Vec<Permission> {
    Permission::ALL
        .into_iter()
        .filter(|p| role_has(role, *p))
        .collect()
}

/// The principal lacks a permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// What was needed.
    pub permission: Permission,
    /// The role that was checked.
    pub role: Role,
}

/// Allows the request when the principal's role holds `permission` (the
/// single-user owner holds all).
pub fn authorize(principal: &Principal, permission: Permission) -> Result<(), Denied> {
    let allowed = matches!(principal.credential, Credential::LocalOwner)
        || role_has(principal.role, permission);
    if allowed {
        Ok(())
    } else {
        Err(Denied {
            permission,
            role: principal.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission as P;
    use offgrid_domain::UserId;

    /// The whole matrix, written out: (role, permission, allowed).
    const EXPECTED: &[(Role, &[Permission])] = &[
        (Role::Admin, &Permission::ALL),
        (
            Role::User,
            &[
                P::Chat,
                P::ViewModels,
                P::UseRag,
                P::OwnSessions,
                P::ManageOwnAccount,
            ],
        ),
        (Role::Viewer, &[P::Chat, P::ViewModels, P::ManageOwnAccount]),
        (Role::Guest, &[P::Chat]),
    ];

    #[test]
    fn matrix_matches_the_table_for_every_pair() {
        for (role, allowed) in EXPECTED {
            for permission in Permission::ALL {
                assert_eq!(
                    role_has(*role, permission),
                    allowed.contains(&permission),
                    "{role} / {permission:?}"
                );
            }
            assert_eq!(permissions_of(*role), allowed.to_vec());
        }
        assert_eq!(EXPECTED.len(), Role::ALL.len());
    }

    #[test]
    fn local_owner_may_do_everything() {
        let owner = Principal::local_owner();
        for permission in Permission::ALL {
            assert!(authorize(&owner, permission).is_ok());
        }
    }

    #[test]
    fn guest_may_only_chat() {
        let guest = Principal::anonymous_guest();
        assert!(authorize(&guest, P::Chat).is_ok());
        assert_eq!(
            authorize(&guest, P::ViewModels),
            Err(Denied {
                permission: P::ViewModels,
                role: Role::Guest
            })
        );
    }

    #[test]
    fn authorize_follows_the_role_for_users() {
        let viewer = Principal {
            user_id: Some(UserId::generate()),
            role: Role::Viewer,
            credential: Credential::ApiKey {
                key_id: offgrid_domain::ApiKeyId::generate(),
            },
        };
        assert!(authorize(&viewer, P::ViewModels).is_ok());
        assert!(authorize(&viewer, P::UseRag).is_err());
        assert!(authorize(&viewer, P::ManageUsers).is_err());
    }
}
