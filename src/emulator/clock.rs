//! The emulator's sense of time. Every time-dependent rule (signature skew,
//! nonce memory, DCS and AK/SK locks, rate limits) reads this one clock,
//! injected into the emulator, so tests move time instead of sleeping: a
//! frozen clock for unit tests, wall time plus an offset (moved through the
//! admin API) for the running server.

use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

#[derive(Debug, Default)]
pub struct Clock {
    /// `None`: wall time; `Some`: a clock that only moves when told to.
    frozen_at: Option<OffsetDateTime>,
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn frozen(at: OffsetDateTime) -> Self {
        Self {
            frozen_at: Some(at),
            offset_ms: AtomicI64::new(0),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.frozen_at.unwrap_or_else(OffsetDateTime::now_utc) + self.offset()
    }

    pub fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn set_offset(&self, offset: Duration) {
        self.offset_ms
            .store(offset.whole_milliseconds() as i64, Ordering::Relaxed);
    }

    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.whole_milliseconds() as i64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_moves_by_the_offset() {
        let clock = Clock::system();
        clock.advance(Duration::minutes(5));
        let drift = clock.now() - OffsetDateTime::now_utc();
        assert!(drift > Duration::seconds(299) && drift < Duration::seconds(301));
        clock.set_offset(Duration::ZERO);
        assert_eq!(clock.offset(), Duration::ZERO);
    }

    #[test]
    fn frozen_clock_stands_still() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let clock = Clock::frozen(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::seconds(3));
        assert_eq!(clock.now(), start + Duration::seconds(3));
    }
}
