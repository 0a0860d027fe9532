//! A scripted [`Cloud`] for tests: targets and jobs held in memory, every
//! call logged, and errors served from a script (per operation, in order;
//! `applied` errors change the state before failing, like an answer lost
//! after the provider acted). A DCS target can count wrong old passwords
//! as DCS does, DTS refuses the password its job already holds, a DCS ACL
//! account stays `UPDATING` for a scripted number of reads after a reset,
//! and a simulated crash stops every effect after a given number of steps.
//!
//! Per-lease accounts live beside the roles' accounts (same keys): created
//! `Creating` and deleted `Deleting` for a scripted number of reads, spelled
//! as each cloud spells its statuses; grants only on an available account
//! and one call per database, as the real session sends them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::providers::{ErrorClass, ErrorKind, ProviderError, Service};

use super::super::connection::Connection;
use super::super::role::{Dependent, Target};
use super::{
    AccountInfo, AccountKind, ChangeMethod, Cloud, JobState, NewAccount, Session, TargetState,
};

/// The operations a script can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    ReadTarget,
    ChangeTarget,
    WriteDescription,
    DescribeJob,
    UpdateJob,
    /// Fails every account of one `describe_accounts` call (DCS lists
    /// them in one call).
    DescribeAccounts,
    ListAccessKeys,
    CreateAccount,
    /// One database's grant.
    GrantAccount,
    AccountStatus,
    DeleteAccount,
    ListAccounts,
    ListDatabases,
}

#[derive(Debug, Clone, Default)]
pub struct FakeTarget {
    pub status: Option<String>,
    pub description: String,
    pub password: String,
    /// DCS: wrong old passwords left before the instance locks, counted
    /// and reported as DCS does; `None` answers DCS.4080 (no count).
    pub tries_left: Option<u32>,
    /// Accounts: what `describe_accounts` reports as `kind` and
    /// `privileges` (in any order).
    pub kind: Option<String>,
    pub privileges: Vec<(String, String)>,
    /// DCS ACL accounts: how many reads after a reset still find the
    /// account `UPDATING`.
    pub settle_reads: u32,
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
    /// PolarDB clusters by id, with their databases. A cluster missing here
    /// is missing only to `list_databases`: accounts need no cluster.
    clusters: HashMap<String, Vec<String>>,
    jobs: HashMap<String, FakeJob>,
    faults: HashMap<Op, VecDeque<Fault>>,
    /// ACL accounts reset and not settled yet: the reads left that find
    /// them `UPDATING`.
    updating_reads: HashMap<String, u32>,
    /// Per-lease accounts being created or deleted: the reads left that
    /// still find them `Creating` / `Deleting`.
    task_reads: HashMap<String, u32>,
    /// What `task_reads` starts from for each new create or delete.
    account_task_reads: u32,
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

/// A PolarDB account is its role's target; a DCS ACL account sits beside
/// its instance, whose key ignores the username.
fn account_key(target: &Target, username: &str) -> String {
    match target {
        Target::DcsInstance { .. } => format!("{}/acl/{username}", target_key(target, username)),
        _ => target_key(target, username),
    }
}

fn target_state(fake: &FakeTarget) -> TargetState {
    TargetState {
        status: fake.status.clone(),
        description: fake.description.clone(),
        account_status: None,
    }
}

/// A per-lease account's status as the target's cloud spells it.
fn spelled(target: &Target, status: &str) -> String {
    match target {
        Target::DcsInstance { .. } => status.to_ascii_uppercase(),
        _ => status.to_owned(),
    }
}

/// The keys of the accounts of `target`'s cluster or instance start so.
fn accounts_prefix(target: &Target) -> String {
    match target {
        Target::DcsInstance { .. } => format!("{}/acl/", target_key(target, "")),
        _ => target_key(target, ""),
    }
}

impl State {
    /// One read of account `key`: a finished task's status is settled
    /// (`Creating` becomes available, `Deleting` gone), a running one
    /// counts down. Whether the account exists after the read.
    fn settle(&mut self, target: &Target, key: &str) -> bool {
        let Some(left) = self.task_reads.get_mut(key) else {
            return self.targets.contains_key(key);
        };
        if *left > 0 {
            *left -= 1;
            return true;
        }
        self.task_reads.remove(key);
        let deleting = spelled(target, "Deleting");
        match self.targets.get_mut(key) {
            Some(account) if account.status.as_deref() == Some(deleting.as_str()) => {
                self.targets.remove(key);
                false
            }
            Some(account) => {
                account.status = Some(spelled(target, "Available"));
                true
            }
            None => false,
        }
    }

    /// Account `key` as the providers list it, named `name`.
    fn info(&self, key: &str, name: &str) -> Option<AccountInfo> {
        let fake = self.targets.get(key)?;
        Some(AccountInfo::new(
            name.to_owned(),
            fake.status.clone(),
            fake.kind.clone(),
            fake.privileges.clone(),
        ))
    }
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

    /// Adds (or replaces) account `username` of `target`: for PolarDB the
    /// same entry as `add_target`, for DCS an ACL account.
    pub fn add_account(&self, target: &Target, username: &str, fake: FakeTarget) {
        self.state()
            .targets
            .insert(account_key(target, username), fake);
    }

    /// Adds (or replaces) the cluster of a PolarDB `target` and its
    /// databases.
    pub fn add_cluster(&self, target: &Target, databases: &[&str]) {
        if let Target::PolardbAccount { cluster_id, .. } = target {
            let databases = databases.iter().map(|d| (*d).to_owned()).collect();
            self.state().clusters.insert(cluster_id.clone(), databases);
        }
    }

    pub fn account(&self, target: &Target, username: &str) -> Option<FakeTarget> {
        self.state()
            .targets
            .get(&account_key(target, username))
            .cloned()
    }

    /// Accounts created or deleted from now on stay `Creating` /
    /// `Deleting` for `reads` reads (`account_status` and `list_accounts`
    /// each read every account they report); 0 (the default): settled at
    /// the first read.
    pub fn account_task_reads(&self, reads: u32) {
        self.state().account_task_reads = reads;
    }

    /// The names of every account of `target`'s cluster or instance,
    /// sorted, without reading (no call, no step, no settling).
    pub fn account_names(&self, target: &Target) -> Vec<String> {
        let prefix = accounts_prefix(target);
        let mut names: Vec<String> = self
            .state()
            .targets
            .keys()
            .filter_map(|key| key.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        names.sort();
        names
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

    /// A call that changes something: `Err` for a scripted error that
    /// stops the change, `Ok(Some)` for one to answer after making it.
    fn call_applying(
        &self,
        op: Op,
        detail: String,
    ) -> Result<Option<ProviderError>, ProviderError> {
        match self.call(op, detail) {
            Some(Fault {
                error,
                applied: false,
            }) => Err(error),
            Some(fault) => Ok(Some(fault.error)),
            None => Ok(None),
        }
    }

    /// A call that changes nothing: its scripted error, if any.
    fn answer(&self, op: Op, detail: String) -> Result<(), ProviderError> {
        self.call(op, detail)
            .map_or(Ok(()), |fault| Err(fault.error))
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

/// A cluster or instance the cloud does not know, answered with its
/// provider's code (PolarDB `InvalidDBClusterId.NotFound`, DCS `DCS.3022`).
fn missing_place(target: &Target, action: &str) -> ProviderError {
    let (service, code) = match target {
        Target::DcsInstance { .. } => (Service::Dcs, "DCS.3022"),
        _ => (Service::Polardb, "InvalidDBClusterId.NotFound"),
    };
    let place = target_key(target, "");
    ProviderError::new(
        ErrorClass::Permanent,
        ErrorKind::NotFound,
        service,
        action,
        &format!("{place} does not exist"),
        &[],
    )
    .with_code(Some(code.to_owned()))
}

/// The provider refuses a change to an account whose task is running (or,
/// for a grant, an account not available yet).
fn not_available(target: &Target, action: &str, status: Option<&str>) -> ProviderError {
    ProviderError::new(
        ErrorClass::Permanent,
        ErrorKind::InvalidState,
        service(target),
        action,
        &format!("the account is {}", status.unwrap_or("unknown")),
        &[],
    )
}

fn service(target: &Target) -> Service {
    match target {
        Target::DcsInstance { .. } => Service::Dcs,
        _ => Service::Polardb,
    }
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
        self.cloud
            .answer(Op::ReadTarget, format!("ReadTarget {key}"))?;
        let state = self.cloud.state();
        let fake = state.targets.get(&key).ok_or_else(|| missing(&key))?;
        Ok(target_state(fake))
    }

    async fn read_account(
        &self,
        target: &Target,
        username: &str,
    ) -> Result<TargetState, ProviderError> {
        let key = account_key(target, username);
        self.cloud
            .answer(Op::ReadTarget, format!("ReadAccount {key}"))?;
        let mut state = self.cloud.state();
        let target_key = target_key(target, username);
        let fake = state
            .targets
            .get(&target_key)
            .ok_or_else(|| missing(&target_key))?;
        let mut read = target_state(fake);
        if matches!(target, Target::DcsInstance { .. }) {
            let account = state.targets.get(&key).ok_or_else(|| missing(&key))?;
            read.account_status = account.status.clone();
            if let Some(left) = state.updating_reads.get_mut(&key).filter(|left| **left > 0) {
                *left -= 1;
                read.account_status = Some("UPDATING".into());
            }
        }
        Ok(read)
    }

    async fn describe_accounts(
        &self,
        target: &Target,
        usernames: &[&str],
    ) -> Vec<Result<AccountInfo, ProviderError>> {
        let keys: Vec<String> = usernames
            .iter()
            .map(|name| account_key(target, name))
            .collect();
        let fault = self.cloud.call(
            Op::DescribeAccounts,
            format!("DescribeAccounts {}", keys.join(",")),
        );
        let state = self.cloud.state();
        usernames
            .iter()
            .zip(&keys)
            .map(|(name, key)| {
                if let Some(fault) = &fault {
                    return Err(fault.error.clone());
                }
                state.info(key, name).ok_or_else(|| missing(key))
            })
            .collect()
    }

    async fn change_target(
        &self,
        target: &Target,
        username: &str,
        method: ChangeMethod,
        old_password: Option<&str>,
        new_password: &str,
    ) -> Result<Option<String>, ProviderError> {
        let key = if method == ChangeMethod::AclReset {
            account_key(target, username)
        } else {
            target_key(target, username)
        };
        let fault = self
            .cloud
            .call(Op::ChangeTarget, format!("ChangeTarget:{method:?} {key}"));
        let mut state = self.cloud.state();
        let calls = state.calls.len();
        let fake = state.targets.get_mut(&key).ok_or_else(|| missing(&key))?;
        let answer = match fault {
            Some(Fault {
                error,
                applied: true,
            }) => {
                fake.password = new_password.to_owned();
                Err(error)
            }
            Some(fault) => return Err(fault.error),
            None => {
                if method == ChangeMethod::DcsUpdate
                    && (old_password != Some(&fake.password) || fake.tries_left == Some(0))
                {
                    return Err(wrong_old_password(fake));
                }
                fake.password = new_password.to_owned();
                Ok(Some(format!("req-{calls}")))
            }
        };
        if method == ChangeMethod::AclReset {
            let settle_reads = fake.settle_reads;
            state.updating_reads.insert(key, settle_reads);
        }
        answer
    }

    async fn write_description(
        &self,
        target: &Target,
        username: &str,
        description: &str,
    ) -> Result<(), ProviderError> {
        let key = target_key(target, username);
        self.cloud
            .answer(Op::WriteDescription, format!("WriteDescription {key}"))?;
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

    async fn create_account(
        &self,
        target: &Target,
        account: &NewAccount,
    ) -> Result<Option<String>, ProviderError> {
        let key = account_key(target, &account.name);
        // Checked before any call, as the real session does.
        let (kind, privileges) = match (target, account.kind) {
            (Target::PolardbAccount { .. }, AccountKind::PolardbNormal) => ("Normal", Vec::new()),
            (Target::DcsInstance { .. }, AccountKind::DcsAcl(role))
                if account.grants.is_empty() =>
            {
                ("normal", vec![("*".to_owned(), role.as_str().to_owned())])
            }
            _ => {
                return Err(ProviderError::config(
                    service(target),
                    "CreateAccount",
                    "the account kind does not fit the target",
                ));
            }
        };
        let applied = self
            .cloud
            .call_applying(Op::CreateAccount, format!("CreateAccount {key}"))?;
        let mut state = self.cloud.state();
        if state.targets.contains_key(&key) {
            return Err(ProviderError::new(
                ErrorClass::Permanent,
                ErrorKind::InvalidParameter,
                service(target),
                "CreateAccount",
                &format!("account {} already exists", account.name),
                &[],
            ));
        }
        let created = FakeTarget {
            status: Some(spelled(target, "Creating")),
            description: account.description.clone().unwrap_or_default(),
            password: account.password.expose().to_owned(),
            kind: Some(kind.to_owned()),
            privileges,
            ..FakeTarget::default()
        };
        state.targets.insert(key.clone(), created);
        let reads = state.account_task_reads;
        state.task_reads.insert(key, reads);
        match applied {
            Some(error) => Err(error),
            None => Ok(Some(format!("req-{}", state.calls.len()))),
        }
    }

    /// One call per database, each its own step, as the real session does.
    async fn grant_account(
        &self,
        target: &Target,
        name: &str,
        grants: &[(String, String)],
    ) -> Result<(), ProviderError> {
        let key = account_key(target, name);
        if matches!(target, Target::DcsInstance { .. }) && !grants.is_empty() {
            return Err(ProviderError::config(
                Service::Dcs,
                "GrantAccount",
                "a DCS ACL account takes no grants",
            ));
        }
        for (database, privilege) in grants {
            let applied = self.cloud.call_applying(
                Op::GrantAccount,
                format!("GrantAccount {key} {database}:{privilege}"),
            )?;
            let mut state = self.cloud.state();
            let account = state.targets.get_mut(&key).ok_or_else(|| missing(&key))?;
            let available = spelled(target, "Available");
            if account.status.as_deref() != Some(available.as_str()) {
                return Err(not_available(
                    target,
                    "GrantAccount",
                    account.status.as_deref(),
                ));
            }
            account.privileges.retain(|(db, _)| db != database);
            account
                .privileges
                .push((database.clone(), privilege.clone()));
            if let Some(error) = applied {
                return Err(error);
            }
        }
        Ok(())
    }

    async fn account_status(
        &self,
        target: &Target,
        name: &str,
    ) -> Result<Option<AccountInfo>, ProviderError> {
        let key = account_key(target, name);
        self.cloud
            .answer(Op::AccountStatus, format!("AccountStatus {key}"))?;
        let mut state = self.cloud.state();
        if !state.settle(target, &key) {
            return Ok(None);
        }
        Ok(state.info(&key, name))
    }

    async fn delete_account(&self, target: &Target, name: &str) -> Result<(), ProviderError> {
        let key = account_key(target, name);
        let applied = self
            .cloud
            .call_applying(Op::DeleteAccount, format!("DeleteAccount {key}"))?;
        let mut state = self.cloud.state();
        let (deleting, available) = (spelled(target, "Deleting"), spelled(target, "Available"));
        match state.targets.get_mut(&key) {
            // Already gone, or going.
            None => {}
            Some(account) if account.status.as_deref() == Some(deleting.as_str()) => {}
            Some(account)
                if account.status.is_some()
                    && account.status.as_deref() != Some(available.as_str()) =>
            {
                return Err(not_available(
                    target,
                    "DeleteAccount",
                    account.status.as_deref(),
                ));
            }
            Some(account) => {
                account.status = Some(deleting);
                let reads = state.account_task_reads;
                state.task_reads.insert(key, reads);
            }
        }
        applied.map_or(Ok(()), Err)
    }

    async fn list_accounts(&self, target: &Target) -> Result<Vec<AccountInfo>, ProviderError> {
        let prefix = accounts_prefix(target);
        self.cloud
            .answer(Op::ListAccounts, format!("ListAccounts {prefix}"))?;
        let mut state = self.cloud.state();
        // DCS lists an instance's ACL accounts: no instance, no list.
        let instance = target_key(target, "");
        if matches!(target, Target::DcsInstance { .. }) && !state.targets.contains_key(&instance) {
            return Err(missing_place(target, "ListAclAccounts"));
        }
        let mut keys: Vec<String> = state
            .targets
            .keys()
            .filter(|key| key.starts_with(&prefix))
            .cloned()
            .collect();
        keys.sort();
        let mut out = Vec::new();
        for key in keys {
            if state.settle(target, &key) {
                out.extend(state.info(&key, &key[prefix.len()..]));
            }
        }
        Ok(out)
    }

    async fn list_databases(&self, target: &Target) -> Result<Vec<String>, ProviderError> {
        let Target::PolardbAccount { cluster_id, .. } = target else {
            return Err(ProviderError::config(
                service(target),
                "DescribeDatabases",
                "only a PolarDB cluster has databases",
            ));
        };
        self.cloud
            .answer(Op::ListDatabases, format!("ListDatabases {cluster_id}"))?;
        self.cloud
            .state()
            .clusters
            .get(cluster_id)
            .cloned()
            .ok_or_else(|| missing_place(target, "DescribeDatabases"))
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

/// `(database, privilege)` pairs as [`NewAccount::grants`] holds them.
pub fn grants(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(db, privilege)| ((*db).to_owned(), (*privilege).to_owned()))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::super::super::connection::Provider;
    use super::*;

    fn dcs() -> Target {
        Target::DcsInstance {
            connection: "hw".into(),
            instance_id: "dcs-1".into(),
        }
    }

    fn session(cloud: &FakeCloud) -> Arc<dyn Session> {
        cloud.open(&Connection::new(Provider::Huaweicloud)).unwrap()
    }

    fn acl(status: &str, role: &str, settle_reads: u32) -> FakeTarget {
        FakeTarget {
            status: Some(status.into()),
            password: "Old-Secret-1".into(),
            kind: Some("normal".into()),
            privileges: vec![("*".into(), role.into())],
            settle_reads,
            ..FakeTarget::default()
        }
    }

    /// A DCS instance with ACL accounts a (settles after two reads) and b.
    fn instance() -> (FakeCloud, Arc<dyn Session>) {
        let cloud = FakeCloud::default();
        let running = FakeTarget {
            status: Some("RUNNING".into()),
            description: "cache".into(),
            ..FakeTarget::default()
        };
        cloud.add_target(&dcs(), "", running);
        cloud.add_account(&dcs(), "a", acl("AVAILABLE", "write", 2));
        cloud.add_account(&dcs(), "b", acl("AVAILABLE", "read", 0));
        let session = session(&cloud);
        (cloud, session)
    }

    #[tokio::test]
    async fn an_acl_reset_changes_one_account_and_settles_after_the_scripted_reads() {
        let (cloud, session) = instance();
        let reset = session
            .change_target(&dcs(), "a", ChangeMethod::AclReset, None, "New-Secret-1")
            .await;
        assert!(reset.is_ok());
        assert_eq!(cloud.account(&dcs(), "a").unwrap().password, "New-Secret-1");
        assert_eq!(cloud.account(&dcs(), "b").unwrap().password, "Old-Secret-1");
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let read = session.read_account(&dcs(), "a").await.unwrap();
            assert_eq!(read.description, "cache", "the instance's marker");
            statuses.extend(read.account_status);
        }
        assert_eq!(statuses, ["UPDATING", "UPDATING", "AVAILABLE"]);
        assert_eq!(
            cloud.calls()[0],
            "ChangeTarget:AclReset dcs:dcs-1/acl/a",
            "the account, not the instance, is changed"
        );
    }

    #[tokio::test]
    async fn a_lost_reset_answer_still_leaves_the_account_updating() {
        let (cloud, session) = instance();
        let lost = ProviderError::new(
            ErrorClass::OutcomeUnknown,
            ErrorKind::Timeout,
            Service::Dcs,
            "ResetAclAccountPassWord",
            "timed out",
            &[],
        );
        cloud.fail(Op::ChangeTarget, lost, true);
        let reset = session
            .change_target(&dcs(), "a", ChangeMethod::AclReset, None, "New-Secret-1")
            .await;
        assert!(reset.is_err());
        let read = session.read_account(&dcs(), "a").await.unwrap();
        assert_eq!(read.account_status.as_deref(), Some("UPDATING"));
    }

    #[tokio::test]
    async fn accounts_are_described_in_order_with_sorted_privileges() {
        let (cloud, session) = instance();
        let polardb = Target::PolardbAccount {
            connection: "ali".into(),
            cluster_id: "pc-1".into(),
        };
        let grants = FakeTarget {
            kind: Some("Normal".into()),
            privileges: vec![
                ("zdb".into(), "ReadOnly".into()),
                ("appdb".into(), "ReadWrite".into()),
            ],
            ..FakeTarget::default()
        };
        cloud.add_account(&polardb, "app_blue", grants);
        let found = session
            .describe_accounts(&polardb, &["app_blue", "app_green"])
            .await;
        let blue = found[0].as_ref().unwrap();
        assert_eq!(blue.privileges[0], ("appdb".into(), "ReadWrite".into()));
        assert_eq!(found[1].as_ref().unwrap_err().kind, ErrorKind::NotFound);
        let acl = session.describe_accounts(&dcs(), &["b", "a"]).await;
        let roles: Vec<&str> = acl
            .iter()
            .map(|info| info.as_ref().unwrap().privileges[0].1.as_str())
            .collect();
        assert_eq!(roles, ["read", "write"]);
    }

    #[tokio::test]
    async fn a_describe_fault_fails_every_account_of_the_call() {
        let (cloud, session) = instance();
        let no_acl = ProviderError::new(
            ErrorClass::Permanent,
            ErrorKind::InvalidParameter,
            Service::Dcs,
            "ListAclAccounts",
            "DCS.4008",
            &[],
        );
        cloud.fail(Op::DescribeAccounts, no_acl, false);
        let found = session.describe_accounts(&dcs(), &["a", "b"]).await;
        assert!(
            found
                .iter()
                .all(|info| info.as_ref().is_err_and(|e| e.action == "ListAclAccounts"))
        );
        assert!(session.describe_accounts(&dcs(), &["a"]).await[0].is_ok());
    }

    fn cluster() -> Target {
        Target::PolardbAccount {
            connection: "ali".into(),
            cluster_id: "pc-1".into(),
        }
    }

    fn lease(name: &str, kind: AccountKind) -> NewAccount {
        NewAccount {
            name: name.into(),
            password: "Lease-Secret-1".into(),
            kind,
            grants: Vec::new(),
            description: Some("lease of role app".into()),
        }
    }

    fn status(info: Option<AccountInfo>) -> Option<String> {
        info.and_then(|info| info.status)
    }

    fn throttled(service: Service) -> ProviderError {
        ProviderError::new(
            ErrorClass::Retryable,
            ErrorKind::Throttled,
            service,
            "fake",
            "slow down",
            &[],
        )
    }

    #[tokio::test]
    async fn a_lease_account_is_creating_for_the_scripted_reads_then_takes_grants_per_database() {
        let cloud = FakeCloud::default();
        let session = session(&cloud);
        cloud.account_task_reads(1);
        let created = session
            .create_account(&cluster(), &lease("v_app_1", AccountKind::PolardbNormal))
            .await
            .unwrap();
        assert!(created.is_some(), "a request id");
        let early = session
            .grant_account(&cluster(), "v_app_1", &grants(&[("appdb", "ReadWrite")]))
            .await
            .unwrap_err();
        assert_eq!(early.kind, ErrorKind::InvalidState, "not before Available");
        let first = session.account_status(&cluster(), "v_app_1").await.unwrap();
        assert_eq!(status(first).as_deref(), Some("Creating"));
        let second = session.account_status(&cluster(), "v_app_1").await.unwrap();
        assert_eq!(status(second).as_deref(), Some("Available"));
        let wanted = grants(&[("zdb", "ReadOnly"), ("appdb", "ReadWrite")]);
        session
            .grant_account(&cluster(), "v_app_1", &wanted)
            .await
            .unwrap();
        let info = session
            .account_status(&cluster(), "v_app_1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.kind.as_deref(), Some("Normal"));
        assert_eq!(
            info.privileges,
            grants(&[("appdb", "ReadWrite"), ("zdb", "ReadOnly")])
        );
        let grant_calls: Vec<String> = cloud
            .calls()
            .into_iter()
            .filter(|call| call.starts_with("GrantAccount"))
            .collect();
        assert_eq!(
            grant_calls,
            [
                "GrantAccount polardb:pc-1/v_app_1 appdb:ReadWrite",
                "GrantAccount polardb:pc-1/v_app_1 zdb:ReadOnly",
                "GrantAccount polardb:pc-1/v_app_1 appdb:ReadWrite",
            ],
            "one call per database"
        );
        let duplicate = session
            .create_account(&cluster(), &lease("v_app_1", AccountKind::PolardbNormal))
            .await
            .unwrap_err();
        assert_eq!(duplicate.kind, ErrorKind::InvalidParameter);
    }

    #[tokio::test]
    async fn deleting_twice_is_ok_and_a_deleted_account_goes_after_the_scripted_reads() {
        let cloud = FakeCloud::default();
        let session = session(&cloud);
        cloud.account_task_reads(1);
        let account = lease("v_app_2", AccountKind::PolardbNormal);
        session.create_account(&cluster(), &account).await.unwrap();
        let creating = session
            .delete_account(&cluster(), "v_app_2")
            .await
            .unwrap_err();
        assert_eq!(
            creating.kind,
            ErrorKind::InvalidState,
            "refused while Creating"
        );
        session.account_status(&cluster(), "v_app_2").await.unwrap();
        session.account_status(&cluster(), "v_app_2").await.unwrap();
        session.delete_account(&cluster(), "v_app_2").await.unwrap();
        session.delete_account(&cluster(), "v_app_2").await.unwrap();
        let listed = session.list_accounts(&cluster()).await.unwrap();
        assert_eq!(
            status(listed.into_iter().next()).as_deref(),
            Some("Deleting")
        );
        assert_eq!(
            session.account_status(&cluster(), "v_app_2").await.unwrap(),
            None
        );
        assert!(cloud.account_names(&cluster()).is_empty());
        session.delete_account(&cluster(), "v_app_2").await.unwrap();
        session
            .delete_account(&cluster(), "never_created")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn lists_hold_every_account_of_the_cluster_or_instance_and_nothing_else() {
        let (cloud, session) = instance();
        cloud.add_account(&cluster(), "app", FakeTarget::default());
        let other = Target::PolardbAccount {
            connection: "ali".into(),
            cluster_id: "pc-2".into(),
        };
        cloud.add_account(&other, "app", FakeTarget::default());
        session
            .create_account(&cluster(), &lease("v_app_3", AccountKind::PolardbNormal))
            .await
            .unwrap();
        let names = |list: Vec<AccountInfo>| -> Vec<String> {
            list.into_iter().map(|info| info.name).collect()
        };
        let polardb = session.list_accounts(&cluster()).await.unwrap();
        assert_eq!(names(polardb), ["app", "v_app_3"]);
        let acl = session.list_accounts(&dcs()).await.unwrap();
        assert_eq!(names(acl), ["a", "b"], "the ACL accounts, not the instance");
        assert_eq!(cloud.account_names(&dcs()), ["a", "b"]);
    }

    #[tokio::test]
    async fn a_cluster_lists_its_databases_and_a_missing_place_has_its_providers_code() {
        let (cloud, session) = instance();
        cloud.add_cluster(&cluster(), &["appdb", "logs"]);
        assert_eq!(
            session.list_databases(&cluster()).await.unwrap(),
            ["appdb", "logs"]
        );
        let other = Target::PolardbAccount {
            connection: "ali".into(),
            cluster_id: "pc-2".into(),
        };
        let gone = session.list_databases(&other).await.unwrap_err();
        assert_eq!(gone.kind, ErrorKind::NotFound);
        assert_eq!(gone.code.as_deref(), Some("InvalidDBClusterId.NotFound"));
        assert_eq!(
            session.list_databases(&dcs()).await.unwrap_err().kind,
            ErrorKind::Config
        );
        let no_instance = Target::DcsInstance {
            connection: "hw".into(),
            instance_id: "dcs-2".into(),
        };
        let gone = session.list_accounts(&no_instance).await.unwrap_err();
        assert_eq!(gone.code.as_deref(), Some("DCS.3022"));
        cloud.fail(Op::ListDatabases, throttled(Service::Polardb), false);
        assert!(
            session
                .list_databases(&cluster())
                .await
                .unwrap_err()
                .is_retryable()
        );
    }

    #[tokio::test]
    async fn dcs_acl_accounts_carry_their_role_and_take_no_grants() {
        let (cloud, session) = instance();
        cloud.account_task_reads(1);
        let reader = lease(
            "v_cache_1",
            AccountKind::DcsAcl(super::super::AclRole::Read),
        );
        session.create_account(&dcs(), &reader).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..2 {
            let info = session.account_status(&dcs(), "v_cache_1").await.unwrap();
            seen.extend(status(info));
        }
        assert_eq!(seen, ["CREATING", "AVAILABLE"]);
        let info = session
            .account_status(&dcs(), "v_cache_1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.privileges, grants(&[("*", "read")]));
        assert_eq!(
            cloud.account(&dcs(), "v_cache_1").unwrap().password,
            "Lease-Secret-1"
        );
        session
            .grant_account(&dcs(), "v_cache_1", &[])
            .await
            .unwrap();
        let calls = cloud.calls().len();
        assert!(
            session
                .grant_account(&dcs(), "v_cache_1", &grants(&[("db", "ReadOnly")]))
                .await
                .is_err()
        );
        let polardb_kind = lease("v_cache_2", AccountKind::PolardbNormal);
        let refused = session
            .create_account(&dcs(), &polardb_kind)
            .await
            .unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Config);
        assert_eq!(cloud.calls().len(), calls, "refused before any call");
        assert!(cloud.account(&dcs(), "v_cache_2").is_none());
        session.delete_account(&dcs(), "v_cache_1").await.unwrap();
        let deleting = session.account_status(&dcs(), "v_cache_1").await.unwrap();
        assert_eq!(status(deleting).as_deref(), Some("DELETING"));
    }

    #[tokio::test]
    async fn account_faults_keep_their_class_and_applied_ones_change_the_state() {
        let cloud = FakeCloud::default();
        let session = session(&cloud);
        let lost = ProviderError::new(
            ErrorClass::OutcomeUnknown,
            ErrorKind::Timeout,
            Service::Polardb,
            "CreateAccount",
            "timed out",
            &[],
        );
        cloud.fail(Op::CreateAccount, lost, true);
        cloud.fail(Op::CreateAccount, throttled(Service::Polardb), false);
        let first = lease("v_app_4", AccountKind::PolardbNormal);
        let error = session
            .create_account(&cluster(), &first)
            .await
            .unwrap_err();
        assert!(error.is_outcome_unknown());
        assert!(
            cloud.account(&cluster(), "v_app_4").is_some(),
            "created all the same"
        );
        let second = lease("v_app_5", AccountKind::PolardbNormal);
        let error = session
            .create_account(&cluster(), &second)
            .await
            .unwrap_err();
        assert!(error.is_retryable());
        assert!(cloud.account(&cluster(), "v_app_5").is_none());

        session.account_status(&cluster(), "v_app_4").await.unwrap();
        cloud.fail(Op::GrantAccount, throttled(Service::Polardb), false);
        let two = grants(&[("appdb", "ReadWrite"), ("zdb", "ReadOnly")]);
        assert!(
            session
                .grant_account(&cluster(), "v_app_4", &two)
                .await
                .is_err()
        );
        assert!(
            cloud
                .account(&cluster(), "v_app_4")
                .unwrap()
                .privileges
                .is_empty()
        );
        for op in [Op::AccountStatus, Op::ListAccounts, Op::DeleteAccount] {
            cloud.fail(op, throttled(Service::Polardb), false);
        }
        assert!(
            session
                .account_status(&cluster(), "v_app_4")
                .await
                .unwrap_err()
                .is_retryable()
        );
        assert!(
            session
                .list_accounts(&cluster())
                .await
                .unwrap_err()
                .is_retryable()
        );
        assert!(
            session
                .delete_account(&cluster(), "v_app_4")
                .await
                .unwrap_err()
                .is_retryable()
        );
        let kept = cloud.account(&cluster(), "v_app_4").unwrap();
        assert_eq!(
            kept.status.as_deref(),
            Some("Available"),
            "the failed delete changed nothing"
        );
    }

    #[tokio::test]
    async fn a_crash_between_grants_leaves_the_first_database_granted_only() {
        let cloud = FakeCloud::default();
        let session = session(&cloud);
        let account = lease("v_app_6", AccountKind::PolardbNormal);
        session.create_account(&cluster(), &account).await.unwrap();
        session.account_status(&cluster(), "v_app_6").await.unwrap();
        cloud.crash_after(Some(1));
        let two = grants(&[("appdb", "ReadWrite"), ("zdb", "ReadOnly")]);
        assert!(
            session
                .grant_account(&cluster(), "v_app_6", &two)
                .await
                .is_err()
        );
        assert!(cloud.crashed());
        let privileges = cloud.account(&cluster(), "v_app_6").unwrap().privileges;
        assert_eq!(privileges, grants(&[("appdb", "ReadWrite")]));
        assert!(session.delete_account(&cluster(), "v_app_6").await.is_err());
        assert!(
            cloud.account(&cluster(), "v_app_6").is_some(),
            "no effect after the crash"
        );
    }

    #[test]
    fn a_new_account_does_not_show_its_password() {
        let account = lease("v_app_7", AccountKind::PolardbNormal);
        assert!(!format!("{account:?}").contains("Lease-Secret"));
        assert_eq!("read".parse(), Ok(super::super::AclRole::Read));
        assert!("readonly".parse::<super::super::AclRole>().is_err());
    }
}
