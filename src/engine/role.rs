//! A role: the place a password lives (its target), the jobs that keep a
//! copy (its dependents), when it rotates, and its current state, including
//! the write-ahead record of a rotation in flight. One storage entry per
//! role, so every state change is one atomic write.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::providers::{ErrorClass, ProviderError};

use super::clock::rfc3339;
use super::marker::{self, DescriptionRule};
use super::password::{self, Rules};
use super::schedule::Schedule;

pub const STORAGE_PREFIX: &str = "role/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleKind {
    /// `static-roles/`: Vault owns the password and rotates it on schedule.
    Static,
    /// A service account of a library set (`library/`), stored as
    /// `<set>:<account>`: checked out under a lease, rotated at check-in.
    /// Earlier versions' leased roles load as this kind (and belong to no
    /// set).
    #[serde(alias = "leased")]
    Library,
}

impl RoleKind {
    pub fn path(self) -> &'static str {
        match self {
            Self::Static => "static-roles",
            Self::Library => "library",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Target {
    PolardbAccount {
        connection: String,
        cluster_id: String,
    },
    DcsInstance {
        connection: String,
        instance_id: String,
    },
    /// The password lives where the plugin cannot change it; Vault only
    /// propagates the password an operator gives to `rotate-role`.
    External,
}

/// What kind of place a role's password lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    PolardbAccount,
    DcsInstance,
    External,
}

impl TargetKind {
    pub const ALL: [TargetKind; 3] = [Self::PolardbAccount, Self::DcsInstance, Self::External];
    /// The names `target=` accepts, in the order of `ALL`.
    pub const NAMES: [&'static str; 3] = {
        let mut names = [""; 3];
        let mut at = 0;
        while at < Self::ALL.len() {
            names[at] = Self::ALL[at].as_str();
            at += 1;
        }
        names
    };

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PolardbAccount => "polardb-account",
            Self::DcsInstance => "dcs-instance",
            Self::External => "external",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TargetKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown target {name:?}; use one of {}",
                    Self::NAMES.join(", ")
                )
            })
    }
}

impl Target {
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::PolardbAccount { .. } => TargetKind::PolardbAccount,
            Self::DcsInstance { .. } => TargetKind::DcsInstance,
            Self::External => TargetKind::External,
        }
    }

    pub fn connection(&self) -> Option<&str> {
        match self {
            Self::PolardbAccount { connection, .. } | Self::DcsInstance { connection, .. } => {
                Some(connection)
            }
            Self::External => None,
        }
    }

    /// `(connection, cluster_id, instance_id)` as reads show them: empty
    /// where the target has none.
    pub fn fields(&self) -> (&str, &str, &str) {
        match self {
            Self::PolardbAccount {
                connection,
                cluster_id,
            } => (connection, cluster_id, ""),
            Self::DcsInstance {
                connection,
                instance_id,
            } => (connection, "", instance_id),
            Self::External => ("", "", ""),
        }
    }

    /// What the provider accepts as the description that carries the
    /// ownership marker; `None` where Vault cannot read or write one.
    pub fn description_rule(&self) -> Option<&'static DescriptionRule> {
        match self {
            Self::PolardbAccount { .. } => Some(&marker::POLARDB_DESCRIPTION),
            Self::DcsInstance { .. } => Some(&marker::DCS_DESCRIPTION),
            Self::External => None,
        }
    }

    pub fn rules(&self) -> Rules {
        match self {
            Self::PolardbAccount { .. } => password::POLARDB,
            Self::DcsInstance { .. } => password::DCS,
            Self::External => password::EXTERNAL,
        }
    }

    /// Identifies the real resource, whatever connection reaches it, so two
    /// roles can never own the same account.
    pub fn resource_id(&self, username: Option<&str>) -> Option<String> {
        match self {
            Self::PolardbAccount { cluster_id, .. } => Some(format!(
                "polardb:{cluster_id}/{}",
                username.unwrap_or_default()
            )),
            Self::DcsInstance { instance_id, .. } => Some(format!("dcs:{instance_id}")),
            Self::External => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DtsEndpoint {
    Src,
    Dest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrsEndpoint {
    So,
    Ta,
}

/// A job that keeps a copy of the role's password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Dependent {
    Dts {
        connection: String,
        job_id: String,
        endpoint: DtsEndpoint,
        username: String,
    },
    Drs {
        connection: String,
        job_id: String,
        endpoint: DrsEndpoint,
    },
}

impl Dependent {
    /// Parses `dts:<connection>/<job>/<src|dest>[/<username>]` or
    /// `drs:<connection>/<job>/<so|ta>`; `username` defaults to the role's.
    pub fn parse(spec: &str, role_username: Option<&str>) -> Result<Self, String> {
        let explain = || {
            format!(
                "invalid entry {spec:?} in dependents: use dts:<connection>/<dts_job_id>/<src|dest>[/<username>] or drs:<connection>/<job_id>/<so|ta>"
            )
        };
        let (kind, rest) = spec.trim().split_once(':').ok_or_else(explain)?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| {
            p.is_empty() || p.len() > 128 || p.chars().any(|c| c.is_whitespace() || c.is_control())
        }) {
            return Err(explain());
        }
        match (kind, parts.as_slice()) {
            ("dts", [connection, job, endpoint, rest @ ..]) if rest.len() <= 1 => {
                let endpoint = match *endpoint {
                    "src" => DtsEndpoint::Src,
                    "dest" => DtsEndpoint::Dest,
                    other => {
                        return Err(format!(
                            "invalid entry {spec:?} in dependents: DTS endpoint must be src or dest, got {other:?}"
                        ));
                    }
                };
                let username = rest.first().copied().or(role_username).ok_or_else(|| {
                    format!("dependent {spec:?} needs a username (append /<username>): this role has none to default to")
                })?;
                Ok(Self::Dts {
                    connection: connection.to_string(),
                    job_id: job.to_string(),
                    endpoint,
                    username: username.to_owned(),
                })
            }
            ("drs", [connection, job, endpoint]) => {
                let endpoint = match *endpoint {
                    "so" => DrsEndpoint::So,
                    "ta" => DrsEndpoint::Ta,
                    other => {
                        return Err(format!(
                            "invalid entry {spec:?} in dependents: DRS endpoint must be so or ta, got {other:?}"
                        ));
                    }
                };
                Ok(Self::Drs {
                    connection: connection.to_string(),
                    job_id: job.to_string(),
                    endpoint,
                })
            }
            _ => Err(explain()),
        }
    }

    pub fn connection(&self) -> &str {
        match self {
            Self::Dts { connection, .. } | Self::Drs { connection, .. } => connection,
        }
    }

    /// The job endpoint this copy lives in, whatever connection reaches it.
    pub fn resource_id(&self) -> String {
        match self {
            Self::Dts {
                job_id, endpoint, ..
            } => format!(
                "dts:{job_id}/{}",
                if *endpoint == DtsEndpoint::Src {
                    "src"
                } else {
                    "dest"
                }
            ),
            Self::Drs {
                job_id, endpoint, ..
            } => format!(
                "drs:{job_id}/{}",
                if *endpoint == DrsEndpoint::So {
                    "so"
                } else {
                    "ta"
                }
            ),
        }
    }
}

/// The canonical spec string, also the key of the dependent's state.
impl fmt::Display for Dependent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dts {
                connection,
                job_id,
                endpoint,
                username,
            } => {
                let endpoint = if *endpoint == DtsEndpoint::Src {
                    "src"
                } else {
                    "dest"
                };
                write!(f, "dts:{connection}/{job_id}/{endpoint}/{username}")
            }
            Self::Drs {
                connection,
                job_id,
                endpoint,
            } => {
                let endpoint = if *endpoint == DrsEndpoint::So {
                    "so"
                } else {
                    "ta"
                };
                write!(f, "drs:{connection}/{job_id}/{endpoint}")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Ok,
    Rotating,
    Deferred,
    PendingDependents,
    Failed,
    /// The target holds a password Vault did not set, or another mount
    /// claims it: automated rotation stops until a way out is taken.
    Drifted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Rotating => "rotating",
            Self::Deferred => "deferred",
            Self::PendingDependents => "pending_dependents",
            Self::Failed => "failed",
            Self::Drifted => "drifted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    Create,
    Schedule,
    Manual,
    LeaseEnd,
    /// A library check-in (`library/:name/check-in`, or `manage/`).
    CheckIn,
    Propagate,
    /// The password the target holds becomes current without changing it:
    /// `rotate-role password=...` on a PolarDB or DCS target, or creating a
    /// role with `password` and `skip_import_rotation`.
    Adopt,
    /// `rotate-role` on a drifted role: a new password set without the old
    /// one (DCS reset), taking the target back.
    Repair,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Schedule => "schedule",
            Self::Manual => "manual",
            Self::LeaseEnd => "lease-end",
            Self::CheckIn => "check-in",
            Self::Propagate => "propagate",
            Self::Adopt => "adopt",
            Self::Repair => "repair",
        }
    }

    /// Rotations that take the target whatever its marker says (creating
    /// a role checked the claim already).
    pub fn takes_the_target(self) -> bool {
        matches!(self, Self::Create | Self::Adopt | Self::Repair)
    }

    pub const ALL: [Trigger; 8] = [
        Self::Create,
        Self::Schedule,
        Self::Manual,
        Self::LeaseEnd,
        Self::CheckIn,
        Self::Propagate,
        Self::Adopt,
        Self::Repair,
    ];
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Trigger {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|trigger| trigger.as_str() == name)
            .ok_or_else(|| format!("unknown trigger {name:?}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Password generated and stored; no provider has been asked to change.
    Prepared,
    /// A change was sent but its outcome is unknown (timeout, lost
    /// response): the target holds the old or the new password.
    TargetUncertain,
    /// The target holds the new password; dependents are being updated.
    TargetApplied,
    /// DCS accepted an ACL account reset but the account is still
    /// `UPDATING`: a resumed run reads the account and never sends again.
    Settling,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prepared => "prepared",
            Self::TargetUncertain => "target_uncertain",
            Self::TargetApplied => "target_applied",
            Self::Settling => "settling",
        }
    }
}

/// The write-ahead record of a rotation in flight. It is stored before any
/// provider is called and holds everything needed to finish the rotation
/// after a crash, a timeout or an error, without generating another
/// password.
#[derive(Clone, Serialize, Deserialize)]
pub struct Rotation {
    pub id: String,
    pub trigger: Trigger,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub new_password: String,
    pub old_password: Option<String>,
    pub phase: Phase,
    /// Dual-account roles: the account this rotation changes (the one
    /// inactive when it started); `None` for single roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// DCS only: the old password may no longer be offered (it was refused,
    /// the outcome of a change is unknown, or too few attempts are left),
    /// so the change is made with reset.
    #[serde(default)]
    pub dcs_reset_only: bool,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub request_ids: Vec<String>,
    /// The ownership marker naming this rotation is on the target (or
    /// could not be written, which the role's `drift_check` says).
    #[serde(default)]
    pub marker_written: bool,
    /// What happened on the way an operator should know about (a DCS
    /// refusal of the old password), copied to history.
    #[serde(default)]
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependentStatus {
    #[default]
    InSync,
    Pending,
    Deferred,
    Failed,
}

impl DependentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InSync => "in_sync",
            Self::Pending => "pending",
            Self::Deferred => "deferred",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DependentState {
    pub status: DependentStatus,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

/// Why an attempt failed, as roles and history show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    Retryable,
    OutcomeUnknown,
    Permanent,
    /// DCS: a wrong old password brings the instance's lock closer.
    Lockout,
    /// The cloud rejected a connection's key: nothing more is sent.
    CredentialsRejected,
    /// The target or a job could not take the change yet.
    Deferred,
}

impl FailureClass {
    pub const ALL: [FailureClass; 6] = [
        Self::Retryable,
        Self::OutcomeUnknown,
        Self::Permanent,
        Self::Lockout,
        Self::CredentialsRejected,
        Self::Deferred,
    ];

    pub fn of(class: ErrorClass) -> Self {
        match class {
            ErrorClass::Retryable => Self::Retryable,
            ErrorClass::OutcomeUnknown => Self::OutcomeUnknown,
            ErrorClass::Permanent => Self::Permanent,
            ErrorClass::Lockout { .. } => Self::Lockout,
        }
    }

    /// The class's one name; the provider classes are spelled as
    /// `docs/provider-errors.md` spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retryable => "retryable",
            Self::OutcomeUnknown => "outcome unknown",
            Self::Permanent => "permanent",
            Self::Lockout => "lockout",
            Self::CredentialsRejected => "credentials rejected",
            Self::Deferred => "deferred",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FailureClass {
    type Err = String;

    /// Also reads what earlier versions stored: the provider class's
    /// display text, counts included ("lockout risk, 3 tries left").
    fn from_str(name: &str) -> Result<Self, String> {
        let name = name.split(',').next().unwrap_or_default();
        let name = if name == "lockout risk" {
            "lockout"
        } else {
            name
        };
        Self::ALL
            .into_iter()
            .find(|class| class.as_str() == name)
            .ok_or_else(|| format!("unknown failure class {name:?}"))
    }
}

impl Serialize for FailureClass {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FailureClass {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastError {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub class: FailureClass,
    pub message: String,
    /// DCS: attempts left before the instance locks, as it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tries_left: Option<u32>,
    /// DCS: minutes the instance stays locked, as it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_minutes: Option<u32>,
}

impl LastError {
    pub fn new(at: OffsetDateTime, error: &ProviderError) -> Self {
        let (tries_left, locked_minutes) = match error.class {
            ErrorClass::Lockout {
                retry_times_left,
                lock_time_left_minutes,
            } => (retry_times_left, lock_time_left_minutes),
            _ => (None, None),
        };
        Self {
            at,
            class: FailureClass::of(error.class),
            message: error.to_string(),
            tries_left,
            locked_minutes,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The marker names another mount, namespace or cluster.
    ClaimedElsewhere,
    /// The marker is this mount's but names a rotation this Vault does not
    /// know: its storage is older than the target (a snapshot restore).
    NewerPassword,
}

/// Why a role is `drifted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    #[serde(with = "time::serde::rfc3339")]
    pub found_at: OffsetDateTime,
    pub kind: DriftKind,
    pub detail: String,
}

impl Drift {
    /// The ways out, for a role with one account or (`dual`) two: a dual
    /// role cannot adopt a password, and each rotation resets one account.
    pub fn what_to_do(&self, path: &str, name: &str, dual: bool) -> String {
        if let Some((set, account)) = super::library::split_member(name) {
            // A service account is never adopted: a reset takes it back,
            // and so does its next check-in.
            let reset = super::library::rotate_hint(name);
            let ways_out = format!(
                "run {reset} to set a new password without the old one and take the account back (checking {account:?} in does the same), which updates every copy"
            );
            return match self.kind {
                DriftKind::ClaimedElsewhere => format!(
                    "two Vault mounts would fight over this account: delete it from the library set or role in the other mount (or library set {set:?} here), then {ways_out}"
                ),
                DriftKind::NewerPassword => {
                    format!("the password Vault holds is stale: {ways_out}")
                }
            };
        }
        let ways_out = if dual {
            format!(
                "run rotate-role/{name} twice: each sets a new password on one account without its old one, the inactive account first, so after two Vault knows both (a dual-account role cannot adopt a password); both update the copies pinned to the account they change"
            )
        } else {
            format!(
                "either run rotate-role/{name} to set a new password without the old one (DCS reset) and take the target back, or adopt the password the target holds with rotate-role/{name} password=<it>; both update every copy"
            )
        };
        match self.kind {
            DriftKind::ClaimedElsewhere => format!(
                "two Vault mounts would fight over this target: delete the role in the other mount (or {path}/{name} here), then {ways_out}"
            ),
            DriftKind::NewerPassword => format!("the password Vault holds is stale: {ways_out}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// The target carries this mount's marker for the current password.
    InSync,
    /// The target carries no marker (the role predates markers, or someone
    /// removed it): the next rotation writes one.
    Unverified,
    /// The marker could not be read or written; `detail` says why.
    Unavailable,
}

impl CheckState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InSync => "in_sync",
            Self::Unverified => "unverified",
            Self::Unavailable => "unavailable",
        }
    }
}

/// The last drift check's result, stored only when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftCheck {
    pub state: CheckState,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(default)]
    pub detail: Option<String>,
}

/// The attempts DCS said were left after refusing an old password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptsReport {
    pub left: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A library service account's password is out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkout {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The lease can never be renewed past this.
    #[serde(with = "time::serde::rfc3339")]
    pub max_expires_at: OffsetDateTime,
    /// Who checked it out: the caller's entity id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub borrower_entity_id: Option<String>,
    /// Otherwise an HMAC of the caller's (host-salted) token under this
    /// mount's borrower key: comparable, never the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub borrower_client_token: Option<String>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct RoleState {
    pub password: Option<String>,
    #[serde(default)]
    pub last_password: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_vault_rotation: Option<OffsetDateTime>,
    /// When the scheduler next acts on this role: a regular rotation, a
    /// retry after a failure, or resuming a rotation in flight.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_rotation: Option<OffsetDateTime>,
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub last_error: Option<LastError>,
    /// Consecutive failed attempts in this cycle.
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub dependents: BTreeMap<String, DependentState>,
    #[serde(default)]
    pub in_flight: Option<Rotation>,
    #[serde(default)]
    pub checkout: Option<Checkout>,
    /// DCS: attempts left before the instance locks password changes, as
    /// the provider last reported them; forgotten after a successful
    /// change (the count is of consecutive refusals).
    #[serde(default)]
    pub dcs_retry_times_left: Option<u32>,
    /// DCS: the last count reported, kept for the role read.
    #[serde(default)]
    pub dcs_attempts_reported: Option<AttemptsReport>,
    /// The rotation or adoption that set the target's current password:
    /// the generation the ownership marker must name.
    #[serde(default)]
    pub generation: Option<String>,
    /// The generation the marker on the target names, as last written.
    #[serde(default)]
    pub marker_generation: Option<String>,
    /// Dual-account roles: the index in `usernames` of the account
    /// `static-creds` serves. For these roles `password`, `generation` and
    /// `marker_generation` belong to the active account; `last_password`,
    /// `last_generation` and `last_marker_generation` to the inactive one,
    /// which keeps working until the next rotation.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub active: u8,
    /// Dual-account roles: the inactive account's `generation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_generation: Option<String>,
    /// Dual-account roles: the inactive account's `marker_generation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_marker_generation: Option<String>,
    #[serde(default)]
    pub drift: Option<Drift>,
    #[serde(default)]
    pub drift_check: Option<DriftCheck>,
}

impl RoleState {
    pub fn stopped_by_rejected_credentials(&self) -> bool {
        self.status == Status::Failed
            && self
                .last_error
                .as_ref()
                .is_some_and(|e| e.class == FailureClass::CredentialsRejected)
    }
}

/// Stored at `role/<name>`. Deliberately not `Debug`: it holds passwords.
#[derive(Clone, Serialize, Deserialize)]
pub struct Role {
    pub kind: RoleKind,
    pub target: Target,
    #[serde(default)]
    pub username: Option<String>,
    /// Dual-account roles: the two accounts that take turns (`username`
    /// is then `None`); empty for a single role, whose stored JSON stays
    /// as older versions wrote it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usernames: Vec<String>,
    #[serde(default)]
    pub dependents: Vec<Dependent>,
    #[serde(default)]
    pub password_policy: Option<String>,
    /// DCS: change with the old password (`update`) or without (`reset`).
    #[serde(default)]
    pub dcs_reset: bool,
    /// DCS library service accounts: `username` is an ACL account (not the
    /// instance's `default` user), reset like a dual role's accounts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub acl_account: bool,
    #[serde(default)]
    pub schedule: Schedule,
    /// Unused since leased roles became library sets (whose lending
    /// periods are the set's); kept so stored roles read and write back
    /// unchanged.
    #[serde(default)]
    pub ttl_secs: u64,
    #[serde(default)]
    pub max_ttl_secs: u64,
    #[serde(default)]
    pub state: RoleState,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The claim on DCS ACL account `name` of the role's instance.
fn acl_resource_id(target: &Target, name: &str) -> Option<String> {
    match target {
        Target::DcsInstance { instance_id, .. } => Some(format!("dcs:{instance_id}/acl/{name}")),
        _ => None,
    }
}

fn time_or_null(at: Option<OffsetDateTime>) -> Value {
    at.map_or(Value::Null, |at| Value::from(rfc3339(at)))
}

impl Role {
    /// A role with no settings and no state yet.
    pub fn new(kind: RoleKind, target: Target) -> Self {
        Self {
            kind,
            target,
            username: None,
            usernames: Vec::new(),
            dependents: Vec::new(),
            password_policy: None,
            dcs_reset: false,
            acl_account: false,
            schedule: Schedule::default(),
            ttl_secs: 0,
            max_ttl_secs: 0,
            state: RoleState::default(),
        }
    }

    /// The role names two accounts that take turns.
    pub fn is_dual(&self) -> bool {
        !self.usernames.is_empty()
    }

    /// The password changed is a DCS ACL account's (a dual role's, or an
    /// ACL service account of a library set): reset, and read with the
    /// account's status.
    pub fn uses_acl_accounts(&self) -> bool {
        matches!(self.target, Target::DcsInstance { .. }) && (self.is_dual() || self.acl_account)
    }

    /// Where Vault keeps this role's ownership marker, if it keeps one. A
    /// library ACL service account keeps none: DCS has one description per
    /// instance, which the instance password's owner marks, and no ACL
    /// account description Vault can write.
    pub fn marker_rule(&self) -> Option<&'static DescriptionRule> {
        if self.acl_account {
            return None;
        }
        self.target.description_rule()
    }

    /// The account `static-creds` serves: a single role's `username`, or
    /// the active one of a dual role's two.
    pub fn active_username(&self) -> Option<&str> {
        if self.is_dual() {
            self.usernames
                .get(usize::from(self.state.active))
                .map(String::as_str)
        } else {
            self.username.as_deref()
        }
    }

    /// The account a step of a rotation acts on: the flight's account (a
    /// dual role's rotation names it), else the one `static-creds` serves
    /// (a single role's `username`).
    pub fn acting_account(&self) -> &str {
        self.state
            .in_flight
            .as_ref()
            .and_then(|f| f.account.as_deref())
            .or(self.active_username())
            .unwrap_or_default()
    }

    /// The accounts whose ownership marker Vault keeps: both of a dual
    /// PolarDB role (each account has its own description); otherwise the
    /// one (a DCS instance carries one marker, whatever its accounts).
    pub fn marked_accounts(&self) -> Vec<&str> {
        if self.is_dual() && matches!(self.target, Target::PolardbAccount { .. }) {
            self.usernames.iter().map(String::as_str).collect()
        } else {
            vec![self.active_username().unwrap_or_default()]
        }
    }

    /// Dual roles: the account the next rotation changes, which still
    /// works until then. `None` for a single role.
    pub fn inactive_username(&self) -> Option<&str> {
        let active = usize::from(self.state.active);
        self.usernames
            .iter()
            .enumerate()
            .find(|(at, _)| *at != active)
            .map(|(_, name)| name.as_str())
    }

    /// Dual roles: the account a dependent's copy logs in as (a DTS
    /// dependent's `username`; a DRS job's user cannot be read). `None`
    /// for a single role, whose every copy takes its one password.
    pub fn account_of<'a>(&self, dependent: &'a Dependent) -> Option<&'a str> {
        match dependent {
            Dependent::Dts { username, .. } if self.is_dual() => Some(username),
            _ => None,
        }
    }

    /// Whether `dependent` takes the password of `account`: every copy of
    /// a single role; on a dual role, the DTS copies pinned to `account`.
    pub fn pinned_to(&self, dependent: &Dependent, account: Option<&str>) -> bool {
        !self.is_dual() || (account.is_some() && self.account_of(dependent) == account)
    }

    /// The dependents a rotation of `account` updates (all of a single
    /// role's).
    pub fn dependents_of(&self, account: Option<&str>) -> Vec<Dependent> {
        self.dependents
            .iter()
            .filter(|d| self.pinned_to(d, account))
            .cloned()
            .collect()
    }

    /// Whether `dependent`'s copy holds its account's password, as last
    /// recorded (a copy with no record does not).
    pub fn copy_in_sync(&self, dependent: &Dependent) -> bool {
        self.state
            .dependents
            .get(&dependent.to_string())
            .is_some_and(|s| s.status == DependentStatus::InSync)
    }

    /// Every dependent is to be given the role's password (again); on a
    /// dual role, those pinned to the account of the rotation in flight
    /// (else the active one).
    pub fn mark_dependents_pending(&mut self) {
        let account = self
            .state
            .in_flight
            .as_ref()
            .and_then(|f| f.account.as_deref())
            .or(self.active_username())
            .map(str::to_owned);
        for dependent in self.dependents_of(account.as_deref()) {
            self.state
                .dependents
                .entry(dependent.to_string())
                .or_default()
                .status = DependentStatus::Pending;
        }
    }

    /// Every resource this role claims: its target (each account of a
    /// dual PolarDB role; a DCS instance once, whatever its accounts) and
    /// each dependent. In `usernames` order, so a flip changes nothing.
    pub fn claims(&self) -> Vec<String> {
        let accounts: Vec<Option<&str>> = if self.is_dual() {
            self.usernames
                .iter()
                .map(|name| Some(name.as_str()))
                .collect()
        } else {
            vec![self.username.as_deref()]
        };
        let mut claims: Vec<String> = if self.acl_account {
            // A library ACL service account: that account only (the
            // instance password, `dcs:<id>`, is someone else's).
            accounts
                .into_iter()
                .filter_map(|account| acl_resource_id(&self.target, account?))
                .collect()
        } else {
            accounts
                .into_iter()
                .filter_map(|account| self.target.resource_id(account))
                .collect()
        };
        claims.dedup();
        if self.is_dual() {
            // A dual DCS role also holds its two ACL accounts, which no
            // library set may lend.
            claims.extend(
                self.usernames
                    .iter()
                    .filter_map(|name| acl_resource_id(&self.target, name)),
            );
        }
        claims.extend(self.dependents.iter().map(Dependent::resource_id));
        claims
    }

    /// Connections this role uses.
    pub fn connections(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .target
            .connection()
            .into_iter()
            .chain(self.dependents.iter().map(Dependent::connection))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Settings and state as `read static-roles/:name` (and a library set's
    /// read, for its accounts) show them: never a password.
    pub fn describe(&self, name: &str) -> Map<String, Value> {
        let (connection, cluster_id, instance_id) = self.target.fields();
        let state = &self.state;
        let dependents: Vec<Value> = self
            .dependents
            .iter()
            .map(|dependent| {
                let id = dependent.to_string();
                let dependent_state = state.dependents.get(&id).cloned().unwrap_or_default();
                json!({
                    "dependent": id,
                    "state": dependent_state.status.as_str(),
                    "last_error": dependent_state.last_error,
                    "updated_at": time_or_null(dependent_state.updated_at),
                })
            })
            .collect();
        let mut out = json!({
            "target": self.target.kind().as_str(),
            "connection": connection,
            "cluster_id": cluster_id,
            "instance_id": instance_id,
            "username": self.active_username().unwrap_or_default(),
            "dependents": self.dependents.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "dependent_states": dependents,
            "password_policy": self.password_policy.clone().unwrap_or_default(),
            "last_vault_rotation": time_or_null(state.last_vault_rotation),
            "next_vault_rotation": time_or_null(state.next_rotation),
            "status": state.status.as_str(),
            "status_reason": state.status_reason,
            "last_error": state.last_error.as_ref().map(|e| json!({"at": rfc3339(e.at), "class": e.class.as_str(), "tries_left": e.tries_left, "locked_minutes": e.locked_minutes, "message": e.message})),
            "rotation_in_progress": state.in_flight.as_ref().map(|r| json!({
                "id": r.id,
                "trigger": r.trigger.as_str(),
                "started_at": rfc3339(r.started_at),
                "phase": r.phase.as_str(),
                "attempts": r.attempts,
            })),
        });
        let map = out.as_object_mut().expect("an object");
        map.insert(
            "drift".into(),
            state.drift.as_ref().map_or(Value::Null, |drift| {
                json!({
                    "found_at": rfc3339(drift.found_at),
                    "kind": drift.kind,
                    "detail": drift.detail,
                    "what_to_do": drift.what_to_do(self.kind.path(), name, self.is_dual()),
                })
            }),
        );
        map.insert("drift_check".into(), self.describe_drift_check());
        if self.is_dual() {
            map.insert("usernames".into(), json!(self.usernames));
            map.insert("active_username".into(), json!(self.active_username()));
            map.insert("inactive_username".into(), json!(self.inactive_username()));
            let rotating = state.in_flight.as_ref().and_then(|f| f.account.as_deref());
            map.insert("rotating_account".into(), json!(rotating));
        }
        // A dual DCS role always resets its ACL accounts: no method to
        // choose, no wrong-password tries to count.
        if matches!(self.target, Target::DcsInstance { .. }) && !self.uses_acl_accounts() {
            map.insert(
                "dcs_change_method".into(),
                Value::from(if self.dcs_reset { "reset" } else { "update" }),
            );
            let report = state.dcs_attempts_reported;
            map.insert("dcs_attempts_left".into(), report.map(|r| r.left).into());
            map.insert(
                "dcs_attempts_reported_at".into(),
                time_or_null(report.map(|r| r.at)),
            );
        }
        match self.kind {
            RoleKind::Static => map.extend(self.schedule.describe()),
            RoleKind::Library => {
                map.insert("checked_out".into(), state.checkout.is_some().into());
                map.insert(
                    "checkout_expires_at".into(),
                    time_or_null(state.checkout.as_ref().map(|c| c.expires_at)),
                );
            }
        }
        std::mem::take(map)
    }
}

impl Role {
    fn describe_drift_check(&self) -> Value {
        if self.acl_account {
            return json!({
                "state": "not_applicable",
                "detail": "DCS ACL accounts carry no ownership marker (DCS keeps one description per instance): Vault resets them at each check-in without their old password",
            });
        }
        if self.target.description_rule().is_none() {
            return json!({
                "state": "not_applicable",
                "detail": "external targets are not drift-checked: Vault can neither read nor write them",
            });
        }
        match &self.state.drift_check {
            Some(check) => json!({
                "state": check.state.as_str(),
                "since": rfc3339(check.since),
                "detail": check.detail,
            }),
            None => json!({ "state": "not_checked", "since": null, "detail": null }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dependents_with_defaults_and_round_trips() {
        let dts = Dependent::parse("dts:ali/dtsj1/src", Some("app")).unwrap();
        assert_eq!(dts.to_string(), "dts:ali/dtsj1/src/app");
        assert_eq!(Dependent::parse(&dts.to_string(), None).unwrap(), dts);
        let explicit = Dependent::parse("dts:ali/dtsj1/dest/other", Some("app")).unwrap();
        assert!(
            matches!(explicit, Dependent::Dts { ref username, endpoint: DtsEndpoint::Dest, .. } if username == "other")
        );
        let drs = Dependent::parse("drs:hw/job-1/ta", None).unwrap();
        assert_eq!(drs.to_string(), "drs:hw/job-1/ta");
        assert_eq!(drs.resource_id(), "drs:job-1/ta");
    }

    #[test]
    fn bad_dependents_explain_the_format() {
        for (spec, expected) in [
            ("dts:ali/job", "dts:<connection>"),
            ("dts:ali/job/source", "src or dest"),
            ("drs:hw/job/so/extra", "drs:<connection>"),
            ("drs:hw/job/xx", "so or ta"),
            ("ftp:a/b/c", "dts:<connection>"),
            ("dts:ali//src", "dts:<connection>"),
            ("dts:ali/job/src", "needs a username"),
            ("nocolon", "dts:<connection>"),
        ] {
            let err = Dependent::parse(spec, None).unwrap_err();
            assert!(err.contains(expected), "{spec}: {err}");
        }
    }

    #[test]
    fn claims_identify_resources_not_connections() {
        let a = Target::PolardbAccount {
            connection: "c1".into(),
            cluster_id: "pc-1".into(),
        };
        let b = Target::PolardbAccount {
            connection: "c2".into(),
            cluster_id: "pc-1".into(),
        };
        assert_eq!(a.resource_id(Some("app")), b.resource_id(Some("app")));
        assert_ne!(a.resource_id(Some("app")), a.resource_id(Some("other")));
        assert_eq!(Target::External.resource_id(Some("x")), None);
    }

    /// A single PolarDB role with a rotation in flight, as the release
    /// before dual-account roles stored it (field order as serialized).
    fn stored_single_role() -> Value {
        json!({
            "kind": "static",
            "target": {"type": "polardb-account", "connection": "ali", "cluster_id": "pc-1"},
            "username": "app",
            "dependents": [{"type": "dts", "connection": "ali", "job_id": "dtsj1",
                            "endpoint": "src", "username": "app"}],
            "password_policy": null,
            "dcs_reset": false,
            "schedule": {"period": 86400, "disabled": false},
            "ttl_secs": 0,
            "max_ttl_secs": 0,
            "state": {
                "password": "Old-Secret-1",
                "last_password": null,
                "last_vault_rotation": "2026-12-01T03:00:00Z",
                "next_rotation": "2026-12-02T03:00:00Z",
                "status": "rotating",
                "status_reason": null,
                "last_error": null,
                "failures": 0,
                "dependents": {"dts:ali/dtsj1/src/app": {"status": "pending", "last_error": null,
                                                         "updated_at": null}},
                "in_flight": {
                    "id": "0011223344556677",
                    "trigger": "schedule",
                    "started_at": "2026-12-02T03:00:00Z",
                    "new_password": "New-Secret-1",
                    "old_password": "Old-Secret-1",
                    "phase": "target_applied",
                    "dcs_reset_only": false,
                    "attempts": 1,
                    "request_ids": ["req-1"],
                    "marker_written": true,
                    "events": []
                },
                "checkout": null,
                "dcs_retry_times_left": null,
                "dcs_attempts_reported": null,
                "generation": "0011223344556677",
                "marker_generation": "0011223344556677",
                "drift": null,
                "drift_check": null
            }
        })
    }

    fn dual(target: Target) -> Role {
        let mut role = Role::new(RoleKind::Static, target);
        role.usernames = vec!["app_blue".into(), "app_green".into()];
        role
    }

    fn polardb() -> Target {
        Target::PolardbAccount {
            connection: "ali".into(),
            cluster_id: "pc-1".into(),
        }
    }

    #[test]
    fn stored_single_roles_load_and_store_unchanged() {
        let stored = stored_single_role();
        let role: Role = serde_json::from_value(stored.clone()).unwrap();
        assert!(!role.is_dual());
        assert_eq!(role.active_username(), Some("app"));
        assert_eq!(role.inactive_username(), None);
        assert_eq!(role.state.active, 0);
        assert_eq!(role.state.last_generation, None);
        let flight = role.state.in_flight.as_ref().unwrap();
        assert_eq!(flight.account, None);
        assert_eq!(flight.phase, Phase::TargetApplied);
        // None of the new fields is written for a single role.
        assert_eq!(serde_json::to_value(&role).unwrap(), stored);
    }

    #[test]
    fn dual_roles_store_their_accounts_and_which_is_active() {
        let mut role = dual(polardb());
        role.state.active = 1;
        role.state.last_generation = Some("g1".into());
        let stored = serde_json::to_value(&role).unwrap();
        assert_eq!(stored["usernames"], json!(["app_blue", "app_green"]));
        assert_eq!(stored["state"]["active"], json!(1));
        let loaded: Role = serde_json::from_value(stored).unwrap();
        assert_eq!(loaded.active_username(), Some("app_green"));
        assert_eq!(loaded.inactive_username(), Some("app_blue"));
        assert_eq!(loaded.state.last_generation.as_deref(), Some("g1"));
        assert_eq!(
            serde_json::from_value::<Phase>(json!("settling")).unwrap(),
            Phase::Settling
        );
        assert_eq!(Phase::Settling.as_str(), "settling");
    }

    #[test]
    fn dual_roles_claim_each_account_of_a_cluster_but_an_instance_once() {
        let mut role = dual(polardb());
        role.dependents = vec![Dependent::parse("dts:ali/dtsj1/src/app_green", None).unwrap()];
        let claims = role.claims();
        assert_eq!(
            claims,
            [
                "polardb:pc-1/app_blue",
                "polardb:pc-1/app_green",
                "dts:dtsj1/src"
            ]
        );
        // A flip changes nothing the index keeps.
        role.state.active = 1;
        assert_eq!(role.claims(), claims);
        let dcs = dual(Target::DcsInstance {
            connection: "hw".into(),
            instance_id: "dcs-1".into(),
        });
        // The instance (its one marker), and the two ACL accounts, which
        // no library set may lend.
        assert_eq!(
            dcs.claims(),
            [
                "dcs:dcs-1",
                "dcs:dcs-1/acl/app_blue",
                "dcs:dcs-1/acl/app_green"
            ]
        );
    }

    #[test]
    fn a_library_acl_account_claims_that_account_and_keeps_no_marker() {
        let instance = Target::DcsInstance {
            connection: "hw".into(),
            instance_id: "dcs-1".into(),
        };
        let mut acl = Role::new(RoleKind::Library, instance.clone());
        acl.username = Some("app_blue".into());
        acl.acl_account = true;
        assert_eq!(acl.claims(), ["dcs:dcs-1/acl/app_blue"]);
        assert!(acl.uses_acl_accounts());
        assert!(acl.marker_rule().is_none());
        assert_eq!(
            acl.describe("pool:app_blue")["drift_check"]["state"],
            "not_applicable"
        );
        assert!(
            !acl.describe("pool:app_blue")
                .contains_key("dcs_change_method")
        );
        // Stored as before for every other role.
        assert_eq!(serde_json::to_value(&acl).unwrap()["acl_account"], true);
        let mut default = Role::new(RoleKind::Library, instance);
        default.username = Some("default".into());
        assert_eq!(default.claims(), ["dcs:dcs-1"]);
        assert!(!default.uses_acl_accounts() && default.marker_rule().is_some());
        assert!(
            serde_json::to_value(&default)
                .unwrap()
                .get("acl_account")
                .is_none()
        );
        // A leased role an earlier version stored loads as a service account.
        let mut stored = stored_single_role();
        stored["kind"] = json!("leased");
        let loaded: Role = serde_json::from_value(stored).unwrap();
        assert_eq!(loaded.kind, RoleKind::Library);
    }

    #[test]
    fn a_library_service_account_is_told_how_to_leave_drift() {
        let drift = Drift {
            found_at: OffsetDateTime::UNIX_EPOCH,
            kind: DriftKind::NewerPassword,
            detail: "restored".into(),
        };
        let text = drift.what_to_do("library", "pool:app_a", false);
        assert!(
            text.contains("library/pool/rotate service_account_names=app_a"),
            "{text}"
        );
        assert!(!text.contains("rotate-role"), "{text}");
    }

    #[test]
    fn reads_show_both_accounts_of_a_dual_role_only() {
        let mut role = dual(polardb());
        role.state.active = 1;
        let shown = role.describe("r");
        assert_eq!(shown["username"], json!("app_green"));
        assert_eq!(shown["active_username"], json!("app_green"));
        assert_eq!(shown["inactive_username"], json!("app_blue"));
        assert_eq!(shown["usernames"], json!(["app_blue", "app_green"]));
        assert_eq!(shown["rotating_account"], Value::Null);
        let single: Role = serde_json::from_value(stored_single_role()).unwrap();
        let mut flight = single.state.in_flight.clone().unwrap();
        flight.account = Some("app_blue".into());
        role.state.in_flight = Some(flight);
        assert_eq!(role.describe("r")["rotating_account"], json!("app_blue"));
        let shown = single.describe("r");
        assert_eq!(shown["username"], json!("app"));
        assert!(!shown.contains_key("usernames") && !shown.contains_key("active_username"));
        assert!(!shown.contains_key("rotating_account"));
    }

    #[test]
    fn only_single_dcs_roles_show_a_change_method() {
        let instance = Target::DcsInstance {
            connection: "hw".into(),
            instance_id: "dcs-1".into(),
        };
        let dual = dual(instance.clone()).describe("r");
        assert!(!dual.contains_key("dcs_change_method") && !dual.contains_key("dcs_attempts_left"));
        let single = Role::new(RoleKind::Static, instance).describe("r");
        assert_eq!(single["dcs_change_method"], json!("update"));
    }
}
