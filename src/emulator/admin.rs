//! The admin API under `/_emulator/`: unauthenticated JSON for tests (the
//! server only listens on loopback). Seed, dump and read the true state
//! (passwords included), change job, cluster, instance and account states
//! (`polardb/{cluster}`, `polardb/{cluster}/accounts/{name}`,
//! `dcs/{id}/accounts/{name}`), read counters, set faults, move the clock,
//! reset.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::Duration;

use super::accounts::POLARDB_CLUSTER_STATUSES;
use super::faults::{Counters, FaultConfig, FaultEngine};
use super::http::{Reply, Request};
use super::huawei::DCS_MAX_TRIES;
use super::model::{Seed, World};
use super::{Emulator, format_time};
use crate::providers::encoding::percent_decode;

fn error(status: u16, message: impl Into<String>) -> Reply {
    Reply::json(status, &json!({ "error": message.into() }))
}

/// The admin answer when a backing server refused what a seed or reset
/// asked of it (the emulator's log says what).
pub fn backing_refused() -> Reply {
    error(
        502,
        "a backing server refused a change (the emulator's standard error says which)",
    )
}

fn not_found(what: &str) -> Reply {
    error(404, format!("{what} not found"))
}

fn ok(value: &impl Serialize) -> Reply {
    Reply::json(200, &serde_json::to_value(value).expect("state serialises"))
}

fn parse<T: DeserializeOwned>(request: &Request) -> Result<T, Reply> {
    serde_json::from_slice(&request.body).map_err(|e| error(400, format!("invalid JSON: {e}")))
}

/// `{"status": "..."}`, the body of every PATCH.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusPatch {
    status: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    offset_seconds: Option<f64>,
    advance_seconds: Option<f64>,
}

fn with_changes(value: impl Serialize, changes: u64) -> Value {
    let mut value = serde_json::to_value(value).expect("state serialises");
    value["changes"] = json!(changes);
    value
}

pub fn handle(emulator: &Emulator, request: &Request, rest: &str) -> Reply {
    let segments: Vec<String> = rest.split('/').map(percent_decode).collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = request.method.as_str();
    let result = match (method, s.as_slice()) {
        ("GET", ["health"]) => Ok(ok(&json!({"ok": true}))),
        ("POST", ["reset"]) => {
            emulator.reset();
            Ok(ok(&json!({"ok": true})))
        }
        ("POST", ["seed"]) => seed(emulator, request),
        ("GET", ["state"]) => Ok(state(emulator)),
        ("GET", ["secrets"]) => Ok(ok(&emulator.lock().world.secrets)),
        ("GET", ["counters"]) => Ok(ok(&emulator.lock().counters)),
        ("DELETE", ["counters"]) => {
            emulator.lock().counters = Counters::default();
            Ok(ok(&json!({"ok": true})))
        }
        ("GET", ["faults"]) => Ok(ok(emulator.lock().faults.config())),
        ("PUT", ["faults"]) => set_faults(emulator, request),
        ("GET", ["clock"]) => Ok(clock(emulator)),
        ("PUT", ["clock"]) => set_clock(emulator, request),
        (_, ["polardb", cluster]) => polardb_cluster(emulator, request, cluster),
        (_, ["polardb", cluster, "accounts", name]) => target(emulator, request, |world| {
            let cluster = world.polardb_cluster_mut(cluster)?;
            let region = cluster.region.clone();
            let cluster_id = cluster.id.clone();
            let account = cluster.accounts.iter_mut().find(|a| a.name == *name)?;
            let mut view = serde_json::to_value(&*account).expect("serialises");
            view["cluster_id"] = json!(cluster_id);
            view["region"] = json!(region);
            Some((&mut account.status, view))
        }),
        (_, ["dcs", id, "accounts", name]) => target(emulator, request, |world| {
            let instance = world.dcs_instance_mut(id)?;
            let instance_id = instance.id.clone();
            let account = instance.acl_accounts.iter_mut().find(|a| a.name == *name)?;
            let mut view = serde_json::to_value(&*account).expect("serialises");
            view["instance_id"] = json!(instance_id);
            Some((&mut account.status, view))
        }),
        (_, ["dts", id]) => target(emulator, request, |world| {
            let job = world.dts_job_mut(id)?;
            let view = with_changes(&*job, job.src.changes + job.dest.changes);
            Some((&mut job.status, view))
        }),
        (_, ["drs", id]) => target(emulator, request, |world| {
            let job = world.drs_job_mut(id)?;
            let view = with_changes(&*job, job.so.changes + job.ta.changes);
            Some((&mut job.status, view))
        }),
        (_, ["dcs", id]) => {
            let now = emulator.clock().now().unix_timestamp();
            target(emulator, request, |world| {
                let instance = world.dcs_instance_mut(id)?;
                let mut view = serde_json::to_value(&*instance).expect("serialises");
                let locked = instance.locked_until.is_some_and(|until| until > now);
                view["locked"] = json!(locked);
                view["retry_times_left"] = json!(if locked {
                    0
                } else {
                    DCS_MAX_TRIES.saturating_sub(instance.failed_attempts)
                });
                Some((&mut instance.status, view))
            })
        }
        _ => Err(error(
            404,
            format!("no admin route {method} /_emulator/{rest}"),
        )),
    };
    result.unwrap_or_else(|reply| reply)
}

/// A PolarDB cluster; PATCH takes only a status PolarDB documents.
fn polardb_cluster(emulator: &Emulator, request: &Request, id: &str) -> Result<Reply, Reply> {
    if request.method == "PATCH" {
        let patch: StatusPatch = parse(request)?;
        if !POLARDB_CLUSTER_STATUSES.contains(&patch.status.as_str()) {
            return Err(error(
                400,
                format!(
                    "status {:?} is not a PolarDB cluster status: use one of {}",
                    patch.status,
                    POLARDB_CLUSTER_STATUSES.join(", ")
                ),
            ));
        }
    }
    target(emulator, request, |world| {
        let cluster = world.polardb_cluster_mut(id)?;
        let view = serde_json::to_value(&*cluster).expect("serialises");
        Some((&mut cluster.status, view))
    })
}

/// GET returns the view; PATCH `{"status"}` changes the status, then
/// returns the view. `find` gives the status field and the view.
fn target(
    emulator: &Emulator,
    request: &Request,
    find: impl FnOnce(&mut World) -> Option<(&mut String, Value)>,
) -> Result<Reply, Reply> {
    let patch = match request.method.as_str() {
        "GET" => None,
        "PATCH" => Some(parse::<StatusPatch>(request)?),
        _ => return Err(error(405, "use GET or PATCH")),
    };
    let mut inner = emulator.lock();
    let (status, mut view) = find(&mut inner.world).ok_or_else(|| not_found("target"))?;
    if let Some(patch) = patch {
        *status = patch.status.clone();
        view["status"] = json!(patch.status);
    }
    Ok(Reply::json(200, &view))
}

fn seed(emulator: &Emulator, request: &Request) -> Result<Reply, Reply> {
    let seed: Seed = parse(request)?;
    seed.validate().map_err(|e| error(400, e))?;
    let now = format_time(emulator.clock().now());
    let mut inner = emulator.lock();
    inner.world.merge(seed, &now);
    let ops = super::backing::reconcile_ops(&inner.world);
    inner.world.queue_backing(super::backing::BackingChange {
        ops,
        undo: None,
        on_failure: backing_refused(),
    });
    Ok(ok(&json!({"ok": true})))
}

fn state(emulator: &Emulator) -> Reply {
    let inner = emulator.lock();
    let mut value = serde_json::to_value(&inner.world.seed).expect("state serialises");
    value["clock"] = clock_value(emulator);
    value["counters"] = serde_json::to_value(&inner.counters).expect("counters serialise");
    Reply::json(200, &value)
}

fn set_faults(emulator: &Emulator, request: &Request) -> Result<Reply, Reply> {
    let config: FaultConfig = parse(request)?;
    config.validate().map_err(|e| error(400, e))?;
    let reply = ok(&config);
    emulator.lock().faults = FaultEngine::new(config);
    Ok(reply)
}

fn clock_value(emulator: &Emulator) -> Value {
    let clock = emulator.clock();
    json!({
        "now": format_time(clock.now()),
        "offset_seconds": clock.offset().as_seconds_f64(),
    })
}

fn clock(emulator: &Emulator) -> Reply {
    Reply::json(200, &clock_value(emulator))
}

fn set_clock(emulator: &Emulator, request: &Request) -> Result<Reply, Reply> {
    let change: ClockChange = parse(request)?;
    let clock = emulator.clock();
    if let Some(offset) = change.offset_seconds {
        clock.set_offset(Duration::seconds_f64(offset));
    }
    if let Some(by) = change.advance_seconds {
        clock.advance(Duration::seconds_f64(by));
    }
    Ok(self::clock(emulator))
}
