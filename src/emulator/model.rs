//! The emulated clouds' state. The same types serve as the seed format
//! (`POST /_emulator/seed`) and the state dump (`GET /_emulator/state`), so
//! what a test seeds is what it reads back, plus change counters.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

fn available() -> String {
    "Available".to_owned()
}
fn normal() -> String {
    "Normal".to_owned()
}
fn active_upper() -> String {
    "Active".to_owned()
}
fn active_lower() -> String {
    "active".to_owned()
}
fn running() -> String {
    "RUNNING".to_owned()
}
fn synchronizing() -> String {
    "Synchronizing".to_owned()
}
fn incre_transfer_started() -> String {
    "INCRE_TRANSFER_STARTED".to_owned()
}
fn default_region() -> String {
    "cn-hangzhou".to_owned()
}
fn mysql() -> String {
    "MySQL".to_owned()
}
fn redis() -> String {
    "Redis".to_owned()
}
fn redis_six() -> String {
    "6.0".to_owned()
}
fn running_cluster() -> String {
    super::accounts::POLARDB_RUNNING.to_owned()
}
fn master_standby() -> String {
    "ha".to_owned()
}
fn dcs_acl_account_limit() -> usize {
    super::accounts::DCS_ACL_ACCOUNT_LIMIT
}
fn settle_seconds() -> f64 {
    super::accounts::DEFAULT_SETTLE_SECONDS
}
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Seed {
    pub alicloud: AliSeed,
    pub huaweicloud: HwSeed,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AliSeed {
    pub users: Vec<AliUser>,
    pub polardb_clusters: Vec<PolarCluster>,
    pub dts_jobs: Vec<DtsJob>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HwSeed {
    pub users: Vec<HwUser>,
    pub projects: Vec<String>,
    pub drs_jobs: Vec<DrsJob>,
    pub dcs_instances: Vec<DcsInstance>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AliUser {
    pub name: String,
    #[serde(default)]
    pub access_keys: Vec<AliKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AliKey {
    pub id: String,
    pub secret: String,
    /// A key seeded with a token is temporary (STS): requests must carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_token: Option<String>,
    /// When a temporary key stops working (`yyyy-MM-ddTHH:mm:ssZ`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    #[serde(default = "active_upper")]
    pub status: String,
    #[serde(default)]
    pub create_date: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PolarCluster {
    pub id: String,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default)]
    pub accounts: Vec<PolarAccount>,
    /// `MySQL`, `PostgreSQL` or `Oracle` (DescribeDBClusters' `Engine`).
    #[serde(default = "mysql")]
    pub engine: String,
    /// The cluster's databases, the only names GrantAccountPrivilege takes.
    #[serde(default)]
    pub databases: Vec<String>,
    /// DescribeDBClusters' `DBClusterStatus`, one of
    /// [`super::accounts::POLARDB_CLUSTER_STATUSES`]; account changes need
    /// `Running` (PATCH `/_emulator/polardb/{id}` changes it).
    #[serde(default = "running_cluster")]
    pub status: String,
    /// The most accounts the cluster holds; none unless a seed sets one.
    /// PolarDB publishes no figure ("depends on the database engine"), only
    /// the code of a full cluster, `QuotaExceeded.AccountName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_limit: Option<usize>,
    /// How long a created account stays `Creating` and a deleted one
    /// `Deleting` (the emulator's model of PolarDB's asynchronous tasks).
    #[serde(default = "settle_seconds")]
    pub account_settle_seconds: f64,
    /// A real PostgreSQL server that holds the cluster's accounts as roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing: Option<super::backing::PostgresServer>,
    /// CreateAccount client tokens already answered (PolarDB answers a
    /// repeated token like the first request).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_tokens: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PolarAccount {
    pub name: String,
    pub password: String,
    #[serde(default = "available")]
    pub status: String,
    #[serde(default = "normal", rename = "type")]
    pub account_type: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub changes: u64,
    /// Changes that set a different password than the one held: applying
    /// the same password again (a retry) does not count, so one rotation
    /// adds exactly one.
    #[serde(default)]
    pub new_passwords: u64,
    /// The databases the account may use and how (`DatabasePrivileges`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<PolarPrivilege>,
    /// Unix milliseconds when a `Creating` account becomes `Available` or
    /// a `Deleting` one disappears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settles_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PolarPrivilege {
    pub db_name: String,
    /// `ReadWrite`, `ReadOnly`, `DMLOnly`, `DDLOnly` or `ReadIndex`.
    pub privilege: String,
}

/// Why the emulator failed a job whose source refused its password, and
/// the state the job goes back to once the login works again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoginFailure {
    pub previous_status: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DtsJob {
    pub id: String,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default = "synchronizing")]
    pub status: String,
    pub src: DtsEndpoint,
    pub dest: DtsEndpoint,
    /// Set while the job is failed because its source refused its login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_failure: Option<LoginFailure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DtsEndpoint {
    pub user: String,
    pub password: String,
    #[serde(default)]
    pub instance_id: String,
    #[serde(default)]
    pub changes: u64,
    /// Changes that set a different password than the one held: applying
    /// the same password again (a retry) does not count, so one rotation
    /// adds exactly one.
    #[serde(default)]
    pub new_passwords: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HwUser {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub access_keys: Vec<HwKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HwKey {
    pub access: String,
    pub secret: String,
    /// A key seeded with a token is temporary: requests must carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_token: Option<String>,
    /// When a temporary key stops working (RFC 3339, as IAM's
    /// `expires_at`: `2024-05-01T08:15:00.000000Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default = "active_lower")]
    pub status: String,
    #[serde(default)]
    pub create_time: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DrsJob {
    pub id: String,
    pub project_id: String,
    #[serde(default = "incre_transfer_started")]
    pub status: String,
    #[serde(default)]
    pub name: String,
    pub so: DrsEndpoint,
    pub ta: DrsEndpoint,
    /// Set while the job is failed because its source refused its login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_failure: Option<LoginFailure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DrsEndpoint {
    pub password: String,
    /// The DCS instance this endpoint is (a backed instance makes the job
    /// log in with its copy of the password).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance_id: String,
    /// The ACL user the endpoint logs in as; empty: the default user.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default)]
    pub changes: u64,
    /// Changes that set a different password than the one held: applying
    /// the same password again (a retry) does not count, so one rotation
    /// adds exactly one.
    #[serde(default)]
    pub new_passwords: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DcsInstance {
    pub id: String,
    pub project_id: String,
    #[serde(default = "running")]
    pub status: String,
    #[serde(default)]
    pub name: String,
    /// `None` once the instance is password-free.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub no_password_access: bool,
    #[serde(default)]
    pub changes: u64,
    /// Changes that set a different password than the one held: applying
    /// the same password again (a retry) does not count, so one rotation
    /// adds exactly one.
    #[serde(default)]
    pub new_passwords: u64,
    /// Consecutive wrong old passwords since the last success or lock.
    #[serde(default)]
    pub failed_attempts: u32,
    /// Every wrong old password ever offered (never reset), so tests can
    /// prove no attempt was spent.
    #[serde(default)]
    pub wrong_old_passwords: u64,
    /// The instance's description (`UpdateInstance`, `ShowInstance`).
    #[serde(default)]
    pub description: String,
    /// Unix seconds until which password changes are locked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
    /// `Redis` or `Memcached`.
    #[serde(default = "redis")]
    pub engine: String,
    /// `3.0`, `4.0`, `5.0`, `6.0`, ...
    #[serde(default = "redis_six")]
    pub engine_version: String,
    /// ShowInstance's `cache_mode`: `single`, `ha` (master/standby, the
    /// default), `cluster`, `proxy` or `ha_rw_split`.
    #[serde(default = "master_standby")]
    pub cache_mode: String,
    /// The instance's ACL accounts besides its `default` user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acl_accounts: Vec<AclAccount>,
    /// The most ACL accounts the instance holds (18, the user guide).
    #[serde(default = "dcs_acl_account_limit")]
    pub acl_account_limit: usize,
    /// How long ACL account tasks (create, role, reset, delete) take.
    #[serde(default = "settle_seconds")]
    pub account_settle_seconds: f64,
    /// A real Redis server: the instance password is its `requirepass`,
    /// ACL accounts are its ACL users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing: Option<super::backing::RedisServer>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AclAccount {
    #[serde(default)]
    pub id: String,
    pub name: String,
    pub password: String,
    /// `read` or `write`.
    #[serde(default = "write_role")]
    pub role: String,
    #[serde(default)]
    pub description: String,
    /// `CREATING`, `AVAILABLE`, `UPDATING`, `DELETING`.
    #[serde(default = "available_upper")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settles_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub changes: u64,
    /// Consecutive wrong old passwords (UpdateAclAccountPassWord).
    #[serde(default, skip_serializing_if = "is_default")]
    pub failed_attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
}

fn write_role() -> String {
    "write".to_owned()
}
fn available_upper() -> String {
    "AVAILABLE".to_owned()
}

/// An Alibaba STS `Expiration`: `yyyy-MM-ddTHH:mm:ssZ`.
pub fn parse_ali_expiration(text: &str) -> Option<OffsetDateTime> {
    crate::providers::alicloud::sign::parse_timestamp(text)
}

/// A Huawei `expires_at`: RFC 3339 (`2024-05-01T08:15:00.000000Z`).
pub fn parse_hw_expires_at(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

impl Seed {
    /// Refuses what would otherwise be silently ignored: an expiry that
    /// does not parse would leave a temporary key valid for ever.
    pub fn validate(&self) -> Result<(), String> {
        for cluster in &self.alicloud.polardb_clusters {
            if !super::accounts::POLARDB_CLUSTER_STATUSES.contains(&cluster.status.as_str()) {
                return Err(format!(
                    "cluster {}: status {:?} is not one PolarDB documents ({})",
                    cluster.id,
                    cluster.status,
                    super::accounts::POLARDB_CLUSTER_STATUSES.join(", ")
                ));
            }
        }
        for key in self.alicloud.users.iter().flat_map(|u| &u.access_keys) {
            if let Some(text) = &key.expiration
                && parse_ali_expiration(text).is_none()
            {
                return Err(format!(
                    "access key {}: expiration {text:?} is not yyyy-MM-ddTHH:mm:ssZ",
                    key.id
                ));
            }
        }
        for key in self.huaweicloud.users.iter().flat_map(|u| &u.access_keys) {
            if let Some(text) = &key.expires_at
                && parse_hw_expires_at(text).is_none()
            {
                return Err(format!(
                    "access key {}: expires_at {text:?} is not RFC 3339",
                    key.access
                ));
            }
        }
        Ok(())
    }
}

/// Everything the emulated clouds hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct World {
    pub seed: Seed,
    /// Every password, secret key and token this world ever held or was
    /// sent, so leak tests can look for each of them in logs
    /// (`GET /_emulator/secrets`).
    pub secrets: BTreeSet<String>,
    /// Changes the last call made to backed resources, for the server to
    /// apply to the real servers before it answers.
    pub pending_backing: Vec<super::backing::BackingChange>,
}

fn upsert<T>(items: &mut Vec<T>, item: T, same: impl Fn(&T, &T) -> bool) {
    match items.iter_mut().find(|existing| same(existing, &item)) {
        Some(existing) => *existing = item,
        None => items.push(item),
    }
}

impl World {
    pub fn remember(&mut self, secret: &str) {
        if !secret.is_empty() && !self.secrets.contains(secret) {
            self.secrets.insert(secret.to_owned());
        }
    }

    fn remember_seed(&mut self, seed: &Seed) {
        let mut found: Vec<&str> = Vec::new();
        for user in &seed.alicloud.users {
            for key in &user.access_keys {
                found.push(&key.secret);
                found.extend(key.security_token.as_deref());
            }
        }
        for cluster in &seed.alicloud.polardb_clusters {
            found.extend(cluster.accounts.iter().map(|a| a.password.as_str()));
        }
        for job in &seed.alicloud.dts_jobs {
            found.extend([job.src.password.as_str(), job.dest.password.as_str()]);
        }
        for user in &seed.huaweicloud.users {
            for key in &user.access_keys {
                found.push(&key.secret);
                found.extend(key.security_token.as_deref());
            }
        }
        for job in &seed.huaweicloud.drs_jobs {
            found.extend([job.so.password.as_str(), job.ta.password.as_str()]);
        }
        for instance in &seed.huaweicloud.dcs_instances {
            found.extend(instance.acl_accounts.iter().map(|a| a.password.as_str()));
            found.extend(instance.backing.iter().map(|b| b.admin_password.as_str()));
        }
        for cluster in &seed.alicloud.polardb_clusters {
            found.extend(cluster.backing.iter().map(|b| b.admin_password.as_str()));
        }
        found.extend(
            seed.huaweicloud
                .dcs_instances
                .iter()
                .filter_map(|i| i.password.as_deref()),
        );
        let found: Vec<String> = found.into_iter().map(str::to_owned).collect();
        for secret in found {
            self.remember(&secret);
        }
    }

    /// Merges a seed: new things are added, things with a known id replace
    /// the old ones (accounts and keys merge into their cluster or user).
    pub fn merge(&mut self, seed: Seed, created: &str) {
        self.remember_seed(&seed);
        let ali = &mut self.seed.alicloud;
        for user in seed.alicloud.users {
            let target = match ali.users.iter_mut().find(|u| u.name == user.name) {
                Some(existing) => existing,
                None => {
                    ali.users.push(AliUser {
                        name: user.name.clone(),
                        access_keys: Vec::new(),
                    });
                    ali.users.last_mut().expect("just pushed")
                }
            };
            for mut key in user.access_keys {
                if key.create_date.is_empty() {
                    key.create_date = created.to_owned();
                }
                upsert(&mut target.access_keys, key, |a, b| a.id == b.id);
            }
        }
        for cluster in seed.alicloud.polardb_clusters {
            match ali.polardb_clusters.iter_mut().find(|c| c.id == cluster.id) {
                Some(existing) => {
                    existing.region = cluster.region;
                    for account in cluster.accounts {
                        upsert(&mut existing.accounts, account, |a, b| a.name == b.name);
                    }
                    for database in cluster.databases {
                        if !existing.databases.contains(&database) {
                            existing.databases.push(database);
                        }
                    }
                    existing.engine = cluster.engine;
                    existing.status = cluster.status;
                    existing.account_limit = cluster.account_limit;
                    existing.account_settle_seconds = cluster.account_settle_seconds;
                    if cluster.backing.is_some() {
                        existing.backing = cluster.backing;
                    }
                }
                None => ali.polardb_clusters.push(cluster),
            }
        }
        for job in seed.alicloud.dts_jobs {
            upsert(&mut ali.dts_jobs, job, |a, b| a.id == b.id);
        }

        let hw = &mut self.seed.huaweicloud;
        for user in seed.huaweicloud.users {
            let target = match hw.users.iter_mut().find(|u| u.id == user.id) {
                Some(existing) => {
                    if !user.name.is_empty() {
                        existing.name = user.name.clone();
                    }
                    existing
                }
                None => {
                    hw.users.push(HwUser {
                        id: user.id.clone(),
                        name: user.name.clone(),
                        access_keys: Vec::new(),
                    });
                    hw.users.last_mut().expect("just pushed")
                }
            };
            for mut key in user.access_keys {
                if key.create_time.is_empty() {
                    key.create_time = created.to_owned();
                }
                upsert(&mut target.access_keys, key, |a, b| a.access == b.access);
            }
        }
        let mut projects: Vec<String> = seed.huaweicloud.projects;
        for job in seed.huaweicloud.drs_jobs {
            projects.push(job.project_id.clone());
            upsert(&mut hw.drs_jobs, job, |a, b| a.id == b.id);
        }
        for mut instance in seed.huaweicloud.dcs_instances {
            projects.push(instance.project_id.clone());
            if instance.no_password_access {
                instance.password = None;
            }
            for account in &mut instance.acl_accounts {
                if account.id.is_empty() {
                    account.id = super::accounts::acl_account_id(&instance.id, &account.name);
                }
            }
            upsert(&mut hw.dcs_instances, instance, |a, b| a.id == b.id);
        }
        for project in projects {
            if !hw.projects.contains(&project) {
                hw.projects.push(project);
            }
        }
    }

    /// The Alibaba user holding a key, and the key.
    pub fn ali_key(&self, id: &str) -> Option<(&AliUser, &AliKey)> {
        self.seed.alicloud.users.iter().find_map(|user| {
            user.access_keys
                .iter()
                .find(|key| key.id == id)
                .map(|key| (user, key))
        })
    }

    pub fn ali_user_mut(&mut self, name: &str) -> Option<&mut AliUser> {
        self.seed
            .alicloud
            .users
            .iter_mut()
            .find(|user| user.name == name)
    }

    pub fn hw_key(&self, access: &str) -> Option<(&HwUser, &HwKey)> {
        self.seed.huaweicloud.users.iter().find_map(|user| {
            user.access_keys
                .iter()
                .find(|key| key.access == access)
                .map(|key| (user, key))
        })
    }

    pub fn hw_user_mut(&mut self, id: &str) -> Option<&mut HwUser> {
        self.seed
            .huaweicloud
            .users
            .iter_mut()
            .find(|user| user.id == id)
    }

    pub fn polardb_cluster(&self, id: &str) -> Option<&PolarCluster> {
        self.seed
            .alicloud
            .polardb_clusters
            .iter()
            .find(|c| c.id == id)
    }

    pub fn polardb_cluster_mut(&mut self, id: &str) -> Option<&mut PolarCluster> {
        self.seed
            .alicloud
            .polardb_clusters
            .iter_mut()
            .find(|c| c.id == id)
    }

    pub fn dts_job_mut(&mut self, id: &str) -> Option<&mut DtsJob> {
        self.seed.alicloud.dts_jobs.iter_mut().find(|j| j.id == id)
    }

    pub fn drs_job_mut(&mut self, id: &str) -> Option<&mut DrsJob> {
        self.seed
            .huaweicloud
            .drs_jobs
            .iter_mut()
            .find(|j| j.id == id)
    }

    pub fn dcs_instance_mut(&mut self, id: &str) -> Option<&mut DcsInstance> {
        self.seed
            .huaweicloud
            .dcs_instances
            .iter_mut()
            .find(|i| i.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_parses_the_contract_shape_with_defaults() {
        let seed: Seed = serde_json::from_value(serde_json::json!({
            "alicloud": {
                "users": [{"name": "rot", "access_keys": [{"id": "AK1", "secret": "s"}]}],
                "polardb_clusters": [{"id": "pc-1", "region": "cn-hangzhou",
                    "accounts": [{"name": "app", "password": "Passw0rd!"}]}],
                "dts_jobs": [{"id": "dts1", "region": "cn-hangzhou", "status": "Synchronizing",
                    "src": {"user": "u", "password": "p"}, "dest": {"user": "v", "password": "q"}}]
            },
            "huaweicloud": {
                "users": [{"id": "u1", "name": "rot", "access_keys": [{"access": "HWAK", "secret": "s"}]}],
                "projects": ["p1"],
                "drs_jobs": [{"id": "j1", "project_id": "p1", "status": "PAUSING",
                    "so": {"password": "a"}, "ta": {"password": "b"}}],
                "dcs_instances": [{"id": "i1", "project_id": "p2", "status": "RUNNING", "password": "x"}]
            }
        }))
        .unwrap();
        let mut world = World::default();
        world.merge(seed, "2024-05-01T08:00:00Z");
        let cluster = world.polardb_cluster("pc-1").unwrap();
        assert_eq!(
            (cluster.status.as_str(), cluster.account_limit),
            ("Running", None)
        );
        let account = &cluster.accounts[0];
        assert_eq!(account.status, "Available");
        assert_eq!(account.account_type, "Normal");
        assert_eq!(world.ali_key("AK1").unwrap().1.status, "Active");
        assert_eq!(world.hw_key("HWAK").unwrap().0.id, "u1");
        assert_eq!(world.seed.huaweicloud.projects, vec!["p1", "p2"]);
        assert_eq!(world.seed.huaweicloud.dcs_instances[0].cache_mode, "ha");
    }

    #[test]
    fn seeds_with_unparseable_expiries_are_refused() {
        let seed = |ali: &str, hw: &str| -> Seed {
            serde_json::from_value(serde_json::json!({
                "alicloud": {"users": [{"name": "u", "access_keys": [
                    {"id": "STS.a", "secret": "s", "security_token": "t", "expiration": ali}]}]},
                "huaweicloud": {"users": [{"id": "u", "access_keys": [
                    {"access": "HW", "secret": "s", "security_token": "t", "expires_at": hw}]}]}
            }))
            .unwrap()
        };
        assert!(
            seed("2024-05-01T08:00:00Z", "2024-05-01T08:00:00.000000Z")
                .validate()
                .is_ok()
        );
        assert!(
            seed("2024-05-01 08:00", "2024-05-01T08:00:00Z")
                .validate()
                .is_err()
        );
        assert!(seed("2024-05-01T08:00:00Z", "tomorrow").validate().is_err());
    }

    #[test]
    fn merge_replaces_by_id_and_keeps_the_rest() {
        let mut world = World::default();
        let first: Seed = serde_json::from_value(serde_json::json!({"alicloud": {
            "polardb_clusters": [{"id": "pc-1", "accounts": [
                {"name": "a", "password": "one"}, {"name": "b", "password": "two"}]}]}}))
        .unwrap();
        let second: Seed = serde_json::from_value(serde_json::json!({"alicloud": {
            "polardb_clusters": [{"id": "pc-1", "accounts": [{"name": "b", "password": "new"}]}]}}))
        .unwrap();
        world.merge(first, "t");
        world.merge(second, "t");
        let accounts = &world.polardb_cluster("pc-1").unwrap().accounts;
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[1].password, "new");
    }
}
