//! Runs due work from the timetable: an internal timer (OpenBao's ~60 s
//! `rollback` tick only wakes it, as a safety net), bounded concurrency, a
//! little jitter, and only on a node that may write.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Semaphore, watch};

use super::super::core::Engine;
use super::super::role::{RoleKind, Trigger};
use super::super::scheduler::Job;
use super::super::store::LockKey;
use super::execute::{self, RotateRequest};

/// Longest sleep between looks at the timetable, so a clock jump or a
/// missed wake-up costs at most this much delay.
const MAX_SLEEP: Duration = Duration::from_secs(30);

pub async fn run(engine: Arc<Engine>, mut stop: watch::Receiver<bool>) {
    let mut delay = Duration::from_millis(100);
    while let Err(err) = engine.store.index().await {
        tracing::warn!(error = %err, "cannot load roles yet; retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
        delay = (delay * 2).min(MAX_SLEEP);
    }
    // A restore re-initialises the mount: check every target soon after.
    engine.store.timetable.set(
        Job::DriftCheck,
        Some(engine.clock.now() + super::checker::FIRST_CHECK_AFTER),
    );
    let permits = Arc::new(Semaphore::new(engine.tuning.concurrency));
    loop {
        let now = engine.clock.now();
        let sleep = match engine.store.timetable.next_due() {
            Some(due) if due <= now => Duration::ZERO,
            Some(due) => Duration::try_from(due - now)
                .unwrap_or(MAX_SLEEP)
                .min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        if !sleep.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = engine.store.timetable.changed() => {}
                _ = stop.changed() => return,
            }
        }
        if *stop.borrow() {
            return;
        }
        let available = permits.available_permits();
        if available == 0 {
            tokio::select! {
                _ = engine.store.timetable.changed() => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let due = engine
            .store
            .timetable
            .take_due(engine.clock.now(), available);
        if due.is_empty() {
            continue;
        }
        if !engine.runs_background_work().await {
            // A standby or secondary: the active node does this work.
            for job in &due {
                engine.store.timetable.finished(job);
            }
            tokio::select! {
                _ = tokio::time::sleep(MAX_SLEEP) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        for job in due {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let engine = engine.clone();
            tokio::spawn(async move {
                let running = Running { engine, job };
                let jitter = running
                    .engine
                    .tuning
                    .jitter
                    .mul_f64(rand::rng().random::<f64>());
                tokio::time::sleep(jitter).await;
                run_job(&running.engine, &running.job).await;
                drop(running);
                drop(permit);
            });
        }
    }
}

/// A job handed out by the timetable: released when the task ends, even by
/// a panic, so the job is never stuck in the running set.
struct Running {
    engine: Arc<Engine>,
    job: Job,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.engine.store.timetable.finished(&self.job);
    }
}

async fn run_job(engine: &Arc<Engine>, job: &Job) {
    let due_before = engine.store.timetable.due_at(job);
    let result = match job {
        Job::Role(name) => run_role(engine, name).await,
        Job::Root(name) => super::root::run_due(engine, name).await,
        Job::DriftCheck => super::checker::check_all(engine).await,
    };
    if let Err(err) = &result {
        tracing::warn!(job = ?job, error = %err, "scheduled work failed");
    }
    // Whatever happened, never spin on the same due time.
    let due_after = engine.store.timetable.due_at(job);
    if due_after.is_some()
        && due_after == due_before
        && due_after.is_some_and(|due| due <= engine.clock.now())
    {
        engine.store.timetable.set(
            job.clone(),
            Some(engine.clock.now() + engine.tuning.backoff(1)),
        );
    }
}

async fn run_role(engine: &Arc<Engine>, name: &str) -> Result<(), crate::framework::Error> {
    let Some(_guard) = engine.store.try_lock(LockKey::Role(name)) else {
        // Someone is rotating it right now; they will set its next time.
        engine.store.timetable.set(
            Job::Role(name.into()),
            Some(engine.clock.now() + Duration::from_secs(1)),
        );
        return Ok(());
    };
    let Some(role) = engine.store.load_role(name).await? else {
        engine.store.timetable.set(Job::Role(name.into()), None);
        return Ok(());
    };
    let mut request = RotateRequest::new(Trigger::Schedule);
    if role.kind == RoleKind::Library {
        match &role.state.checkout {
            // The host lost the lease: end the check-out ourselves.
            Some(checkout) if checkout.max_expires_at <= engine.clock.now() => {
                request = RotateRequest {
                    end_checkout: Some(checkout.id.clone()),
                    ..RotateRequest::new(Trigger::LeaseEnd)
                };
            }
            _ if role.state.in_flight.is_none() => {
                engine.store.timetable.set(
                    Job::Role(name.into()),
                    role.state.checkout.as_ref().map(|c| c.max_expires_at),
                );
                return Ok(());
            }
            _ => {}
        }
    }
    let outcome = execute::run(engine, name, request).await?;
    tracing::info!(
        role = name,
        outcome = outcome.status().as_str(),
        "scheduled rotation ran"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ManualClock;
    use crate::engine::tuning::Tuning;
    use crate::framework::{MemoryStorage, StaticSystemView};
    use time::macros::datetime;

    #[tokio::test]
    async fn a_job_whose_task_panics_is_handed_out_again() {
        let now = datetime!(2026-12-07 10:00:00 UTC);
        let engine = Arc::new(Engine::new(
            Arc::new(MemoryStorage::default()),
            Arc::new(StaticSystemView::default()),
            Arc::new(ManualClock::new(now)),
            Arc::new(crate::engine::cloud::fake::FakeCloud::default()),
            Tuning::default(),
            "uuid".into(),
        ));
        let job = Job::Role("app".into());
        engine.store.timetable.set(job.clone(), Some(now));
        let handed_out = engine.store.timetable.take_due(now, 1);
        assert_eq!(handed_out, vec![job.clone()]);
        let running = Running {
            engine: engine.clone(),
            job: job.clone(),
        };
        let task = tokio::spawn(async move {
            let _running = running;
            panic!("a bug in a rotation");
        });
        assert!(task.await.is_err_and(|e| e.is_panic()));
        assert_eq!(engine.store.timetable.take_due(now, 1), vec![job]);
    }
}
