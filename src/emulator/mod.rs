//! `cloudrotate-emulator`: a local stand-in for Alibaba PolarDB, DTS and RAM
//! and Huawei DRS, DCS and IAM, close enough to the real APIs that a client
//! which passes against it passes against the clouds.
//!
//! Layout: [`http`] holds transport-free request/reply types; [`auth`]
//! verifies signatures with the clients' own signing functions; [`alicloud`]
//! and [`huawei`] hold the services' rules over the [`model`]; [`faults`]
//! decides seeded faults and keeps counters; [`admin`] serves
//! `/_emulator/...`; [`server`] puts it all on a socket. [`Emulator::handle`]
//! is the whole behaviour as a synchronous function, so rules are tested
//! without a socket.

pub mod accounts;
pub mod admin;
pub mod alicloud;
pub mod auth;
pub mod backing;
pub mod clock;
pub mod codes;
pub mod config;
pub mod faults;
pub mod http;
pub mod huawei;
pub mod model;
pub mod rules;
pub mod server;
pub mod testkit;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use self::auth::{HwLocks, NonceCache};
use self::clock::Clock;
use self::faults::{Counters, FaultConfig, FaultEngine, Scripted, Verdict};
use self::http::{Action, Handled, Reply, Request};
use self::model::{Seed, World};

/// Everything behind the one lock: the clouds, the auth memories, faults
/// and counters. One lock keeps "same seed, same sequence, same faults".
#[derive(Default)]
pub struct Inner {
    pub world: World,
    pub nonces: NonceCache,
    pub hw_locks: HwLocks,
    pub faults: FaultEngine,
    pub counters: Counters,
}

/// What the emulator starts from, and returns to on `POST /_emulator/reset`.
#[derive(Debug, Clone, Default)]
pub struct Startup {
    pub seed: Seed,
    pub faults: FaultConfig,
}

pub struct Emulator {
    inner: Mutex<Inner>,
    /// One call at a time while its changes reach the backing servers, so
    /// the servers see changes in the order the emulator made them.
    backing_gate: tokio::sync::Mutex<()>,
    clock: Arc<Clock>,
    startup: Startup,
    ids: AtomicU64,
    id_salt: u64,
}

impl Emulator {
    pub fn new(startup: Startup, clock: Arc<Clock>) -> Self {
        let emulator = Self {
            inner: Mutex::new(Inner::default()),
            backing_gate: tokio::sync::Mutex::new(()),
            clock,
            startup,
            ids: AtomicU64::new(0),
            id_salt: rand::random(),
        };
        emulator.reset();
        emulator
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in a handler must not take the server down with it.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Back to the startup seed and faults; counters, nonces, locks and the
    /// clock offset cleared.
    pub fn reset(&self) {
        let now = self.clock.now();
        let mut inner = self.lock();
        let secrets = std::mem::take(&mut inner.world.secrets);
        *inner = Inner::default();
        inner.world.secrets = secrets;
        inner
            .world
            .merge(self.startup.seed.clone(), &format_time(now));
        inner.faults = FaultEngine::new(self.startup.faults.clone());
        let ops = backing::reconcile_ops(&inner.world);
        inner.world.queue_backing(backing::BackingChange {
            ops,
            undo: None,
            on_failure: admin::backing_refused(),
        });
        self.clock.set_offset(time::Duration::ZERO);
    }

    /// A fresh request id: 128 bits, unique per process.
    pub fn request_id(&self) -> u128 {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        (u128::from(self.id_salt) << 64) | u128::from(mix(n ^ self.id_salt))
    }

    /// The whole behaviour of the emulator for one request.
    pub fn handle(&self, request: &Request) -> Handled {
        if let Some(rest) = request.path.strip_prefix("/_emulator/") {
            return Handled::reply(admin::handle(self, request, rest));
        }
        let now = self.clock.now();
        let id = self.request_id();
        let mut inner = self.lock();
        inner.world.settle_accounts(now);
        if request.path == "/" || request.path.starts_with("/?") {
            alicloud::handle(&mut inner, now, request, id)
        } else {
            huawei::handle(&mut inner, now, request, id)
        }
    }
}

impl Emulator {
    /// [`Emulator::handle`], then the changes the call made to backed
    /// resources applied to their servers: a change a server refuses puts
    /// the resource back and turns the answer into the cloud's internal
    /// error. One call at a time goes through here.
    pub async fn handle_with_backing(&self, request: &Request) -> Handled {
        let _gate = self.backing_gate.lock().await;
        let mut handled = self.handle(request);
        if let Err(reply) = self.apply_pending_backing().await {
            handled.action = Action::Reply(reply);
        }
        handled
    }

    /// Applies the queued server changes (at start-up: the seed's); the
    /// first refusal is undone and its answer returned.
    pub async fn apply_pending_backing(&self) -> Result<(), Reply> {
        let pending = std::mem::take(&mut self.lock().world.pending_backing);
        for change in pending {
            if let Err(message) = backing::apply(&change.ops).await {
                eprintln!("cloudrotate-emulator: backing server: {message}");
                if let Some(undo) = change.undo {
                    self.lock().world.restore(undo);
                }
                return Err(change.on_failure);
            }
        }
        Ok(())
    }
}

/// SplitMix64's finaliser: a bijection, so distinct counters give distinct
/// ids that do not look sequential.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `2024-05-01T08:00:00Z`.
pub fn format_time(at: OffsetDateTime) -> String {
    crate::providers::alicloud::sign::format_timestamp(at)
}

/// The cloud-specific answers to faults.
pub trait FaultReplies {
    fn throttled(&self, retry_after_ms: u64, limit_per_minute: Option<u32>) -> Reply;
    /// `variant` 0 or 1 picks one of the cloud's two server errors.
    fn server_error(&self, variant: u8) -> Reply;
    fn scripted(&self, entry: &Scripted) -> Reply;
}

/// The shared tail of every authenticated cloud call: faults, then the
/// call itself, then counters.
pub fn run_call(
    inner: &mut Inner,
    now: OffsetDateTime,
    api: &str,
    key: &str,
    replies: &dyn FaultReplies,
    apply: impl FnOnce(&mut Inner) -> Reply,
) -> Handled {
    let decision = inner.faults.decide(api, key, now);
    let outcomes = &mut inner.counters.outcomes;
    let action = match decision.verdict {
        Verdict::Proceed => {
            let reply = apply(inner);
            let outcomes = &mut inner.counters.outcomes;
            if let Some(variant) = decision.gateway_error_after_apply {
                outcomes.gateway_error_after_apply += 1;
                Action::Reply(replies.server_error(variant))
            } else if decision.drop_after_apply {
                outcomes.dropped_after_apply += 1;
                Action::Drop {
                    hold: Duration::from_millis(decision.hold_ms),
                }
            } else {
                if reply.status < 300 {
                    outcomes.ok += 1;
                } else {
                    outcomes.error += 1;
                }
                Action::Reply(reply)
            }
        }
        Verdict::Throttle { retry_after_ms } => {
            outcomes.throttled += 1;
            Action::Reply(replies.throttled(retry_after_ms, None))
        }
        Verdict::RateLimited {
            retry_after_ms,
            limit,
        } => {
            outcomes.throttled += 1;
            outcomes.rate_limited += 1;
            Action::Reply(replies.throttled(retry_after_ms, Some(limit)))
        }
        Verdict::ServerError { variant } => {
            outcomes.server_error += 1;
            Action::Reply(replies.server_error(variant))
        }
        Verdict::Reset => {
            outcomes.reset += 1;
            Action::Reset
        }
        Verdict::Scripted(entry) => {
            outcomes.scripted += 1;
            Action::Reply(replies.scripted(&entry))
        }
    };
    Handled {
        delay: Duration::from_millis(decision.delay_ms),
        action,
    }
}

/// Counts an authentication refusal.
pub fn count_auth_failure(inner: &mut Inner, locked: bool) {
    if locked {
        inner.counters.outcomes.locked += 1;
    } else {
        inner.counters.outcomes.auth_failed += 1;
    }
}

/// `len` characters drawn from `charset` (new access keys and secrets; not
/// from the fault RNG, so creating keys never shifts the fault sequence).
pub fn random_string(len: usize, charset: &[u8]) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| charset[rng.random_range(0..charset.len())] as char)
        .collect()
}
