//! A per-connection token bucket, so a burst of rotations never trips the
//! provider's flow control. Waiters reserve their token up front (the
//! balance may go negative), so they leave in arrival order, evenly spaced.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Pacer {
    /// Tokens per second; `None` paces nothing.
    rate: Option<f64>,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl Pacer {
    /// `rate` tokens per second, holding at most `burst` (at least 1).
    /// A missing, zero, negative or non-finite rate disables pacing.
    pub fn new(rate: Option<f64>, burst: u32) -> Self {
        let rate = rate.filter(|r| r.is_finite() && *r > 0.0);
        let burst = f64::from(burst.max(1));
        Pacer {
            rate,
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                refilled_at: Instant::now(),
            }),
        }
    }

    pub fn unlimited() -> Self {
        Pacer::new(None, 1)
    }

    /// Takes one token, returning how long the caller has to wait for it.
    pub fn reserve(&self) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let mut bucket = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let earned = now.duration_since(bucket.refilled_at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + earned).min(self.burst);
        bucket.refilled_at = now;
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / rate)
        }
    }

    /// Waits until this caller's token is available.
    pub async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn burst_goes_at_once_then_requests_are_spaced_at_the_rate() {
        let pacer = Arc::new(Pacer::new(Some(10.0), 3));
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..13 {
            let pacer = pacer.clone();
            handles.push(tokio::spawn(async move {
                pacer.acquire().await;
                start.elapsed()
            }));
        }
        let mut times = Vec::new();
        for handle in handles {
            times.push(handle.await.unwrap());
        }
        times.sort();
        assert!(times[..3].iter().all(|t| t.is_zero()), "{times:?}");
        // 10 more at 10/s: the last one leaves after one second.
        let last = *times.last().unwrap();
        assert!(
            last >= Duration::from_millis(999) && last <= Duration::from_millis(1001),
            "{last:?}"
        );
        for pair in times[3..].windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap >= Duration::from_millis(99), "{gap:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_spell_refills_up_to_the_burst_only() {
        let pacer = Pacer::new(Some(2.0), 2);
        assert!(pacer.reserve().is_zero());
        assert!(pacer.reserve().is_zero());
        assert_eq!(pacer.reserve(), Duration::from_millis(500));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(pacer.reserve().is_zero());
        assert!(pacer.reserve().is_zero());
        assert!(!pacer.reserve().is_zero());
    }

    #[tokio::test(start_paused = true)]
    async fn no_rate_means_no_waiting() {
        let pacer = Pacer::new(None, 1);
        for _ in 0..1000 {
            assert!(pacer.reserve().is_zero());
        }
        assert!(Pacer::new(Some(0.0), 1).reserve().is_zero());
        assert!(Pacer::new(Some(f64::NAN), 1).reserve().is_zero());
    }
}
