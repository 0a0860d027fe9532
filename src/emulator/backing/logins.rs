//! Our model of how DTS and DRS react to a source password they no longer
//! hold: a job whose source endpoint is a backed resource logs in to the
//! real server every interval with its copy of the password (DTS: the
//! source user of a PolarDB cluster backed by PostgreSQL; DRS: the
//! source's ACL user, or the default user, of a DCS instance backed by
//! Redis).
//!
//! - A refused login fails a running job: DTS `Synchronizing` becomes
//!   `Failed` and `Migrating` becomes `MigrationFailed` (the statuses
//!   DescribeDtsJobDetail documents, SDK `alibabacloud_dts20200101`
//!   5.11.7 `_describe_dts_job_detail_response_body.py`), with the
//!   reason in `ErrorMessage`; DRS `INCRE_TRANSFER_STARTED` becomes
//!   `INCRE_TRANSFER_FAILED` and `FULL_TRANSFER_STARTED`
//!   `FULL_TRANSFER_FAILED` (the DRS job statuses).
//! - A job the emulator failed goes back to the status it had once a
//!   login works again (after its copy of the password was changed, or
//!   the source's password was set back). A job failed by a test (admin
//!   PATCH) stays failed.
//!
//! The real services document the failure, not the interval or the
//! recovery; both are this model.

use std::sync::Arc;
use std::time::Duration;

use super::{postgres, redis};
use crate::emulator::Emulator;
use crate::emulator::model::{LoginFailure, World};

#[derive(Debug, Clone, PartialEq, Eq)]
enum JobRef {
    Dts(String),
    Drs(String),
}

/// One login to try, with the password it tried (a change in between
/// makes its result stale).
struct Probe {
    job: JobRef,
    password: String,
    attempt: Login,
}

enum Login {
    Postgres(super::PostgresServer, String),
    Redis(super::RedisServer, Option<String>),
}

fn probes(world: &World) -> Vec<Probe> {
    let mut out = Vec::new();
    for job in &world.seed.alicloud.dts_jobs {
        let server = world
            .polardb_cluster(&job.src.instance_id)
            .and_then(|c| c.backing.clone());
        if let Some(server) = server {
            out.push(Probe {
                job: JobRef::Dts(job.id.clone()),
                password: job.src.password.clone(),
                attempt: Login::Postgres(server, job.src.user.clone()),
            });
        }
    }
    for job in &world.seed.huaweicloud.drs_jobs {
        let server = world
            .seed
            .huaweicloud
            .dcs_instances
            .iter()
            .find(|i| i.id == job.so.instance_id)
            .and_then(|i| i.backing.clone());
        if let Some(server) = server {
            let user = (!job.so.user.is_empty()).then(|| job.so.user.clone());
            out.push(Probe {
                job: JobRef::Drs(job.id.clone()),
                password: job.so.password.clone(),
                attempt: Login::Redis(server, user),
            });
        }
    }
    out
}

impl Probe {
    async fn run(&self) -> Result<(), String> {
        match &self.attempt {
            Login::Postgres(server, user) => postgres::login(server, user, &self.password).await,
            Login::Redis(server, user) => {
                redis::login(&server.host, server.port, user.as_deref(), &self.password).await
            }
        }
    }
}

/// The failed status of a running one, per service.
fn failed_status(job: &JobRef, status: &str) -> Option<&'static str> {
    match (job, status) {
        (JobRef::Dts(_), "Synchronizing" | "synchronizing") => Some("Failed"),
        (JobRef::Dts(_), "Migrating") => Some("MigrationFailed"),
        (JobRef::Drs(_), "INCRE_TRANSFER_STARTED") => Some("INCRE_TRANSFER_FAILED"),
        (JobRef::Drs(_), "FULL_TRANSFER_STARTED") => Some("FULL_TRANSFER_FAILED"),
        _ => None,
    }
}

/// Folds one login result into the job's status.
fn record(world: &mut World, probe: &Probe, result: Result<(), String>) {
    let (status, failure, password) = match &probe.job {
        JobRef::Dts(id) => match world.dts_job_mut(id) {
            Some(job) => (&mut job.status, &mut job.login_failure, &job.src.password),
            None => return,
        },
        JobRef::Drs(id) => match world.drs_job_mut(id) {
            Some(job) => (&mut job.status, &mut job.login_failure, &job.so.password),
            None => return,
        },
    };
    if *password != probe.password {
        return; // the copy changed meanwhile: the next round decides
    }
    match result {
        Err(message) => {
            if failure.is_none()
                && let Some(failed) = failed_status(&probe.job, status)
            {
                *failure = Some(LoginFailure {
                    previous_status: std::mem::replace(status, failed.to_owned()),
                    message: format!("the source refused the job's login: {message}"),
                });
            }
        }
        Ok(()) => {
            if let Some(previous) = failure.take() {
                *status = previous.previous_status;
            }
        }
    }
}

/// Tries every backed job's login once and records the results.
pub async fn check_once(emulator: &Emulator) {
    // Under the gate API calls and seeds hold while their server changes
    // apply: a round never sees a job whose source account is not on its
    // server yet (which failed a freshly seeded job under load).
    let _gate = emulator.backing_gate.lock().await;
    let probes = probes(&emulator.lock().world);
    let mut results = Vec::with_capacity(probes.len());
    for probe in probes {
        let result = probe.run().await;
        results.push((probe, result));
    }
    let mut inner = emulator.lock();
    for (probe, result) in results {
        record(&mut inner.world, &probe, result);
    }
}

/// Checks the logins every `interval` for ever (the server's task).
pub async fn watch(emulator: Arc<Emulator>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        check_once(&emulator).await;
    }
}
