//! A scripted [`Cloud`] for tests: targets and jobs held in memory, every
//! call logged, and errors served from a script (per operation, in order;
//! `applied` errors change the state before failing, like an answer lost
//! after the provider acted). A DCS target can count wrong old passwords
//! as DCS does, DTS refuses the password its job already holds, and a
//! simulated crash stops every effect after a given number of steps.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::providers::{ErrorClass, ErrorKind, ProviderError, Service};

use super::super::connection::Connection;
use super::super::role::{Dependent, Target};
use super::{ChangeMethod, Cloud, JobState, Session, TargetState};

/// The operations a script can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    ReadTarget,
    ChangeTarget,
    WriteDescription,
    DescribeJob,
    UpdateJob,
    ListAccessKeys,
}

#[derive(Debug, Clone, Default)]
pub struct FakeTarget {
    pub status: Option<String>,
    pub description: String,
    pub password: String,
    /// DCS: wrong old passwords left before the instance locks, counted
    /// and reported as DCS does; `None` answers DCS.4080 (no count).
    pub tries_left: Option<u32>,
}

/// Minutes a DCS instance stays locked after its last try.
pub const DCS_LOCK_MINUTES: u32 = 5;

#[derive(Debug, Clone)]
pub struct FakeJob {
    pub status: String,
    pub accepts: bool,
    pub password: String,
}

struct Fault {
    error: ProviderError,
    /// The change is made before the error is answered.
    applied: bool,
}

#[derive(Default)]
struct State {
    targets: HashMap<String, FakeTarget>,
    jobs: HashMap<String, FakeJob>,
    faults: HashMap<Op, VecDeque<Fault>>,
    calls: Vec<String>,
    /// Steps (calls, and what tests count with `step`) left before a
    /// simulated crash.
    steps_left: Option<usize>,
    crashed: bool,
}

/// The in-memory clouds; clones share their state.
#[derive(Clone, Default)]
pub struct FakeCloud {
    state: Arc<Mutex<State>>,
}

fn target_key(target: &Target, username: &str) -> String {
    target.resource_id(Some(username)).unwrap_or_default()
}

impl FakeCloud {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake cloud lock")
    }

    /// Adds (or replaces) the target `role` would reach.
    pub fn add_target(&self, target: &Target, username: &str, fake: FakeTarget) {
        self.state()
            .targets
            .insert(target_key(target, username), fake);
    }

    pub fn add_job(&self, dependent: &Dependent, fake: FakeJob) {
        self.state().jobs.insert(dependent.resource_id(), fake);
    }

    pub fn target(&self, target: &Target, username: &str) -> Option<FakeTarget> {
        self.state()
            .targets
            .get(&target_key(target, username))
            .cloned()
    }

    pub fn job(&self, dependent: &Dependent) -> Option<FakeJob> {
        self.state().jobs.get(&dependent.resource_id()).cloned()
    }

    pub fn set_job(&self, dependent: &Dependent, status: &str, accepts: bool) {
        if let Some(job) = self.state().jobs.get_mut(&dependent.resource_id()) {
            job.status = status.to_owned();
            job.accepts = accepts;
        }
    }

    /// The next call of `op` fails with `error`; with `applied`, after
    /// making the change.
    pub fn fail(&self, op: Op, error: ProviderError, applied: bool) {
        self.state()
            .faults
            .entry(op)
            .or_default()
            .push_back(Fault { error, applied });
    }

    /// Every call so far, e.g. `ChangeTarget:DcsUpdate polardb:pc-1/app`.
    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// After `steps` more steps (`None`: never) the process "crashes":
    /// calls change nothing and fail, and `step` says no.
    pub fn crash_after(&self, steps: Option<usize>) {
        let mut state = self.state();
        state.steps_left = steps;
        state.crashed = false;
    }

    /// Takes one step; `false` once crashed.
    pub fn step(&self) -> bool {
        let mut state = self.state();
        match state.steps_left {
            Some(0) => {
                state.crashed = true;
                false
            }
            Some(left) => {
                state.steps_left = Some(left - 1);
                true
            }
            None => true,
        }
    }

    /// A step was refused: everything after it had no effect.
    pub fn crashed(&self) -> bool {
        self.state().crashed
    }

    fn call(&self, op: Op, detail: String) -> Option<Fault> {
        if !self.step() {
            let error = ProviderError::new(
                ErrorClass::Retryable,
                ErrorKind::Connect,
                Service::Polardb,
                "fake",
                "crashed",
                &[],
            );
            return Some(Fault {
                error,
                applied: false,
            });
        }
        let mut state = self.state();
        state.calls.push(detail);
        state.faults.get_mut(&op).and_then(VecDeque::pop_front)
    }
}

impl Cloud for FakeCloud {
    fn open(&self, connection: &Connection) -> Result<Arc<dyn Session>, ProviderError> {
        Ok(Arc::new(FakeSession {
            cloud: self.clone(),
            access_key: connection.access_key.clone(),
        }))
    }
}

struct FakeSession {
    cloud: FakeCloud,
    access_key: String,
}

fn missing(what: &str) -> ProviderError {
    ProviderError::new(
        ErrorClass::Permanent,
        ErrorKind::NotFound,
        Service::Polardb,
        "fake",
        &format!("{what} does not exist"),
        &[],
    )
}

/// DCS refuses a wrong old password; with a count, one try is spent and
/// the last one locks the instance.
fn wrong_old_password(fake: &mut FakeTarget) -> ProviderError {
    let tries_left = fake.tries_left.map(|left| left.saturating_sub(1));
    fake.tries_left = tries_left;
    let lock = tries_left
        .filter(|left| *left == 0)
        .map(|_| DCS_LOCK_MINUTES);
    ProviderError::new(
        ErrorClass::Lockout {
            retry_times_left: tries_left,
            lock_time_left_minutes: lock,
        },
        ErrorKind::PasswordLockout,
        Service::Dcs,
        "UpdatePassword",
        "password verification failed",
        &[],
    )
}

#[async_trait]
impl Session for FakeSession {
    fn access_key_id(&self) -> &str {
        &self.access_key
    }

    async fn verify(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn read_target(
        &self,
        target: &Target,
        username: &str,
    ) -> Result<TargetState, ProviderError> {
        let key = target_key(target, username);
        if let Some(fault) = self.cloud.call(Op::ReadTarget, format!("ReadTarget {key}")) {
            return Err(fault.error);
        }
        let state = self.cloud.state();
        let fake = state.targets.get(&key).ok_or_else(|| missing(&key))?;
        Ok(TargetState {
            status: fake.status.clone(),
            description: fake.description.clone(),
        })
    }

    async fn change_target(
        &self,
        target: &Target,
        username: &str,
        method: ChangeMethod,
        old_password: Option<&str>,
        new_password: &str,
    ) -> Result<Option<String>, ProviderError> {
        let key = target_key(target, username);
        let fault = self
            .cloud
            .call(Op::ChangeTarget, format!("ChangeTarget:{method:?} {key}"));
        let mut state = self.cloud.state();
        let fake = state.targets.get_mut(&key).ok_or_else(|| missing(&key))?;
        match fault {
            Some(Fault {
                error,
                applied: true,
            }) => {
                fake.password = new_password.to_owned();
                Err(error)
            }
            Some(fault) => Err(fault.error),
            None => {
                if method == ChangeMethod::DcsUpdate
                    && (old_password != Some(&fake.password) || fake.tries_left == Some(0))
                {
                    return Err(wrong_old_password(fake));
                }
                fake.password = new_password.to_owned();
                Ok(Some(format!("req-{}", state.calls.len())))
            }
        }
    }

    async fn write_description(
        &self,
        target: &Target,
        username: &str,
        description: &str,
    ) -> Result<(), ProviderError> {
        let key = target_key(target, username);
        if let Some(fault) = self
            .cloud
            .call(Op::WriteDescription, format!("WriteDescription {key}"))
        {
            return Err(fault.error);
        }
        let mut state = self.cloud.state();
        let fake = state.targets.get_mut(&key).ok_or_else(|| missing(&key))?;
        fake.description = description.to_owned();
        Ok(())
    }

    async fn describe_jobs(
        &self,
        dependents: &[&Dependent],
    ) -> Vec<Result<JobState, ProviderError>> {
        let mut out = Vec::new();
        for dependent in dependents {
            let key = dependent.resource_id();
            if let Some(fault) = self
                .cloud
                .call(Op::DescribeJob, format!("DescribeJob {key}"))
            {
                out.push(Err(fault.error));
                continue;
            }
            let state = self.cloud.state();
            out.push(
                state
                    .jobs
                    .get(&key)
                    .map(|job| JobState {
                        status: job.status.clone(),
                        accepts_password_change: job.accepts,
                    })
                    .ok_or_else(|| missing(&key)),
            );
        }
        out
    }

    async fn update_jobs(
        &self,
        dependents: &[&Dependent],
        password: &str,
    ) -> Vec<Result<Option<String>, ProviderError>> {
        let mut out = Vec::new();
        for dependent in dependents {
            let key = dependent.resource_id();
            let fault = self.cloud.call(Op::UpdateJob, format!("UpdateJob {key}"));
            let mut state = self.cloud.state();
            let Some(job) = state.jobs.get_mut(&key) else {
                out.push(Err(missing(&key)));
                continue;
            };
            out.push(match fault {
                Some(Fault {
                    error,
                    applied: true,
                }) => {
                    job.password = password.to_owned();
                    Err(error)
                }
                Some(fault) => Err(fault.error),
                // ModifyDtsJobPassword refuses the password the job holds.
                None if matches!(dependent, Dependent::Dts { .. }) && job.password == password => {
                    Err(ProviderError::new(
                        ErrorClass::Permanent,
                        ErrorKind::PasswordRefused,
                        Service::Dts,
                        "ModifyDtsJobPassword",
                        "the Password parameter is invalid",
                        &[],
                    ))
                }
                None => {
                    job.password = password.to_owned();
                    Ok(None)
                }
            });
        }
        out
    }

    async fn list_access_keys(&self, user: &str) -> Result<Vec<String>, ProviderError> {
        if let Some(fault) = self
            .cloud
            .call(Op::ListAccessKeys, format!("ListAccessKeys {user}"))
        {
            return Err(fault.error);
        }
        Ok(vec![self.access_key.clone()])
    }

    async fn create_access_key(&self, _: &str) -> Result<(String, String), ProviderError> {
        Err(missing("access key rotation in the fake"))
    }

    async fn delete_access_key(&self, _: &str, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// Jobs sorted by id, for assertions.
pub fn passwords(cloud: &FakeCloud) -> BTreeMap<String, String> {
    let state = cloud.state();
    state
        .targets
        .iter()
        .map(|(k, t)| (k.clone(), t.password.clone()))
        .chain(
            state
                .jobs
                .iter()
                .map(|(k, j)| (k.clone(), j.password.clone())),
        )
        .collect()
}
