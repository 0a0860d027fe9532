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

/// Added latency before each answer, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Latency {
    /// `{"fixed": 10}`: always this long.
    Fixed { fixed: u64 },
    /// `{"min": 5, "max": 50}`: uniform over `[min, max]`.
    Range { min: u64, max: u64 },
    /// `{"median": 20, "p99": 400}`: log-normal, the long-tailed shape of
    /// real API latency (capped at [`LATENCY_CAP_MS`]).
    LogNormal { median: u64, p99: u64 },
}

/// No drawn latency exceeds this (a log-normal tail is unbounded).
pub const LATENCY_CAP_MS: u64 = 60_000;

/// The standard normal quantile of the 99th percentile.
const Z_P99: f64 = 2.326_347_874_040_841;

impl Latency {
    /// The latency for a uniform draw `u` in `[0, 1)`.
    fn sample(self, u: f64) -> u64 {
        match self {
            Self::Fixed { fixed } => fixed,
            // u < 1, so this stays within [min, max].
            Self::Range { min, max } => min + ((max - min + 1) as f64 * u) as u64,
            Self::LogNormal { median, p99 } => {
                let mu = (median.max(1) as f64).ln();
                let sigma = ((p99.max(1) as f64).ln() - mu) / Z_P99;
                let z = standard_normal_quantile(u.clamp(1e-12, 1.0 - 1e-12));
                ((mu + sigma * z).exp().round() as u64).min(LATENCY_CAP_MS)
            }
        }
    }
}

/// The inverse of the standard normal CDF (Acklam's rational
/// approximation, relative error below 1.2e-9): turns one uniform draw into
/// one normal draw, so every request still draws the same count of numbers.
fn standard_normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    const LOW: f64 = 0.024_25;
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
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
    /// Apply the call, then answer the cloud's gateway or server error
    /// (Huawei APIGW.0201 502/504, Alibaba InternalError 500 /
    /// ServiceUnavailable 503): the client cannot tell it was applied.
    pub gateway_error_after_apply_rate: f64,
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
            (
                "gateway_error_after_apply_rate",
                self.gateway_error_after_apply_rate,
            ),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be in [0, 1]"));
            }
        }
        if self.throttle_rate + self.server_error_rate + self.reset_rate > 1.0 + 1e-9 {
            return Err("throttle_rate + server_error_rate + reset_rate must not exceed 1".into());
        }
        if self.drop_after_apply_rate + self.gateway_error_after_apply_rate > 1.0 + 1e-9 {
            return Err(
                "drop_after_apply_rate + gateway_error_after_apply_rate must not exceed 1".into(),
            );
        }
        for entry in &self.scripted {
            let service = entry.api.split('.').next().unwrap_or_default();
            if !super::codes::documented(service, &entry.code) {
                return Err(format!(
                    "scripted code {:?} for {} is not documented for {service} in docs/provider-errors.md; script a documented code",
                    entry.code, entry.api
                ));
            }
        }
        match self.latency_ms {
            Some(Latency::Range { min, max }) if min > max => {
                return Err("latency_ms.min must not exceed latency_ms.max".into());
            }
            Some(Latency::LogNormal { median, p99 }) if median == 0 || p99 < median => {
                return Err("latency_ms needs 0 < median <= p99".into());
            }
            _ => {}
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
    /// Apply the call, then answer the server error of this variant.
    pub gateway_error_after_apply: Option<u8>,
    pub hold_ms: u64,
}

impl Decision {
    pub fn none() -> Self {
        Self {
            delay_ms: 0,
            verdict: Verdict::Proceed,
            drop_after_apply: false,
            gateway_error_after_apply: None,
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
        let delay_ms = self.config.latency_ms.map_or(0, |l| l.sample(draws[0]));
        let mut decision = Decision {
            delay_ms,
            verdict: Verdict::Proceed,
            drop_after_apply: false,
            gateway_error_after_apply: None,
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
        // One draw picks between the two after-apply faults, so adding the
        // second kept every earlier seed's sequence.
        let proceeds = decision.verdict == Verdict::Proceed;
        decision.drop_after_apply = proceeds && draws[3] < c.drop_after_apply_rate;
        decision.gateway_error_after_apply = (proceeds
            && !decision.drop_after_apply
            && draws[3] < c.drop_after_apply_rate + c.gateway_error_after_apply_rate)
            .then_some(variant);
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
    /// Applied, then answered with a gateway or server error.
    pub gateway_error_after_apply: u64,
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
    fn log_normal_latency_has_its_median_and_tail() {
        let config = FaultConfig {
            seed: 5,
            latency_ms: Some(Latency::LogNormal {
                median: 20,
                p99: 400,
            }),
            ..FaultConfig::default()
        };
        let mut delays: Vec<u64> = sequence(&config, 20_000)
            .iter()
            .map(|d| d.delay_ms)
            .collect();
        delays.sort_unstable();
        let at = |q: f64| delays[((delays.len() - 1) as f64 * q) as usize];
        assert!((18..=22).contains(&at(0.5)), "median {}", at(0.5));
        assert!((330..=480).contains(&at(0.99)), "p99 {}", at(0.99));
        assert!(*delays.last().unwrap() <= LATENCY_CAP_MS);
        assert!((standard_normal_quantile(0.975) - 1.959_964).abs() < 1e-6);
        assert!((standard_normal_quantile(0.01) + Z_P99).abs() < 1e-6);
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
    fn gateway_errors_after_apply_share_the_drop_draw() {
        let base = mixed(42);
        let with_gateway = FaultConfig {
            gateway_error_after_apply_rate: 0.3,
            ..base.clone()
        };
        let before = sequence(&base, 2000);
        let after = sequence(&with_gateway, 2000);
        for (old, new) in before.iter().zip(&after) {
            assert_eq!(
                (old.delay_ms, &old.verdict, old.drop_after_apply),
                (new.delay_ms, &new.verdict, new.drop_after_apply)
            );
            assert!(!(new.drop_after_apply && new.gateway_error_after_apply.is_some()));
            if new.gateway_error_after_apply.is_some() {
                assert_eq!(new.verdict, Verdict::Proceed);
            }
        }
        let gateway = after
            .iter()
            .filter(|d| d.gateway_error_after_apply.is_some())
            .count();
        // 30% of the 50% that proceed.
        assert!((240..360).contains(&gateway), "{gateway}");
        assert!(
            sequence(&base, 2000)
                .iter()
                .all(|d| d.gateway_error_after_apply.is_none())
        );
    }

    #[test]
    fn only_documented_codes_can_be_scripted() {
        let script = |api: &str, code: &str| FaultConfig {
            scripted: vec![Scripted {
                api: api.into(),
                code: code.into(),
                status: None,
                message: None,
                count: 1,
            }],
            ..FaultConfig::default()
        };
        assert!(script("dcs.UpdatePassword", "DCS.4115").validate().is_ok());
        assert!(
            script("dcs.UpdatePassword", "APIGW.0308")
                .validate()
                .is_ok()
        );
        let refused = script("dcs.UpdatePassword", "DCS.4013")
            .validate()
            .unwrap_err();
        assert!(refused.contains("not documented"), "{refused}");
        assert!(
            script("polardb.ModifyAccountPassword", "DCS.4115")
                .validate()
                .is_err()
        );
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
        let parsed: FaultConfig =
            serde_json::from_str(r#"{"latency_ms":{"median":10,"p99":90}}"#).unwrap();
        assert_eq!(
            parsed.latency_ms,
            Some(Latency::LogNormal {
                median: 10,
                p99: 90
            })
        );
        assert!(
            serde_json::from_str::<FaultConfig>(r#"{"latency_ms":{"median":10,"p99":5}}"#)
                .unwrap()
                .validate()
                .is_err()
        );
        assert!(serde_json::from_str::<FaultConfig>(r#"{"bogus":1}"#).is_err());
    }
}
