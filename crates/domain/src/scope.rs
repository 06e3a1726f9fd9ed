//! Whose rows a repository call may see.
//!
//! Every repository method on a tenant-owned table takes a `Scope`, so a
//! handler cannot forget the owner filter: without a scope the call does not
//! compile. A scope that sees everything can only be made for an
//! administrator, or with an [`OperatorCapability`].

use crate::{Principal, Role, UserId};

/// Proof that the code runs as the machine's operator (`offgrid-admin`, who
/// can read the database file anyway). Only a build with this crate's
/// `operator` feature can make one: the admin binary turns it on, the HTTP
/// layer never does (`tests/api/layering.rs` checks both), so no request
/// path can reach an operator scope.
#[derive(Debug)]
pub struct OperatorCapability(());

impl OperatorCapability {
    /// The capability, for the operator's own tools.
    #[cfg(feature = "operator")]
    pub fn assume() -> Self {
        OperatorCapability(())
    }
}

/// The rows a query may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(ScopeInner);

#[derive(Debug, Clone, PartialEq, Eq)]
enum ScopeInner {
    Owner(UserId),
    Everything,
}

impl Scope {
    /// Rows owned by `user` only.
    pub fn owned_by(user: UserId) -> Self {
        Scope(ScopeInner::Owner(user))
    }

    /// Every row, for an administrator acting on other users' data (and for
    /// the single-user owner). `None` for anyone else.
    pub fn everything_for(principal: &Principal) -> Option<Self> {
        (principal.role == Role::Admin && principal.user_id.is_some())
            .then_some(Scope(ScopeInner::Everything))
    }

    /// Every row, for maintenance tools that act as the machine's operator
    /// (the `offgrid-admin` binary), never for a network request.
    pub fn operator(_: &OperatorCapability) -> Self {
        Scope(ScopeInner::Everything)
    }

    /// The owner this scope is limited to, or `None` when it sees everything.
    pub fn owner(&self) -> Option<&UserId> {
        match &self.0 {
            ScopeInner::Owner(user) => Some(user),
            ScopeInner::Everything => None,
        }
    }

    /// Whether a row owned by `owner` is visible in this scope.
    pub fn allows(&self, owner: &UserId) -> bool {
        self.owner().is_none_or(|me| me == owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_scope_sees_only_its_owner() {
        let alice = UserId::generate();
        let bob = UserId::generate();
        let scope = Scope::owned_by(alice.clone());
        assert!(scope.allows(&alice));
        assert!(!scope.allows(&bob));
    }

    #[test]
    fn only_admins_get_an_unrestricted_scope() {
        assert!(Scope::everything_for(&Principal::local_owner()).is_some());
        assert!(Scope::everything_for(&Principal::anonymous_guest()).is_none());
        let user = Principal {
            user_id: Some(UserId::generate()),
            role: Role::User,
            credential: crate::Credential::Anonymous,
        };
        assert!(Scope::everything_for(&user).is_none());
    }
}
