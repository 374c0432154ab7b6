//! Rate limits: how often an address or account may do something in a window of time.
//!
//! Fixed windows per key are enough here (precision is not the point; bounding abuse is),
//! and the number of keys tracked is capped so that a flood of addresses cannot grow the
//! table without bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys one limiter tracks; beyond it expired windows are dropped first, then all.
pub const MAX_TRACKED_KEYS: usize = 100_000;

/// The block of addresses one client is counted by: an IPv4 address alone, an IPv6
/// address by its /64 (one subscriber's network: a host picks any address in it at will,
/// so counting single IPv6 addresses would bound nothing). An IPv4 address written as
/// IPv6 (`::ffff:a.b.c.d`, as a dual-stack listener reports it) counts as itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressBlock(IpAddr);

/// The prefix length an IPv6 client is counted by.
pub const IPV6_BLOCK_PREFIX: u32 = 64;

impl From<IpAddr> for AddressBlock {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddressBlock(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressBlock(IpAddr::V4(v4)),
                None => {
                    let mask = u128::MAX << (128 - IPV6_BLOCK_PREFIX);
                    AddressBlock(IpAddr::V6(Ipv6Addr::from(v6.to_bits() & mask)))
                }
            },
        }
    }
}

/// A limit of `max` events per `window` for each key.
#[derive(Debug)]
pub struct RateLimiter<K> {
    max: u32,
    window: Duration,
    counts: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            counts: Mutex::default(),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, u32)>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(retry_after)` while `key` has used up its events for this window.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    /// [`RateLimiter::check`] at a given moment (tests pass their own clock).
    fn check_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        match self.counts().get(key) {
            Some(&(start, count)) if count >= self.max && now < start + self.window => {
                Err(start + self.window - now)
            }
            _ => Ok(()),
        }
    }

    /// Counts one event for `key`; `false` if it went over the limit.
    pub fn hit(&self, key: &K) -> bool {
        self.hit_at(key, Instant::now())
    }

    /// [`RateLimiter::hit`] at a given moment.
    fn hit_at(&self, key: &K, now: Instant) -> bool {
        let mut counts = self.counts();
        if counts.len() >= MAX_TRACKED_KEYS && !counts.contains_key(key) {
            let window = self.window;
            counts.retain(|_, (start, _)| now < *start + window);
            if counts.len() >= MAX_TRACKED_KEYS {
                counts.clear();
            }
        }
        let entry = counts.entry(key.clone()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= self.max
    }

    /// Forgets `key` (after a successful login, say).
    pub fn reset(&self, key: &K) {
        self.counts().remove(key);
    }
}

/// The limits of one node (`[limits]` in `cluster.toml`).
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Failed logins per address, then per account, within `login_window`.
    pub failed_logins_per_ip: u32,
    pub failed_logins_per_account: u32,
    pub login_window: Duration,
    /// Accounts created per address within `registration_window`.
    pub registrations_per_ip: u32,
    pub registration_window: Duration,
    /// Chat messages (public and private) per player within `chat_window`; beyond it the
    /// player is silenced for `spam_silence`, as osu! does.
    pub messages_per_window: u32,
    pub chat_window: Duration,
    pub spam_silence: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            failed_logins_per_ip: 20,
            failed_logins_per_account: 10,
            login_window: Duration::from_secs(600),
            registrations_per_ip: 5,
            registration_window: Duration::from_secs(3600),
            messages_per_window: 10,
            chat_window: Duration::from_secs(5),
            spam_silence: Duration::from_secs(300),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_itself() {
        let block = |text: &str| AddressBlock::from(text.parse::<IpAddr>().unwrap());
        assert_eq!(
            block("2001:db8:1:2::1"),
            block("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(block("2001:db8:1:2::1"), block("2001:db8:1:3::1"));
        assert_eq!(block("::ffff:192.0.2.7"), block("192.0.2.7"));
        assert_ne!(block("192.0.2.7"), block("192.0.2.8"));

        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.hit(&block("2001:db8::1")));
        assert!(limiter.hit(&block("2001:db8::2")));
        assert!(
            !limiter.hit(&block("2001:db8::3")),
            "the third address of one /64"
        );
        assert!(
            limiter.hit(&block("2001:db8:0:1::1")),
            "the next /64 has its own"
        );
    }

    #[test]
    fn limits_per_key_and_window() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.check(&"a").is_ok());
        assert!(
            limiter.hit(&"a") && limiter.hit(&"a"),
            "two events of two are allowed"
        );
        assert!(
            limiter.check(&"a").is_err(),
            "after two, the key waits for the window"
        );
        assert!(!limiter.hit(&"a"), "a third event is over the limit");
        assert!(limiter.check(&"b").is_ok(), "keys are independent");
        limiter.reset(&"a");
        assert!(limiter.check(&"a").is_ok());
    }

    #[test]
    fn windows_expire() {
        let window = Duration::from_secs(60);
        let limiter = RateLimiter::new(1, window);
        let start = Instant::now();
        assert!(limiter.hit_at(&1, start));
        assert!(!limiter.hit_at(&1, start));
        let almost = start + window - Duration::from_secs(1);
        assert_eq!(limiter.check_at(&1, almost), Err(Duration::from_secs(1)));
        assert!(limiter.check_at(&1, start + window).is_ok());
        assert!(limiter.hit_at(&1, start + window), "a new window starts");
    }

    #[test]
    fn the_table_of_keys_stays_bounded() {
        let window = Duration::from_secs(60);
        let limiter = RateLimiter::new(1, window);
        let start = Instant::now();
        for key in 0..MAX_TRACKED_KEYS {
            limiter.hit_at(&key, start);
        }
        // A new key after the windows ended: the expired ones are dropped first.
        limiter.hit_at(&usize::MAX, start + window);
        assert_eq!(limiter.counts().len(), 1);
        // Still within the windows: the table is cleared rather than grown.
        for key in 0..MAX_TRACKED_KEYS {
            limiter.hit_at(&key, start + window);
        }
        limiter.hit_at(&(usize::MAX - 1), start + window);
        assert!(limiter.counts().len() <= MAX_TRACKED_KEYS);
    }
}
