//! The executor: runs the planner's steps against the clouds and storage.
//! It is the one place a rotation commits: the record before any provider
//! call, then after each step the planner says must be kept, history first.
//! A dry run walks the same steps, reading for real and pretending every
//! change succeeds, so it can never disagree with a real rotation.

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use rand::Rng;

use crate::framework::Error;
use crate::providers::ProviderError;

use super::super::calls;
use super::super::cloud::TargetState;
use super::super::core::Engine;
use super::super::history;
use super::super::marker;
use super::super::role::{Phase, Role, Trigger};
use super::plan::{self, Action, Begin, Context, MarkerWrite, Observation, Run, RunOutcome, Start};

pub struct RotateRequest {
    pub trigger: Trigger,
    /// The password the operator gives: an external target's new one, or
    /// the one a PolarDB or DCS target holds (adoption).
    pub password: Option<String>,
    /// Lease end: the checkout being ended, cleared in the same write that
    /// records the rotation.
    pub end_checkout: Option<String>,
    /// The target as the request that starts this rotation read it moments
    /// ago (a role write's claim check), so the first step does not read
    /// it again.
    pub target: Option<TargetState>,
}

impl RotateRequest {
    pub fn new(trigger: Trigger) -> Self {
        Self {
            trigger,
            password: None,
            end_checkout: None,
            target: None,
        }
    }
}

/// The planner's view of the engine, now.
pub fn context<'a>(engine: &'a Engine, name: &'a str, role: &Role, owner: &'a str) -> Context<'a> {
    Context {
        name,
        now: engine.clock.now(),
        tuning: &engine.tuning,
        owner,
        jitter: rand::rng().random::<f64>(),
        rejection: role
            .connections()
            .into_iter()
            .find_map(|connection| engine.store.rejection(connection)),
    }
}

/// Runs (or resumes) a rotation of `name`. The caller holds the role's lock.
pub async fn run(
    engine: &Arc<Engine>,
    name: &str,
    request: RotateRequest,
) -> Result<RunOutcome, Error> {
    let role = engine
        .store
        .load_role(name)
        .await?
        .ok_or_else(|| Error::bad_request(format!("role {name:?} does not exist")))?;
    Ok(rotate(engine, name, role, request).await?.0)
}

/// Runs (or resumes) a rotation of `role`, as the caller loaded it under
/// the role's lock; gives the role as it was last committed.
pub async fn rotate(
    engine: &Arc<Engine>,
    name: &str,
    mut role: Role,
    request: RotateRequest,
) -> Result<(RunOutcome, Role), Error> {
    engine.ensure_writable().await?;
    let now = engine.clock.now();
    match plan::begin(&role, name, request.trigger, request.password, now)? {
        Begin::NotDue => return Ok((RunOutcome::NotDue, role)),
        Begin::MissedWindow(next) => {
            plan::missed_window(&mut role, next);
            engine.store.commit_role(name, &role).await?;
            tracing::info!(
                role = name,
                "missed the rotation window; waiting for the next slot"
            );
            return Ok((RunOutcome::NotDue, role));
        }
        Begin::Resume => {
            if let Some(checkout) = &request.end_checkout {
                plan::end_checkout(&mut role, checkout);
            }
        }
        Begin::Start(start) => {
            let password = match start.password.clone() {
                Some(password) => password,
                None => engine.generate_password(&role).await?,
            };
            plan::start(&mut role, start, password, marker::new_id(), now);
            if let Some(checkout) = &request.end_checkout {
                plan::end_checkout(&mut role, checkout);
            }
            engine.store.commit_role(name, &role).await?;
        }
    }
    let owner = engine.owner_id().await?;
    plan::begin_run(&mut role);
    let mut run = Run::default();
    // The write's read is of the account it checked, not necessarily the
    // one a dual rotation changes: a dual role reads its own.
    let mut known = request.target.filter(|_| !role.uses_acl_accounts());
    loop {
        let action = plan::decide(&role, &run, &owner);
        if plan::before(&mut role, &action) {
            engine.store.commit_role(name, &role).await?;
        }
        let observation = match (&action, known.take()) {
            (Action::ReadTarget, Some(read)) => Observation::Target(Ok(read)),
            (_, unused) => {
                known = unused;
                perform(engine, &role, &action).await
            }
        };
        let events_before = role.state.in_flight.as_ref().map_or(0, |f| f.events.len());
        let ctx = context(engine, name, &role, &owner);
        let applied = plan::apply(&mut role, &mut run, &action, observation, &ctx);
        log_events(name, &role, events_before, applied.outcome.as_ref());
        if let Some(entry) = applied.history {
            // Best effort: losing an entry must never fail a rotation that
            // already changed a password.
            if let Err(err) = history::record(engine.store.storage.as_ref(), name, entry).await {
                tracing::warn!(role = name, error = %err, "could not write rotation history");
            }
        }
        if applied.commit {
            engine.store.commit_role(name, &role).await?;
        }
        if let Some(outcome) = applied.outcome {
            return Ok((outcome, role));
        }
    }
}

fn log_events(name: &str, role: &Role, before: usize, outcome: Option<&RunOutcome>) {
    if let Some(flight) = &role.state.in_flight {
        for event in flight.events.iter().skip(before) {
            tracing::warn!(role = name, "{event}");
        }
    }
    if let Some(RunOutcome::Drifted { message }) = outcome {
        tracing::warn!(role = name, "the target drifted: {message}");
    }
}

/// Executes one step against the clouds.
async fn perform(engine: &Engine, role: &Role, action: &Action) -> Observation {
    let store = &engine.store;
    let flight = role.state.in_flight.as_ref();
    // A dual rotation acts on its flight's account; a single role on its
    // one account.
    let account = role.acting_account();
    match action {
        // A DCS ACL account's read also gives the account's status, which
        // says whether it can take a change now (PolarDB dual roles read
        // the account either way).
        Action::ReadTarget if role.is_dual() || role.uses_acl_accounts() => {
            read_account(engine, role, account).await
        }
        Action::ReadTarget => Observation::Target(
            calls::read_target(store, role, account)
                .await
                .unwrap_or_else(|| Err(not_readable(role))),
        ),
        Action::CheckDependents => Observation::Jobs(
            calls::describe_dependents(store, &plan::flight_dependents(role)).await,
        ),
        Action::AwaitSettled => read_account(engine, role, account).await,
        Action::ChangeTarget(method) => {
            let flight = flight.expect("a change is decided for a rotation in flight");
            Observation::Changed(
                calls::change_target(
                    store,
                    role,
                    account,
                    *method,
                    flight.old_password.as_deref(),
                    &flight.new_password,
                )
                .await,
            )
        }
        Action::WriteMarker(MarkerWrite::Send(description)) => Observation::MarkerWritten(
            calls::write_description(store, role, account, description).await,
        ),
        Action::UpdateDependents(pending) => {
            let flight = flight.expect("an update is decided for a rotation in flight");
            Observation::Updated(
                calls::update_dependents(store, pending, &flight.new_password).await,
            )
        }
        Action::WriteMarker(_) | Action::Finish => Observation::Nothing,
    }
}

async fn read_account(engine: &Engine, role: &Role, account: &str) -> Observation {
    Observation::Target(
        calls::read_account(&engine.store, role, account)
            .await
            .unwrap_or_else(|| Err(not_readable(role))),
    )
}

fn not_readable(role: &Role) -> ProviderError {
    ProviderError::config(
        crate::providers::Service::Polardb,
        "precheck",
        &format!("a {} target cannot be read", role.target.kind()),
    )
}

/// What a dry run saw: each step with the answer it got (a real one for
/// reads, an assumed success for changes), and how the run would end.
pub struct DryRun {
    pub resumes: bool,
    /// The account the walked rotation acts on (a dual role's flight
    /// account; `None` for a single role).
    pub account: Option<String>,
    pub steps: Vec<(Action, Observation)>,
    pub outcome: RunOutcome,
}

/// Walks a rotation of `role` without changing anything: the reads are
/// made (they are the prechecks), every change is assumed to succeed.
pub async fn dry_run(engine: &Engine, name: &str, role: &Role) -> Result<DryRun, Error> {
    let mut role = role.clone();
    let now = engine.clock.now();
    let resumes = role.state.in_flight.is_some();
    if !resumes {
        let start = match plan::begin(&role, name, Trigger::Manual, None, now) {
            Ok(Begin::Start(start)) => start,
            // An external target's rotation is given its password; the
            // plan is the same whatever it is.
            _ => Start {
                trigger: Trigger::Propagate,
                phase: Phase::TargetApplied,
                password: None,
                given: false,
                account: None,
            },
        };
        let placeholder = "dry-run: never sent".to_owned();
        plan::start(&mut role, start, placeholder, marker::new_id(), now);
    }
    let owner = engine.owner_id().await?;
    plan::begin_run(&mut role);
    let account = role
        .state
        .in_flight
        .as_ref()
        .and_then(|f| f.account.clone());
    let mut run = Run::default();
    let mut steps = Vec::new();
    loop {
        let action = plan::decide(&role, &run, &owner);
        plan::before(&mut role, &action);
        let observation = match &action {
            Action::ReadTarget | Action::CheckDependents | Action::AwaitSettled => {
                perform(engine, &role, &action).await
            }
            Action::ChangeTarget(_) => Observation::Changed(Ok(None)),
            Action::WriteMarker(MarkerWrite::Send(_)) => Observation::MarkerWritten(Ok(())),
            Action::UpdateDependents(pending) => {
                Observation::Updated(pending.iter().map(|_| Ok(None)).collect())
            }
            Action::WriteMarker(_) | Action::Finish => Observation::Nothing,
        };
        let ctx = context(engine, name, &role, &owner);
        let applied = plan::apply(&mut role, &mut run, &action, observation.clone(), &ctx);
        steps.push((action, observation));
        if let Some(outcome) = applied.outcome {
            return Ok(DryRun {
                resumes,
                account,
                steps,
                outcome,
            });
        }
    }
}
