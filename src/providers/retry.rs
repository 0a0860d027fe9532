//! Exponential backoff with full jitter, bounded by attempts and elapsed
//! time. The error class decides: `Retryable` is retried, `OutcomeUnknown`
//! only for idempotent calls, `Permanent` and `Lockout` never. A call
//! that gives up after an attempt whose outcome was unknown ends
//! `OutcomeUnknown` whatever the last answer said: that attempt may have
//! been applied.
//!
//! Time comes from `tokio::time`, so tests drive it with
//! `tokio::time::pause()`; the jitter source is injectable.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::error::{ErrorClass, ErrorKind, ProviderError};

/// Whether sending a call twice can do harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Sending again after a lost answer gives the same end state
    /// (describes, lists, PolarDB ModifyAccountPassword, DCS ResetPassword,
    /// DRS batch-modify-pwd, key deletion).
    Idempotent,
    /// Sending again may fail or act twice (DTS ModifyDtsJobPassword, DCS
    /// UpdatePassword, access key creation): after `OutcomeUnknown` the
    /// error goes back to the caller.
    NonIdempotent,
}

/// The jitter source: a seeded or entropy-seeded RNG shared by clones.
#[derive(Debug, Clone)]
pub struct Jitter(Arc<Mutex<StdRng>>);

impl Jitter {
    pub fn from_entropy() -> Self {
        Jitter(Arc::new(Mutex::new(StdRng::from_os_rng())))
    }

    pub fn seeded(seed: u64) -> Self {
        Jitter(Arc::new(Mutex::new(StdRng::seed_from_u64(seed))))
    }

    /// A uniform duration in `[0, cap]`.
    fn up_to(&self, cap: Duration) -> Duration {
        let nanos = cap.as_nanos().min(u64::MAX as u128) as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        let mut rng = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts, the first included. At least 1.
    pub max_attempts: u32,
    /// Give up once the next wait would end past this much time since the
    /// first attempt.
    pub max_elapsed: Duration,
    /// Backoff cap before jitter for attempt n is `base * 2^n`, at most
    /// `max_delay`.
    pub base_delay: Duration,
    /// Throttling answers back off from a larger base (Huawei suggests
    /// waiting 2-5 s after APIGW.0308).
    pub throttle_base_delay: Duration,
    pub max_delay: Duration,
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(120),
            base_delay: Duration::from_millis(200),
            throttle_base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(20),
            jitter: Jitter::from_entropy(),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The cap of the full-jitter window before retry number `retry`
    /// (0-based) after `error`.
    pub fn backoff_cap(&self, retry: u32, error: &ProviderError) -> Duration {
        let base = if error.kind == ErrorKind::Throttled {
            self.throttle_base_delay
        } else {
            self.base_delay
        };
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        base.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before retry number `retry`: uniform in `[0, cap]`, but
    /// never shorter than what the server asked for.
    pub fn delay(&self, retry: u32, error: &ProviderError) -> Duration {
        let jittered = self.jitter.up_to(self.backoff_cap(retry, error));
        match error.retry_after {
            Some(asked) => jittered.max(asked),
            None => jittered,
        }
    }

    /// Whether this error may be sent again at all (ignoring budgets).
    pub fn may_retry(error: &ProviderError, idempotency: Idempotency) -> bool {
        match error.class {
            ErrorClass::Retryable => true,
            ErrorClass::OutcomeUnknown => idempotency == Idempotency::Idempotent,
            ErrorClass::Permanent | ErrorClass::Lockout { .. } => false,
        }
    }

    /// Runs `attempt` (given the 1-based attempt number) until it succeeds,
    /// fails in a way that must not be retried, or the budget is spent.
    /// The error returned carries the number of attempts made, and is
    /// `OutcomeUnknown` if any attempt's was (a lockout stays a lockout).
    pub async fn run<T, F, Fut>(
        &self,
        idempotency: Idempotency,
        mut attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let started = Instant::now();
        let max_attempts = self.max_attempts.max(1);
        let mut number = 1;
        let mut unknown_before = false;
        loop {
            let error = match attempt(number).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let give_up = |mut error: ProviderError| {
                error.attempts = number;
                if unknown_before
                    && matches!(error.class, ErrorClass::Retryable | ErrorClass::Permanent)
                {
                    error.class = ErrorClass::OutcomeUnknown;
                }
                Err(error)
            };
            if !Self::may_retry(&error, idempotency) || number >= max_attempts {
                return give_up(error);
            }
            let wait = self.delay(number - 1, &error);
            if started.elapsed() + wait > self.max_elapsed {
                return give_up(error);
            }
            tracing::debug!(
                service = %error.service,
                action = %error.action,
                attempt = number,
                wait_ms = wait.as_millis() as u64,
                code = error.code.as_deref().unwrap_or(""),
                "retrying provider call"
            );
            unknown_before |= error.class == ErrorClass::OutcomeUnknown;
            tokio::time::sleep(wait).await;
            number += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Service;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn error(class: ErrorClass, kind: ErrorKind) -> ProviderError {
        ProviderError::new(class, kind, Service::Polardb, "Test", "boom", &[])
    }

    fn policy(max_attempts: u32, max_elapsed: Duration) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            max_elapsed,
            base_delay: Duration::from_millis(100),
            throttle_base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            jitter: Jitter::seeded(7),
        }
    }

    /// Runs a call that always fails with `failure`, recording when each
    /// attempt started (in paused time).
    async fn run_failing(
        policy: &RetryPolicy,
        idempotency: Idempotency,
        failure: ProviderError,
    ) -> (ProviderError, Vec<Duration>) {
        let start = Instant::now();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let seen = starts.clone();
        let result: Result<(), _> = policy
            .run(idempotency, |_| {
                seen.lock().unwrap().push(start.elapsed());
                let failure = failure.clone();
                async move { Err(failure) }
            })
            .await;
        let starts = starts.lock().unwrap().clone();
        (result.unwrap_err(), starts)
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_use_every_attempt_with_bounded_full_jitter() {
        let policy = policy(6, Duration::from_secs(600));
        let (error, starts) = run_failing(
            &policy,
            Idempotency::NonIdempotent,
            error(ErrorClass::Retryable, ErrorKind::ServerError),
        )
        .await;
        assert_eq!(starts.len(), 6);
        assert_eq!(error.attempts, 6);
        for (retry, pair) in starts.windows(2).enumerate() {
            let waited = pair[1] - pair[0];
            let cap = policy.backoff_cap(retry as u32, &error);
            assert!(
                waited <= cap,
                "retry {retry}: waited {waited:?} > cap {cap:?}"
            );
        }
        // Caps grow 100, 200, 400, 800, 1600 ms: full jitter keeps the
        // total below their sum.
        assert!(*starts.last().unwrap() <= Duration::from_millis(3100));
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_is_spread_not_constant() {
        let policy = policy(2, Duration::from_secs(600));
        let failure = error(ErrorClass::Retryable, ErrorKind::ServerError);
        let delays: Vec<Duration> = (0..50).map(|_| policy.delay(3, &failure)).collect();
        let cap = policy.backoff_cap(3, &failure);
        assert_eq!(cap, Duration::from_millis(800));
        assert!(delays.iter().all(|d| *d <= cap));
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(
            distinct.len() > 40,
            "full jitter draws from the whole window"
        );
        assert!(delays.iter().any(|d| *d < cap / 2) && delays.iter().any(|d| *d > cap / 2));
    }

    #[tokio::test(start_paused = true)]
    async fn elapsed_budget_stops_retries() {
        let mut policy = policy(100, Duration::from_secs(3));
        policy.base_delay = Duration::from_secs(1);
        let (error, starts) = run_failing(
            &policy,
            Idempotency::Idempotent,
            error(ErrorClass::Retryable, ErrorKind::ServerError),
        )
        .await;
        assert!(starts.len() < 100);
        assert!(*starts.last().unwrap() <= Duration::from_secs(3));
        assert_eq!(error.attempts as usize, starts.len());
    }

    #[tokio::test(start_paused = true)]
    async fn server_retry_after_is_a_floor() {
        let policy = policy(3, Duration::from_secs(600));
        let throttled = error(ErrorClass::Retryable, ErrorKind::Throttled)
            .with_retry_after(Some(Duration::from_millis(4500)));
        let (_, starts) = run_failing(&policy, Idempotency::NonIdempotent, throttled).await;
        assert_eq!(starts.len(), 3);
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(4500));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_backs_off_from_the_larger_base() {
        let policy = policy(2, Duration::from_secs(600));
        let throttled = error(ErrorClass::Retryable, ErrorKind::Throttled);
        assert_eq!(policy.backoff_cap(0, &throttled), Duration::from_secs(1));
        assert_eq!(policy.backoff_cap(10, &throttled), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_auth_and_lockout_are_never_retried() {
        let policy = policy(5, Duration::from_secs(600));
        for failure in [
            error(ErrorClass::Permanent, ErrorKind::Auth),
            error(ErrorClass::Permanent, ErrorKind::InvalidParameter),
            error(
                ErrorClass::Lockout {
                    retry_times_left: Some(2),
                    lock_time_left_minutes: None,
                },
                ErrorKind::PasswordLockout,
            ),
        ] {
            let (error, starts) = run_failing(&policy, Idempotency::Idempotent, failure).await;
            assert_eq!(starts.len(), 1, "{error}");
            assert_eq!(error.attempts, 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn outcome_unknown_goes_back_for_non_idempotent_calls_only() {
        let policy = policy(4, Duration::from_secs(600));
        let unknown = error(ErrorClass::OutcomeUnknown, ErrorKind::Timeout);
        let (_, once) = run_failing(&policy, Idempotency::NonIdempotent, unknown.clone()).await;
        assert_eq!(once.len(), 1);
        let (_, all) = run_failing(&policy, Idempotency::Idempotent, unknown).await;
        assert_eq!(all.len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_lost_an_answer_ends_with_its_outcome_unknown() {
        // A lost answer (maybe applied), then throttled until the budget
        // is spent, or refused: either way the first attempt may have
        // done it.
        for last in [
            error(ErrorClass::Retryable, ErrorKind::Throttled),
            error(ErrorClass::Permanent, ErrorKind::InvalidParameter),
        ] {
            let policy = policy(3, Duration::from_secs(600));
            let failed = policy
                .run(Idempotency::Idempotent, |n| {
                    let answer = if n == 1 {
                        error(ErrorClass::OutcomeUnknown, ErrorKind::Timeout)
                    } else {
                        last.clone()
                    };
                    async move { Err::<(), _>(answer) }
                })
                .await
                .unwrap_err();
            assert_eq!(failed.class, ErrorClass::OutcomeUnknown, "{failed}");
            assert_eq!(failed.kind, last.kind);
        }
        // Throttled throughout: nothing was applied.
        let policy = policy(3, Duration::from_secs(600));
        let throttled = error(ErrorClass::Retryable, ErrorKind::Throttled);
        let (failed, _) = run_failing(&policy, Idempotency::Idempotent, throttled).await;
        assert_eq!(failed.class, ErrorClass::Retryable);
    }

    #[tokio::test(start_paused = true)]
    async fn success_after_retries_returns_the_value() {
        let policy = policy(5, Duration::from_secs(600));
        let calls = AtomicU32::new(0);
        let value = policy
            .run(Idempotency::NonIdempotent, |n| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 {
                        Err(error(ErrorClass::Retryable, ErrorKind::Throttled))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(value, 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
