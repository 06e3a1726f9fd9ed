//! Housekeeping: writing the throttled refusals counted in memory to the
//! audit log, pruning idle throttle counters, and audit retention.

use offgrid_domain::Timestamp;

use std::sync::atomic::Ordering;

use super::{Actor, AuthService, HOUSEKEEPING_INTERVAL_SECS, now};
use crate::AuthError;

impl AuthService {
    /// Writes the refusals counted in memory to the audit log (each as
    /// repeats of its window's entry).
    ///
    /// Keys refused within the last interval stay known (their entry is
    /// written), so a steady flood costs one write per key per flush.
    pub fn flush_throttled_audit(&self) {
        let t = now();
        let due: Vec<_> = {
            let mut pending = self.pending_refusals();
            let due = pending
                .values_mut()
                .filter(|p| p.count > 0)
                .map(|p| (p.event.clone(), p.since, std::mem::take(&mut p.count)))
                .collect();
            pending.retain(|_, p| p.event.at.secs_until(t) < HOUSEKEEPING_INTERVAL_SECS);
            due
        };
        for (event, since, count) in due {
            if let Err(e) = self.repos.audit.append_coalesced(event, since, count) {
                tracing::error!(error = %e, "cannot write audit log");
            }
        }
    }

    /// Flushes counted refusals and prunes idle throttle counters; the
    /// server runs it every minute.
    pub fn housekeeping(&self) {
        let t = now();
        self.last_housekeeping.store(t.0, Ordering::Relaxed);
        self.flush_throttled_audit();
        if let Err(e) = self.repos.throttle.prune_stale(t) {
            tracing::error!(error = %e, "cannot prune throttle counters");
        }
    }

    /// Runs [`AuthService::housekeeping`] when a minute has passed since it
    /// last ran (at most one caller does).
    pub(super) fn housekeeping_if_due(&self, t: Timestamp) {
        let last = self.last_housekeeping.load(Ordering::Relaxed);
        let due = t.0.saturating_sub(last) >= HOUSEKEEPING_INTERVAL_SECS;
        if due
            && self
                .last_housekeeping
                .compare_exchange(last, t.0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.housekeeping();
        }
    }

    /// Deletes audit entries older than `days` days (0 keeps everything);
    /// returns how many went, and records the pruning itself when any did.
    pub fn prune_audit(&self, days: u32, actor: &Actor) -> Result<u64, AuthError> {
        if days == 0 {
            return Ok(0);
        }
        let before = now().plus_days(-i64::from(days));
        let pruned = self.repos.audit.prune(before)?;
        if pruned > 0 {
            self.audit(
                actor,
                "audit.pruned",
                None,
                Some(serde_json::json!({"deleted": pruned, "older_than_days": days}).to_string()),
            );
        }
        Ok(pruned)
    }
}
