//! Login throttling: too many failures for one account or from one client IP within a window
//! refuse further attempts — even with the right password — for a cooling-off period. Never a
//! permanent lockout: every block ends by itself.
//!
//! Counters live in memory. They are lost on restart, which only shortens a block; keeping them
//! out of the database keeps a password-guessing flood from becoming a write flood.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per account within the window.
pub const ACCOUNT_LIMIT: usize = 5;
/// Failures allowed per client IP within the window.
pub const IP_LIMIT: usize = 20;
/// How far back failures count.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys, expired ones are swept on the next failure.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Default)]
struct Record {
    failures: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

/// Failure counters by key (`account:<email>` or `ip:<address>`).
pub struct LoginThrottle {
    cooldown: Duration,
    records: Mutex<HashMap<String, Record>>,
}

/// What a throttle key stands for, with its limit.
#[derive(Debug, Clone)]
pub struct ThrottleKey {
    key: String,
    limit: usize,
}

impl ThrottleKey {
    /// Failures for the account with this (lower-cased) email, known or not: counting unknown
    /// emails too means the throttle cannot be used to find out which emails exist.
    pub fn account(email: &str) -> Self {
        Self {
            key: format!("account:{email}"),
            limit: ACCOUNT_LIMIT,
        }
    }

    /// Failures from one client IP.
    pub fn ip(ip: &str) -> Self {
        Self {
            key: format!("ip:{ip}"),
            limit: IP_LIMIT,
        }
    }
}

impl LoginThrottle {
    /// A throttle whose blocks last `cooldown`.
    pub fn new(cooldown: Duration) -> Self {
        Self {
            cooldown,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` if any of `keys` is blocked now.
    pub fn check(&self, keys: &[ThrottleKey]) -> Result<(), Duration> {
        let now = Instant::now();
        let records = self
            .records
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let longest = keys
            .iter()
            .filter_map(|key| records.get(&key.key)?.blocked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match longest {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt against every key; a key over its limit becomes blocked.
    pub fn record_failure(&self, keys: &[ThrottleKey]) {
        let now = Instant::now();
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if records.len() > SWEEP_ABOVE {
            records.retain(|_, record| {
                record.blocked_until.is_some_and(|until| until > now)
                    || record
                        .failures
                        .back()
                        .is_some_and(|last| now - *last < WINDOW)
            });
        }
        for key in keys {
            let record = records.entry(key.key.clone()).or_default();
            if record.blocked_until.is_some_and(|until| until <= now) {
                // A block that has run out starts the count afresh.
                *record = Record::default();
            }
            while record
                .failures
                .front()
                .is_some_and(|first| now - *first >= WINDOW)
            {
                record.failures.pop_front();
            }
            record.failures.push_back(now);
            if record.failures.len() >= key.limit {
                record.blocked_until = Some(now + self.cooldown);
            }
        }
    }

    /// Forgets the failures of `key` (after a successful login to that account).
    pub fn clear(&self, key: &ThrottleKey) {
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        records.remove(&key.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_blocked_at_its_fifth_failure() {
        let throttle = LoginThrottle::new(Duration::from_secs(60));
        let keys = [ThrottleKey::account("a@example.com")];
        for _ in 0..ACCOUNT_LIMIT - 1 {
            throttle.record_failure(&keys);
            assert!(throttle.check(&keys).is_ok());
        }
        throttle.record_failure(&keys);
        let wait = throttle.check(&keys).unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
    }

    #[test]
    fn an_ip_is_blocked_only_at_its_twentieth_failure() {
        let throttle = LoginThrottle::new(Duration::from_secs(60));
        let keys = [ThrottleKey::ip("192.0.2.1")];
        for _ in 0..IP_LIMIT - 1 {
            throttle.record_failure(&keys);
        }
        assert!(throttle.check(&keys).is_ok());
        throttle.record_failure(&keys);
        assert!(throttle.check(&keys).is_err());
    }

    #[test]
    fn a_block_ends_by_itself() {
        let throttle = LoginThrottle::new(Duration::from_millis(20));
        let keys = [ThrottleKey::account("a@example.com")];
        for _ in 0..ACCOUNT_LIMIT {
            throttle.record_failure(&keys);
        }
        assert!(throttle.check(&keys).is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(throttle.check(&keys).is_ok());
    }

    #[test]
    fn other_keys_are_not_affected() {
        let throttle = LoginThrottle::new(Duration::from_secs(60));
        for _ in 0..ACCOUNT_LIMIT {
            throttle.record_failure(&[ThrottleKey::account("a@example.com")]);
        }
        assert!(throttle
            .check(&[ThrottleKey::account("b@example.com")])
            .is_ok());
    }

    #[test]
    fn clearing_an_account_forgets_its_failures() {
        let throttle = LoginThrottle::new(Duration::from_secs(60));
        let key = ThrottleKey::account("a@example.com");
        for _ in 0..ACCOUNT_LIMIT - 1 {
            throttle.record_failure(std::slice::from_ref(&key));
        }
        throttle.clear(&key);
        throttle.record_failure(std::slice::from_ref(&key));
        assert!(throttle.check(&[key]).is_ok());
    }
}
