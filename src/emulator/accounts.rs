//! Rules of database accounts that both clouds' account APIs share in the
//! emulator: PolarDB account names and privileges, DCS ACL account names,
//! roles and passwords, and the asynchronous tasks that leave an account
//! `Creating`/`CREATING` (or deleting, updating) for a while.
//!
//! Sources: PolarDB CreateAccount / GrantAccountPrivilege SDK models
//! (`alibabacloud_polardb20170801` 9.2.1) and API reference
//! <https://www.alibabacloud.com/help/en/polardb/api-polardb-2017-08-01-createaccount>;
//! DCS CreateAclAccount SDK model (`huaweicloudsdkdcs` 3.1.219
//! `v2/model/create_acl_account_request_body.py`), API reference
//! <https://support.huaweicloud.com/intl/en-us/api-dcs/CreateAclAccount.html>
//! and user guide ("Configuring DCS Redis ACL Users", 18 users at most)
//! <https://support.huaweicloud.com/intl/en-us/usermanual-dcs/dcs-ug-221220.html>.

use time::OffsetDateTime;

use super::model::{DcsInstance, PolarCluster, World};
use super::rules::PasswordPolicy;

/// The cluster status account changes need. DeleteAccount and
/// GrantAccountPrivilege: "make sure that the cluster is in the Running
/// state. Otherwise, the operation fails" (API references).
pub const POLARDB_RUNNING: &str = "Running";

/// Every cluster status PolarDB documents ("Cluster status",
/// <https://www.alibabacloud.com/help/en/polardb/latest/cluster-status>,
/// spelled as there), the values DescribeDBClusters' `DBClusterStatus`
/// takes. Seeds and the admin API may set only these.
pub const POLARDB_CLUSTER_STATUSES: &[&str] = &[
    "Creating",
    "Running",
    "Deleting",
    "Deleted",
    "Rebooting",
    "Starting",
    "Stopped",
    "INS_MAINTAINING",
    "Switching",
    "DBNodeCreating",
    "DBNodeDeleting",
    "ClassChanging",
    "NetAddressCreating",
    "NetAddressDeleting",
    "NetAddressModifying",
    "MinorVersionUpgrading",
    "STORAGE_EXPANDIN",
    "UPGRADE_FORBIDDEN",
    "TRANSING",
    "SSL_MODIFYING",
    "TDEModifying",
    "CONFIG_SWITCHING",
    "ROLE_SWITCHING",
    "ClassChanged",
    "MajorVersionUpgrading",
];

/// "Up to 18 users can be created for each instance" (DCS user guide).
pub const DCS_ACL_ACCOUNT_LIMIT: usize = 18;

/// How long account tasks take unless a seed says otherwise (the
/// emulator's model; tests move the clock instead of waiting).
pub const DEFAULT_SETTLE_SECONDS: f64 = 1.0;

/// Names PolarDB reserves ("cannot be root, admin, or another username
/// that is reserved by the system"; the two it names).
const POLARDB_RESERVED_NAMES: &[&str] = &["root", "admin"];

/// PolarDB `AccountName`: 2-16 characters of lower-case letters, digits
/// and `_`, starting with a lower-case letter and ending with a letter or
/// digit, not reserved.
pub fn check_polardb_account_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    if !(2..=16).contains(&bytes.len()) {
        return Err("the name must be 2 to 16 characters long".into());
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
    {
        return Err("the name may hold lower-case letters, digits and '_' only".into());
    }
    if !bytes[0].is_ascii_lowercase() {
        return Err("the name must start with a lower-case letter".into());
    }
    if !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err("the name must end with a letter or a digit".into());
    }
    if POLARDB_RESERVED_NAMES.contains(&name) {
        return Err("the name is reserved".into());
    }
    Ok(())
}

/// PolarDB `AccountDescription` (CreateAccount, ModifyAccountDescription):
/// 2-256 characters, not starting with `http://` or `https://`.
pub fn check_polardb_description(description: &str) -> Result<(), String> {
    let length = description.chars().count();
    if !(2..=256).contains(&length) {
        return Err("the description must be 2 to 256 characters long".into());
    }
    if description.starts_with("http://") || description.starts_with("https://") {
        return Err("the description must not start with http:// or https://".into());
    }
    Ok(())
}

/// PolarDB `AccountPrivilege` values.
pub const POLARDB_PRIVILEGES: &[&str] =
    &["ReadWrite", "ReadOnly", "DMLOnly", "DDLOnly", "ReadIndex"];

/// DCS ACL `account_name`: 1-64 characters of letters, digits, `-` and
/// `_`, starting with a letter.
pub fn check_acl_account_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    if !(1..=64).contains(&bytes.len()) {
        return Err("the account name must be 1 to 64 characters long".into());
    }
    if !bytes[0].is_ascii_alphabetic() {
        return Err("the account name must start with a letter".into());
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    {
        return Err("the account name may hold letters, digits, '-' and '_' only".into());
    }
    Ok(())
}

/// DCS ACL `account_role`.
pub const ACL_ROLES: &[&str] = &["read", "write"];

/// DCS ACL passwords (SDK `create_acl_account_request_body.py`): 8-64
/// characters, three of lower, upper, digits and the specials (no `:`).
pub const DCS_ACL: PasswordPolicy = PasswordPolicy {
    min_len: 8,
    max_len: 64,
    specials: "`~!@#$%^&*()-_=+\\|{},<.>/?",
    min_classes: 3,
};

/// An ACL password: the policy, and not the account name forwards or
/// backwards ("cannot contain the username or the username spelled
/// backwards").
pub fn check_acl_password(name: &str, password: &str) -> Result<(), String> {
    DCS_ACL.check(password)?;
    let lower = password.to_ascii_lowercase();
    let forwards = name.to_ascii_lowercase();
    let backwards: String = forwards.chars().rev().collect();
    if lower.contains(&forwards) || lower.contains(&backwards) {
        return Err("the password must not contain the account name forwards or backwards".into());
    }
    Ok(())
}

/// The ACL account id DCS would hand out; stable per instance and name so
/// seeds and tests can name it.
pub fn acl_account_id(instance_id: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{instance_id}/{name}").as_bytes());
    let bits = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
    super::alicloud::ali_request_id(bits).to_ascii_lowercase()
}

/// The id of the instance's `default` user in ListAclAccounts.
pub fn default_account_id(instance_id: &str) -> String {
    acl_account_id(instance_id, "default")
}

pub fn settles_at(now: OffsetDateTime, seconds: f64) -> Option<i64> {
    let ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    Some(ms + (seconds.max(0.0) * 1000.0).round() as i64)
}

fn due(settles_at_ms: Option<i64>, now_ms: i64) -> bool {
    settles_at_ms.is_some_and(|at| at <= now_ms)
}

fn settle_cluster(cluster: &mut PolarCluster, now_ms: i64) {
    cluster
        .accounts
        .retain(|a| !(a.status == "Deleting" && due(a.settles_at_ms, now_ms)));
    for account in &mut cluster.accounts {
        if account.status == "Creating" && due(account.settles_at_ms, now_ms) {
            account.status = "Available".into();
            account.settles_at_ms = None;
        }
    }
}

fn settle_instance(instance: &mut DcsInstance, now_ms: i64) {
    instance
        .acl_accounts
        .retain(|a| !(a.status == "DELETING" && due(a.settles_at_ms, now_ms)));
    for account in &mut instance.acl_accounts {
        if matches!(account.status.as_str(), "CREATING" | "UPDATING")
            && due(account.settles_at_ms, now_ms)
        {
            account.status = "AVAILABLE".into();
            account.settles_at_ms = None;
        }
    }
}

impl World {
    /// Finishes every account task whose time has come: `Creating` and
    /// `UPDATING` accounts become available, deleted ones disappear.
    pub fn settle_accounts(&mut self, now: OffsetDateTime) {
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        for cluster in &mut self.seed.alicloud.polardb_clusters {
            settle_cluster(cluster, now_ms);
        }
        for instance in &mut self.seed.huaweicloud.dcs_instances {
            settle_instance(instance, now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polardb_names() {
        for good in ["ab", "app_blue", "a1", "x_2_y", "abcdefghijklmnop"] {
            assert!(check_polardb_account_name(good).is_ok(), "{good}");
        }
        for bad in [
            "a",
            "abcdefghijklmnopq",
            "App",
            "1app",
            "_app",
            "app_",
            "app-blue",
            "root",
            "admin",
        ] {
            assert!(check_polardb_account_name(bad).is_err(), "{bad}");
        }
        assert!(check_polardb_description("ok").is_ok());
        assert!(check_polardb_description("x").is_err());
        assert!(check_polardb_description("https://x").is_err());
    }

    #[test]
    fn acl_names_and_passwords() {
        for good in ["a", "Reader-1", "app_green"] {
            assert!(check_acl_account_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1a", "-a", "a b", "a.b", &"a".repeat(65)] {
            assert!(check_acl_account_name(bad).is_err(), "{bad}");
        }
        assert!(check_acl_password("reader", "Str0ng-Pass").is_ok());
        assert!(
            check_acl_password("reader", "Str0ng:Pass").is_err(),
            "colon"
        );
        assert!(
            check_acl_password("reader", "xReader-9Q").is_err(),
            "forwards"
        );
        assert!(
            check_acl_password("reader", "xredaer-9Q").is_err(),
            "backwards"
        );
        assert!(check_acl_password("reader", "short1A").is_err());
        assert!(check_acl_password("reader", &format!("Aa1-{}", "x".repeat(61))).is_err());
    }

    #[test]
    fn account_ids_are_stable_and_distinct() {
        assert_eq!(acl_account_id("i", "a"), acl_account_id("i", "a"));
        assert_ne!(acl_account_id("i", "a"), acl_account_id("j", "a"));
        assert_eq!(default_account_id("i").len(), 36);
    }
}
