//! Seedable, reproducible faults and the per-API / per-outcome counters.
//!
//! One seeded RNG decides every fault. Each request in scope draws exactly
//! four numbers (latency, fault kind, fault variant, drop-after-apply)
//! whatever happens, so the same seed and the same request sequence give the
//! same faults.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Latency {
    Fixed { fixed: u64 },
    Range { min: u64, max: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests_per_second: f64,
    /// Bucket size; defaults to one second's worth (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// A one-shot error: the next `count` calls of `api` answer `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scripted {
    pub api: String,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    pub seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Latency>,
    pub throttle_rate: f64,
    pub server_error_rate: f64,
    pub reset_rate: f64,
    pub drop_after_apply_rate: f64,
    /// How long a dropped connection is held open before it is closed
    /// (longer than the client's timeout turns the drop into a timeout).
    pub drop_after_apply_hold_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_key: Option<RateLimit>,
    /// Limits faults to these APIs (`polardb.ModifyAccountPassword`, or a
    /// whole service: `polardb` / `polardb.*`). Absent: every API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apis: Option<Vec<String>>,
    pub scripted: Vec<Scripted>,
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("throttle_rate", self.throttle_rate),
            ("server_error_rate", self.server_error_rate),
            ("reset_rate", self.reset_rate),
            ("drop_after_apply_rate", self.drop_after_apply_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be in [0, 1]"));
            }
        }
        if self.throttle_rate + self.server_error_rate + self.reset_rate > 1.0 + 1e-9 {
            return Err("throttle_rate + server_error_rate + reset_rate must not exceed 1".into());
        }
        if let Some(Latency::Range { min, max }) = self.latency_ms
            && min > max
        {
            return Err("latency_ms.min must not exceed latency_ms.max".into());
        }
        if let Some(limit) = self.rate_limit_per_key
            && (limit.requests_per_second.is_nan() || limit.requests_per_second <= 0.0)
        {
            return Err("rate_limit_per_key.requests_per_second must be positive".into());
        }
        Ok(())
    }

    fn in_scope(&self, api: &str) -> bool {
        match &self.apis {
            None => true,
            Some(apis) => apis.iter().any(|pattern| {
                pattern == api
                    || api.split_once('.').is_some_and(|(service, _)| {
                        pattern == service || *pattern == format!("{service}.*")
                    })
            }),
        }
    }
}

/// What the fault layer decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    Throttle {
        retry_after_ms: u64,
    },
    RateLimited {
        retry_after_ms: u64,
        limit: u32,
    },
    /// 0 picks the first variant (Alibaba 500 / Huawei 502), 1 the second.
    ServerError {
        variant: u8,
    },
    Reset,
    Scripted(Scripted),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub delay_ms: u64,
    pub verdict: Verdict,
    /// Apply the call, then close the connection instead of answering.
    pub drop_after_apply: bool,
    pub hold_ms: u64,
}

impl Decision {
    pub fn none() -> Self {
        Self {
            delay_ms: 0,
            verdict: Verdict::Proceed,
            drop_after_apply: false,
            hold_ms: 0,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: OffsetDateTime,
}

pub struct FaultEngine {
    config: FaultConfig,
    rng: StdRng,
    buckets: HashMap<String, Bucket>,
}

impl Default for FaultEngine {
    fn default() -> Self {
        Self::new(FaultConfig::default())
    }
}

impl FaultEngine {
    pub fn new(config: FaultConfig) -> Self {
        Self {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            buckets: HashMap::new(),
        }
    }

    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Decides the faults of one authenticated call of `api` by `key`.
    pub fn decide(&mut self, api: &str, key: &str, now: OffsetDateTime) -> Decision {
        if !self.config.in_scope(api) {
            return Decision::none();
        }
        let draws: [f64; 4] = [
            self.rng.random(),
            self.rng.random(),
            self.rng.random(),
            self.rng.random(),
        ];
        let delay_ms = match self.config.latency_ms {
            None => 0,
            Some(Latency::Fixed { fixed }) => fixed,
            // draws[0] < 1, so this stays within [min, max].
            Some(Latency::Range { min, max }) => min + ((max - min + 1) as f64 * draws[0]) as u64,
        };
        let mut decision = Decision {
            delay_ms,
            verdict: Verdict::Proceed,
            drop_after_apply: false,
            hold_ms: self.config.drop_after_apply_hold_ms,
        };
        if let Some(index) = self.config.scripted.iter().position(|s| s.api == api) {
            let entry = self.config.scripted[index].clone();
            if entry.count <= 1 {
                self.config.scripted.remove(index);
            } else {
                self.config.scripted[index].count -= 1;
            }
            decision.verdict = Verdict::Scripted(entry);
            return decision;
        }
        if let Some(limit) = self.config.rate_limit_per_key
            && let Some(retry_after_ms) = self.take_token(key, limit, now)
        {
            decision.verdict = Verdict::RateLimited {
                retry_after_ms,
                limit: (limit.requests_per_second * 60.0).round() as u32,
            };
            return decision;
        }
        let c = &self.config;
        let variant = u8::from(draws[2] >= 0.5);
        let kind = draws[1];
        decision.verdict = if kind < c.throttle_rate {
            Verdict::Throttle {
                retry_after_ms: 1000,
            }
        } else if kind < c.throttle_rate + c.server_error_rate {
            Verdict::ServerError { variant }
        } else if kind < c.throttle_rate + c.server_error_rate + c.reset_rate {
            Verdict::Reset
        } else {
            Verdict::Proceed
        };
        decision.drop_after_apply =
            decision.verdict == Verdict::Proceed && draws[3] < c.drop_after_apply_rate;
        decision
    }

    /// Token bucket per key: `None` when a token was taken, else how long
    /// until the next one (milliseconds).
    fn take_token(&mut self, key: &str, limit: RateLimit, now: OffsetDateTime) -> Option<u64> {
        let capacity = f64::from(
            limit
                .burst
                .unwrap_or(limit.requests_per_second.ceil() as u32)
                .max(1),
        );
        let bucket = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = (now - bucket.at).as_seconds_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * limit.requests_per_second).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            None
        } else {
            let wait = (1.0 - bucket.tokens) / limit.requests_per_second;
            Some((wait * 1000.0).ceil().max(1.0) as u64)
        }
    }
}

/// Per-outcome counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Answered with success.
    pub ok: u64,
    /// Answered with a service or request error (not a fault, not auth).
    pub error: u64,
    /// Throttling answers, random and rate-limit ones together.
    pub throttled: u64,
    /// The subset of `throttled` due to the per-key rate limit.
    pub rate_limited: u64,
    pub server_error: u64,
    pub reset: u64,
    pub dropped_after_apply: u64,
    pub auth_failed: u64,
    /// Refused because the Huawei AK/SK was locked.
    pub locked: u64,
    /// Answered with a scripted error.
    pub scripted: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub calls: BTreeMap<String, u64>,
    pub outcomes: Outcomes,
}

impl Counters {
    pub fn call(&mut self, api: &str) {
        match self.calls.get_mut(api) {
            Some(count) => *count += 1,
            None => {
                self.calls.insert(api.to_owned(), 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(config: &FaultConfig, n: usize) -> Vec<Decision> {
        let mut engine = FaultEngine::new(config.clone());
        let now = OffsetDateTime::UNIX_EPOCH;
        (0..n)
            .map(|_| engine.decide("dts.ModifyDtsJobPassword", "ak", now))
            .collect()
    }

    fn mixed(seed: u64) -> FaultConfig {
        FaultConfig {
            seed,
            latency_ms: Some(Latency::Range { min: 5, max: 50 }),
            throttle_rate: 0.2,
            server_error_rate: 0.2,
            reset_rate: 0.1,
            drop_after_apply_rate: 0.3,
            ..FaultConfig::default()
        }
    }

    #[test]
    fn same_seed_same_faults() {
        assert_eq!(sequence(&mixed(7), 200), sequence(&mixed(7), 200));
        assert_ne!(sequence(&mixed(7), 200), sequence(&mixed(8), 200));
    }

    #[test]
    fn rates_are_roughly_honoured_and_latency_in_range() {
        let decisions = sequence(&mixed(42), 4000);
        let count = |f: &dyn Fn(&Decision) -> bool| decisions.iter().filter(|d| f(d)).count();
        let throttled = count(&|d| matches!(d.verdict, Verdict::Throttle { .. }));
        let errors = count(&|d| matches!(d.verdict, Verdict::ServerError { .. }));
        let resets = count(&|d| d.verdict == Verdict::Reset);
        let drops = count(&|d| d.drop_after_apply);
        assert!((700..900).contains(&throttled), "{throttled}");
        assert!((700..900).contains(&errors), "{errors}");
        assert!((300..500).contains(&resets), "{resets}");
        // 30% of the 50% that proceed.
        assert!((480..720).contains(&drops), "{drops}");
        assert!(decisions.iter().all(|d| (5..=50).contains(&d.delay_ms)));
    }

    #[test]
    fn scope_limits_faults() {
        let config = FaultConfig {
            throttle_rate: 1.0,
            apis: Some(vec!["polardb".into(), "dcs.ResetPassword".into()]),
            ..FaultConfig::default()
        };
        let mut engine = FaultEngine::new(config);
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            engine.decide("dts.ModifyDtsJobPassword", "k", now),
            Decision::none()
        );
        assert!(matches!(
            engine.decide("polardb.DescribeAccounts", "k", now).verdict,
            Verdict::Throttle { .. }
        ));
        assert!(matches!(
            engine.decide("dcs.ResetPassword", "k", now).verdict,
            Verdict::Throttle { .. }
        ));
    }

    #[test]
    fn rate_limit_is_per_key_and_refills() {
        let config = FaultConfig {
            rate_limit_per_key: Some(RateLimit {
                requests_per_second: 2.0,
                burst: Some(2),
            }),
            ..FaultConfig::default()
        };
        let mut engine = FaultEngine::new(config);
        let t0 = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(engine.decide("a.B", "k1", t0).verdict, Verdict::Proceed);
        assert_eq!(engine.decide("a.B", "k1", t0).verdict, Verdict::Proceed);
        assert_eq!(
            engine.decide("a.B", "k1", t0).verdict,
            Verdict::RateLimited {
                retry_after_ms: 500,
                limit: 120
            }
        );
        assert_eq!(engine.decide("a.B", "k2", t0).verdict, Verdict::Proceed);
        let later = t0 + time::Duration::milliseconds(500);
        assert_eq!(engine.decide("a.B", "k1", later).verdict, Verdict::Proceed);
    }

    #[test]
    fn scripted_errors_run_out() {
        let config = FaultConfig {
            scripted: vec![Scripted {
                api: "polardb.ModifyAccountPassword".into(),
                code: "ConcurrentTaskExceeded".into(),
                status: None,
                message: None,
                count: 2,
            }],
            ..FaultConfig::default()
        };
        let mut engine = FaultEngine::new(config);
        let now = OffsetDateTime::UNIX_EPOCH;
        let api = "polardb.ModifyAccountPassword";
        assert!(matches!(
            engine.decide(api, "k", now).verdict,
            Verdict::Scripted(_)
        ));
        assert!(matches!(
            engine.decide(api, "k", now).verdict,
            Verdict::Scripted(_)
        ));
        assert_eq!(engine.decide(api, "k", now).verdict, Verdict::Proceed);
        assert!(engine.config().scripted.is_empty());
    }

    #[test]
    fn validation() {
        assert!(
            FaultConfig {
                throttle_rate: 1.5,
                ..FaultConfig::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            FaultConfig {
                throttle_rate: 0.6,
                reset_rate: 0.6,
                ..FaultConfig::default()
            }
            .validate()
            .is_err()
        );
        let parsed: FaultConfig =
            serde_json::from_str(r#"{"seed":1,"latency_ms":{"fixed":10}}"#).unwrap();
        assert_eq!(parsed.latency_ms, Some(Latency::Fixed { fixed: 10 }));
        let parsed: FaultConfig =
            serde_json::from_str(r#"{"latency_ms":{"min":1,"max":3}}"#).unwrap();
        assert_eq!(parsed.latency_ms, Some(Latency::Range { min: 1, max: 3 }));
        assert!(serde_json::from_str::<FaultConfig>(r#"{"bogus":1}"#).is_err());
    }
}
