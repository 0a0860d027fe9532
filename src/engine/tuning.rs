//! How the engine retries and paces background work, read from the
//! mount's options.

use std::time::Duration;

use rand::Rng;

/// Rotations a mount runs at once. High enough that a storm of due
/// rotations keeps each connection's pacing queue full, so coalesced DRS
/// batches fill up (measured: 1,000 due rotations at 20 req/s took 58 s
/// at 64, 52 s at 256, which is what pacing allows); provider load stays
/// bounded by each connection's `requests_per_second`.
pub const DEFAULT_CONCURRENCY: usize = 256;

/// How the engine retries and paces background work. Read from the mount's
/// options (`bao secrets enable -options=retry_base=1s ...`), so tests and
/// benchmarks can shorten them without a special build.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// First retry delay after a failed attempt; doubles per failure.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Consecutive failed attempts before a role is `failed` and waits for
    /// its next cycle or a manual rotate.
    pub max_failures: u32,
    /// Delay before a deferred rotation (a job not accepting changes)
    /// checks again.
    pub defer_retry: Duration,
    /// Rotations the runner executes at once per mount.
    pub concurrency: usize,
    /// Most random delay added before a due rotation starts, so many due
    /// at once do not fire in lockstep.
    pub jitter: Duration,
    /// How often every role's target is checked for drift.
    pub drift_check_interval: Duration,
    /// How soon a dual-account DCS rotation whose ACL account is still
    /// `UPDATING` after a reset looks again (not a failure).
    pub settle_poll: Duration,
    /// How long a `creds/` read waits for the account it created to be
    /// available (PolarDB refuses grants before); past it, the read fails
    /// and the rollback deletes the account.
    pub account_ready_wait: Duration,
    /// How often that wait reads the account.
    pub account_ready_poll: Duration,
    /// How old a WAL entry of a dynamic account must be before the
    /// rollback deletes its account: longer than the slowest `creds/`
    /// read (the wait, then one grant per database), which deletes the
    /// entry itself when it succeeds.
    pub wal_rollback_min_age: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(15 * 60),
            max_failures: 6,
            defer_retry: Duration::from_secs(60),
            concurrency: DEFAULT_CONCURRENCY,
            jitter: Duration::from_millis(500),
            drift_check_interval: Duration::from_secs(3600),
            settle_poll: Duration::from_secs(2),
            account_ready_wait: Duration::from_secs(60),
            account_ready_poll: Duration::from_secs(1),
            wal_rollback_min_age: Duration::from_secs(5 * 60),
        }
    }
}

impl Tuning {
    /// Reads overrides from mount options; a bad value keeps the default
    /// and is logged (mount options cannot be refused at mount time).
    pub fn from_options(options: &std::collections::HashMap<String, String>) -> Self {
        fn duration(slot: &mut Duration, value: &str) -> bool {
            crate::framework::duration::parse(value)
                .map(|d| *slot = d)
                .is_ok()
        }
        fn count<T: std::str::FromStr + PartialOrd + Default>(slot: &mut T, value: &str) -> bool {
            match value.trim().parse::<T>() {
                Ok(n) if n > T::default() => {
                    *slot = n;
                    true
                }
                _ => false,
            }
        }
        let mut tuning = Self::default();
        for (name, value) in options {
            let applied = match name.as_str() {
                "retry_base" => duration(&mut tuning.retry_base, value),
                "retry_cap" => duration(&mut tuning.retry_cap, value),
                "defer_retry" => duration(&mut tuning.defer_retry, value),
                "jitter" => duration(&mut tuning.jitter, value),
                "settle_poll" => duration(&mut tuning.settle_poll, value),
                "account_ready_wait" => duration(&mut tuning.account_ready_wait, value),
                "account_ready_poll" => duration(&mut tuning.account_ready_poll, value),
                "wal_rollback_min_age" => duration(&mut tuning.wal_rollback_min_age, value),
                "drift_check_interval" => match crate::framework::duration::parse(value) {
                    Ok(interval) if !interval.is_zero() => {
                        tuning.drift_check_interval = interval;
                        true
                    }
                    _ => false,
                },
                "max_failures" => count(&mut tuning.max_failures, value),
                "concurrency" => count(&mut tuning.concurrency, value),
                // The host's own entries (plugin_name, plugin_version...).
                _ => continue,
            };
            if !applied {
                tracing::warn!(option = %name, value = %value, "ignored a mount option that does not parse; its default stays");
            }
        }
        tuning
    }

    /// Exponential backoff with jitter: between half and all of
    /// `base * 2^(failures-1)`, capped.
    pub fn backoff(&self, failures: u32) -> Duration {
        self.backoff_at(failures, rand::rng().random::<f64>())
    }

    /// The backoff after `failures`, at `fraction` (in [0, 1)) of the way
    /// from its shortest to its longest.
    pub fn backoff_at(&self, failures: u32, fraction: f64) -> Duration {
        let exponent = failures.saturating_sub(1).min(20);
        let full = self
            .retry_base
            .saturating_mul(1 << exponent)
            .min(self.retry_cap);
        let half = full / 2;
        half + full.saturating_sub(half).mul_f64(fraction.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_stops_at_the_cap() {
        let tuning = Tuning {
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(60),
            ..Tuning::default()
        };
        for _ in 0..100 {
            let first = tuning.backoff(1);
            assert!(
                first >= Duration::from_secs(5) && first <= Duration::from_secs(10),
                "{first:?}"
            );
            let third = tuning.backoff(3);
            assert!(
                third >= Duration::from_secs(20) && third <= Duration::from_secs(40),
                "{third:?}"
            );
            assert!(tuning.backoff(30) <= Duration::from_secs(60));
        }
    }

    #[test]
    fn options_override_defaults_and_ignore_garbage() {
        let options = [
            ("retry_base", "1s"),
            ("max_failures", "3"),
            ("concurrency", "zero"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let tuning = Tuning::from_options(&options);
        assert_eq!(tuning.retry_base, Duration::from_secs(1));
        assert_eq!(tuning.max_failures, 3);
        assert_eq!(tuning.concurrency, Tuning::default().concurrency);
    }
}
