//! Access to one owned resource (a chat session, a RAG collection, a preset):
//! the owner, an administrator with the "all" permission, or a share grant.

pub use offgrid_domain::workspace::GrantLevel;
use offgrid_domain::{Permission, Principal, UserId};

use crate::matrix::authorize;

/// What a principal may do with a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: callers answer 404 so the resource's existence does not leak.
    None,
    /// At most the given level.
    Granted(GrantLevel),
}

impl Access {
    /// Whether this access covers `needed`.
    pub fn allows(self, needed: GrantLevel) -> bool {
        matches!(self, Access::Granted(level) if level >= needed)
    }
}

/// The access `principal` has to a resource owned by `owner`, given the
/// grant shared with them (if any). `all_permission` is the permission that
/// lets an administrator see every user's resources of this kind.
pub fn resource_access(
    principal: &Principal,
    owner: &UserId,
    shared: Option<GrantLevel>,
    all_permission: Permission,
) -> Access {
    let is_owner = principal.user_id.as_ref() == Some(owner);
    if is_owner || authorize(principal, all_permission).is_ok() {
        return Access::Granted(GrantLevel::Admin);
    }
    match (shared, principal.user_id.is_some()) {
        (Some(level), true) => Access::Granted(level),
        _ => Access::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offgrid_domain::principal::Credential;
    use offgrid_domain::{Role, SessionId};

    fn user(role: Role) -> Principal {
        Principal {
            user_id: Some(UserId::generate()),
            role,
            credential: Credential::Session {
                session_id: SessionId::generate(),
                from_cookie: false,
            },
        }
    }

    #[test]
    fn owner_has_full_access() {
        let alice = user(Role::User);
        let owner = alice.user_id.clone().unwrap_or_else(UserId::system);
        let access = resource_access(&alice, &owner, None, Permission::AllSessions);
        assert!(access.allows(GrantLevel::Admin));
    }

    #[test]
    fn stranger_has_none_unless_shared() {
        let bob = user(Role::User);
        let owner = UserId::generate();
        assert_eq!(
            resource_access(&bob, &owner, None, Permission::AllSessions),
            Access::None
        );
        let read = resource_access(
            &bob,
            &owner,
            Some(GrantLevel::Read),
            Permission::AllSessions,
        );
        assert!(read.allows(GrantLevel::Read));
        assert!(!read.allows(GrantLevel::Write));
    }

    #[test]
    fn admin_sees_everything_guest_never_gets_shares() {
        let owner = UserId::generate();
        let admin = user(Role::Admin);
        assert!(
            resource_access(&admin, &owner, None, Permission::AllSessions)
                .allows(GrantLevel::Admin)
        );
        let guest = Principal::anonymous_guest();
        assert_eq!(
            resource_access(
                &guest,
                &owner,
                Some(GrantLevel::Read),
                Permission::AllSessions
            ),
            Access::None
        );
    }
}
