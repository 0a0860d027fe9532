//! The periodic drift check: every `drift_check_interval` over every
//! role, and once shortly after the engine starts (a snapshot restore
//! re-initialises the mounts). Reads are coalesced per connection; only
//! roles whose result changed are written.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::framework::Error;

use super::super::calls;
use super::super::core::Engine;
use super::super::history;
use super::super::marker;
use super::super::role::{CheckState, Role, Status};
use super::super::scheduler::Job;
use super::super::store::LockKey;
use super::drift::{Finding, compare_account, generations};
use super::execute;
use super::plan::{self, MarkerWrite};

/// How soon after the engine starts the first check runs.
pub const FIRST_CHECK_AFTER: Duration = Duration::from_secs(2);

/// Checks every PolarDB and DCS role of the mount, then schedules the next
/// check. Reads are coalesced per connection; only roles whose result
/// changed are written.
pub async fn check_all(engine: &Arc<Engine>) -> Result<(), Error> {
    let names = engine
        .store
        .index()
        .await?
        .lock()
        .expect("index lock")
        .all_names();
    let mut checks = JoinSet::new();
    let mut checked = 0usize;
    for name in names {
        while checks.len() >= engine.tuning.concurrency {
            checks.join_next().await;
        }
        let engine = engine.clone();
        checks.spawn(async move {
            if let Err(err) = check_one(&engine, &name).await {
                tracing::warn!(role = %name, error = %err, "drift check failed");
            }
        });
        checked += 1;
    }
    while checks.join_next().await.is_some() {}
    tracing::debug!(roles = checked, "drift check done");
    engine.store.timetable.set(
        Job::DriftCheck,
        Some(engine.clock.now() + engine.tuning.drift_check_interval),
    );
    Ok(())
}

async fn check_one(engine: &Arc<Engine>, name: &str) -> Result<(), Error> {
    let Some(role) = engine.store.load_role(name).await? else {
        return Ok(());
    };
    if role.state.status == Status::Drifted || role.marker_rule().is_none() {
        return Ok(());
    }
    // Read without the role's lock, so a rotate-role meanwhile is not
    // refused as "already running"; act only if nothing changed since. A
    // dual PolarDB role's accounts each carry a marker: both are read.
    let accounts: Vec<String> = role
        .marked_accounts()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut reads = Vec::new();
    for account in &accounts {
        let Some(read) = calls::read_target(&engine.store, &role, account).await else {
            return Ok(());
        };
        reads.push(read);
    }
    let Some(_guard) = engine.store.try_lock(LockKey::Role(name)) else {
        // A rotation runs: its own precheck reads the target.
        return Ok(());
    };
    let Some(mut current) = engine.store.load_role(name).await? else {
        return Ok(());
    };
    let unchanged = |a: &Role, b: &Role| {
        a.state.status == b.state.status
            && a.state.generation == b.state.generation
            && a.state.marker_generation == b.state.marker_generation
            && a.state.active == b.state.active
            && a.state.last_generation == b.state.last_generation
            && a.state.last_marker_generation == b.state.last_marker_generation
            && a.state.in_flight.as_ref().map(|f| (&f.id, f.phase))
                == b.state.in_flight.as_ref().map(|f| (&f.id, f.phase))
    };
    if !unchanged(&role, &current) {
        return Ok(());
    }
    let role = &mut current;
    let now = engine.clock.now();
    let mut targets = Vec::new();
    for (account, read) in accounts.iter().zip(reads) {
        match read {
            Ok(target) => targets.push(target),
            Err(error) => {
                let why = format!(
                    "could not read the target{}: {error}",
                    whose(&accounts, account)
                );
                if plan::set_check(role, now, CheckState::Unavailable, Some(why)) {
                    engine.store.commit_role(name, role).await?;
                }
                return Ok(());
            }
        }
    }
    let owner = engine.owner_id().await?;
    let dual = role.is_dual();
    let mut changed = false;
    // Whether the accounts' findings decide the check's state (nothing
    // else set it: no resume due, no marker write that failed).
    let mut decides_check = true;
    let mut unverified = Vec::new();
    for (account, target) in accounts.iter().zip(&targets) {
        // Single roles and a DCS instance's one marker: the role-level
        // generations; a dual PolarDB account: its own pair.
        let which = dual.then_some(account.as_str());
        let found = marker::find(&target.description);
        match compare_account(found.as_ref(), &owner, role, which) {
            Finding::Drifted(kind, detail) => {
                let ctx = execute::context(engine, name, role, &owner);
                let applied = plan::drifted(role, kind, detail, &ctx);
                tracing::warn!(role = name, kind = ?kind, "the target drifted: {}", role.state.status_reason.as_deref().unwrap_or_default());
                if let Some(entry) = applied.history
                    && let Err(err) =
                        history::record(engine.store.storage.as_ref(), name, entry).await
                {
                    tracing::warn!(role = name, error = %err, "could not write rotation history");
                }
                changed = true;
                decides_check = false;
                break;
            }
            Finding::AlreadyApplied => {
                // The record resumes now; its own precheck advances it.
                engine
                    .store
                    .timetable
                    .set(Job::Role(name.into()), Some(now));
                decides_check = false;
            }
            Finding::MarkerBehind => {
                // The generation whose password the account holds.
                let (set, _) = generations(role, which);
                let generation = set.unwrap_or_default().to_owned();
                let write = plan::merge_marker(role, &target.description, &owner, &generation);
                let sent = match &write {
                    MarkerWrite::Send(description) => Some(
                        calls::write_description(&engine.store, role, account, description).await,
                    ),
                    _ => None,
                };
                plan::record_marker(role, &write, sent, now, &generation);
                changed = true;
                decides_check &= role
                    .state
                    .drift_check
                    .as_ref()
                    .is_some_and(|c| c.state == CheckState::InSync);
            }
            Finding::InSync => {}
            Finding::Unverified => unverified.push(account.as_str()),
        }
    }
    if decides_check {
        changed |= if unverified.is_empty() {
            plan::set_check(role, now, CheckState::InSync, None)
        } else {
            let whose = whose(&accounts, &unverified.join(", "));
            plan::set_check(
                role,
                now,
                CheckState::Unverified,
                Some(format!(
                    "the target{whose} carries no ownership marker; the next rotation writes one"
                )),
            )
        };
    }
    if changed {
        engine.store.commit_role(name, role).await?;
    }
    Ok(())
}

/// " (account <names>)" when the role's accounts each carry a marker, to
/// say which one a check result is about; nothing otherwise.
fn whose(accounts: &[String], names: &str) -> String {
    if accounts.len() > 1 {
        format!(" (account {names})")
    } else {
        String::new()
    }
}
