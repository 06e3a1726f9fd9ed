//! Login throttling policy: after a number of consecutive failures a key
//! (account or client address) is locked for a back-off that doubles with
//! each further failure, up to a ceiling; and how many logins may be
//! verified at once per account and per address.

/// Thresholds and back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures per username before the back-off starts.
    pub user_threshold: u32,
    /// Failures per client address before the back-off starts.
    pub addr_threshold: u32,
    /// First lock, in seconds.
    pub base_secs: i64,
    /// Longest lock, in seconds.
    pub max_secs: i64,
    /// Logins verified at once for one account; more answer 429.
    pub max_in_flight_per_account: usize,
    /// Logins verified at once from one client address; more answer 429.
    pub max_in_flight_per_addr: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            user_threshold: 5,
            addr_threshold: 20,
            // Two seconds, not one: times are whole seconds, so a one-second
            // lock could end before the next attempt arrives.
            base_secs: 2,
            max_secs: 15 * 60,
            max_in_flight_per_account: 2,
            max_in_flight_per_addr: 4,
        }
    }
}

impl ThrottlePolicy {
    /// Lock length after `failures` consecutive failures, given a threshold.
    pub fn backoff(&self, failures: u32, threshold: u32) -> i64 {
        if failures < threshold {
            return 0;
        }
        let doublings = (failures - threshold).min(30);
        self.base_secs
            .saturating_mul(1i64 << doublings)
            .min(self.max_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = ThrottlePolicy::default();
        assert_eq!(p.backoff(4, 5), 0);
        assert_eq!(p.backoff(5, 5), 2);
        assert_eq!(p.backoff(6, 5), 4);
        assert_eq!(p.backoff(8, 5), 16);
        assert_eq!(p.backoff(100, 5), 900);
    }
}
