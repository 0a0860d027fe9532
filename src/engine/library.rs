//! Library sets (`library/:name`): a pool of service accounts on one
//! PolarDB cluster or DCS instance, each lent to one borrower at a time
//! under a lease and rotated when it comes back.
//!
//! The set's settings are one storage entry, `library/<name>`; each service
//! account is an ordinary role record of kind `Library` named
//! `<set>:<account>` (a `:` never appears in a name a client chooses, so no
//! static role can take it), stored with the other roles. So locking, the
//! claims index, history, the ownership marker and the rotation machinery
//! treat a service account like any other role.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::framework::{ClientInfo, Error, Storage, get_json, put_json};

use super::role::{Checkout, Dependent, Target};

pub const STORAGE_PREFIX: &str = "library/";

/// Where the key that hashes borrowers' tokens is kept.
pub const BORROWER_KEY: &str = "borrower-key";

/// The account of a DCS set that is the instance password (Redis's
/// `default` user); every other name is an ACL account.
pub const DCS_DEFAULT_ACCOUNT: &str = "default";

/// Lending periods when a set gives none: the LDAP engine's defaults.
pub const DEFAULT_TTL_SECS: u64 = 24 * 3600;
pub const DEFAULT_MAX_TTL_SECS: u64 = 24 * 3600;

/// Stored at `library/<name>`: no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibrarySet {
    pub target: Target,
    /// In check-out order: the first free one is lent.
    pub service_account_names: Vec<String>,
    /// 0: the mount's default lease TTL.
    pub ttl_secs: u64,
    /// 0: the mount's max lease TTL.
    pub max_ttl_secs: u64,
    #[serde(default)]
    pub disable_check_in_enforcement: bool,
    #[serde(default)]
    pub password_policy: Option<String>,
    /// Each pinned to one service account: a DTS copy names it; a DRS copy
    /// (one-account sets only) belongs to the only one.
    #[serde(default)]
    pub dependents: Vec<Dependent>,
}

impl LibrarySet {
    /// The copies kept in step with `account`.
    pub fn dependents_of(&self, account: &str) -> Vec<Dependent> {
        self.dependents
            .iter()
            .filter(|dependent| match dependent {
                Dependent::Dts { username, .. } => username == account,
                Dependent::Drs { .. } => self.service_account_names.len() == 1,
            })
            .cloned()
            .collect()
    }

    /// `account` of a DCS set is an ACL account (not the instance's
    /// `default` user).
    pub fn is_acl_account(&self, account: &str) -> bool {
        matches!(self.target, Target::DcsInstance { .. }) && account != DCS_DEFAULT_ACCOUNT
    }
}

/// The role record of service account `account` of set `set`.
pub fn member_role(set: &str, account: &str) -> String {
    format!("{set}:{account}")
}

/// `(set, account)` when `role` is a library service account's record.
pub fn split_member(role: &str) -> Option<(&str, &str)> {
    role.split_once(':')
}

/// How an operator names a role in a message: `role "x"`, or
/// `service account "a" of library set "s"`.
pub fn describe_role(role: &str) -> String {
    match split_member(role) {
        Some((set, account)) => format!("service account {account:?} of library set {set:?}"),
        None => format!("role {role:?}"),
    }
}

/// The request that rotates `role` now: `rotate-role/<name>`, or for a
/// library service account `library/<set>/rotate`.
pub fn rotate_hint(role: &str) -> String {
    match split_member(role) {
        Some((set, account)) => {
            format!("library/{set}/rotate service_account_names={account}")
        }
        None => format!("rotate-role/{role}"),
    }
}

fn set_key(name: &str) -> String {
    format!("{STORAGE_PREFIX}{name}")
}

pub async fn load(storage: &dyn Storage, name: &str) -> Result<Option<LibrarySet>, Error> {
    get_json(storage, &set_key(name)).await
}

pub async fn save(storage: &dyn Storage, name: &str, set: &LibrarySet) -> Result<(), Error> {
    put_json(storage, &set_key(name), set).await
}

pub async fn delete(storage: &dyn Storage, name: &str) -> Result<(), Error> {
    storage.delete(&set_key(name)).await?;
    Ok(())
}

pub async fn list(storage: &dyn Storage) -> Result<Vec<String>, Error> {
    Ok(storage.list(STORAGE_PREFIX).await?)
}

/// Who is asking, as a check-out records it and a check-in compares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Borrower {
    pub entity_id: Option<String>,
    /// The HMAC of the caller's salted token under the mount's key.
    pub client_token: Option<String>,
}

impl Borrower {
    /// The caller of a request: its entity, and its token hashed with
    /// `key` (the token itself is never kept).
    pub fn of(client: &ClientInfo, key: &[u8]) -> Self {
        let entity_id = Some(client.entity_id.trim().to_owned()).filter(|id| !id.is_empty());
        let client_token = (!client.client_token.is_empty()).then(|| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(client.client_token.expose().as_bytes());
            hex::encode(mac.finalize().into_bytes())
        });
        Self {
            entity_id,
            client_token,
        }
    }

    /// What a check-out records: the entity when the caller has one, else
    /// the hashed token (a root token has no entity).
    pub fn recorded(&self) -> Self {
        match &self.entity_id {
            Some(entity) => Self {
                entity_id: Some(entity.clone()),
                client_token: None,
            },
            None => self.clone(),
        }
    }

    /// Whether this caller is the one who checked `checkout` out: the same
    /// entity, or the same token (each only when both sides have one).
    pub fn borrowed(&self, checkout: &Checkout) -> bool {
        let same = |mine: &Option<String>, theirs: &Option<String>| matches!((mine, theirs), (Some(a), Some(b)) if a == b);
        same(&self.entity_id, &checkout.borrower_entity_id)
            || same(&self.client_token, &checkout.borrower_client_token)
    }

    /// Whether the caller can be identified at all (a request with neither
    /// an entity nor a token cannot be matched at check-in).
    pub fn is_known(&self) -> bool {
        self.entity_id.is_some() || self.client_token.is_some()
    }
}

/// A new check-out of the lending period given, recording `borrower`.
pub fn checkout(
    now: OffsetDateTime,
    ttl: std::time::Duration,
    max_ttl: std::time::Duration,
    borrower: &Borrower,
) -> Checkout {
    let recorded = borrower.recorded();
    Checkout {
        id: hex::encode(rand::random::<[u8; 8]>()),
        issued_at: now,
        expires_at: now + ttl,
        max_expires_at: now + max_ttl,
        borrower_entity_id: recorded.entity_id,
        borrower_client_token: recorded.client_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::ClientToken;
    use time::macros::datetime;

    fn client(entity: &str, token: &str) -> ClientInfo {
        ClientInfo {
            entity_id: entity.into(),
            client_token: ClientToken::new(token),
            ..ClientInfo::default()
        }
    }

    #[test]
    fn member_records_are_named_so_no_client_chosen_name_collides() {
        assert_eq!(member_role("pool", "app_1"), "pool:app_1");
        assert_eq!(split_member("pool:app_1"), Some(("pool", "app_1")));
        assert_eq!(split_member("plain"), None);
        assert!(crate::framework::validate_name("pool:app_1").is_err());
        assert_eq!(
            describe_role("pool:app_1"),
            r#"service account "app_1" of library set "pool""#
        );
        assert_eq!(
            rotate_hint("pool:app_1"),
            "library/pool/rotate service_account_names=app_1"
        );
        assert_eq!(rotate_hint("app"), "rotate-role/app");
    }

    #[test]
    fn a_check_out_records_the_entity_or_else_a_hash_of_the_token() {
        let key = b"0123456789abcdef0123456789abcdef";
        let now = datetime!(2026-12-07 10:00 UTC);
        let hour = std::time::Duration::from_secs(3600);
        let with_entity = Borrower::of(&client("ent-1", "salted-a"), key);
        let out = checkout(now, hour, hour * 2, &with_entity);
        assert_eq!(out.borrower_entity_id.as_deref(), Some("ent-1"));
        assert_eq!(out.borrower_client_token, None);
        assert_eq!(out.max_expires_at, now + hour * 2);
        // The same entity with another token is the borrower; another
        // entity with the same token too (LDAP's rule: either matches).
        assert!(Borrower::of(&client("ent-1", "salted-b"), key).borrowed(&out));
        assert!(!Borrower::of(&client("ent-2", "salted-b"), key).borrowed(&out));

        let root = Borrower::of(&client("", "salted-root"), key);
        let hashed = root.client_token.clone().unwrap();
        assert_eq!(hashed.len(), 64);
        assert!(!hashed.contains("salted-root"));
        let out = checkout(now, hour, hour, &root);
        assert_eq!(out.borrower_entity_id, None);
        assert_eq!(out.borrower_client_token.as_deref(), Some(hashed.as_str()));
        assert!(Borrower::of(&client("", "salted-root"), key).borrowed(&out));
        assert!(!Borrower::of(&client("", "salted-other"), key).borrowed(&out));
        // Another mount's key gives another hash.
        assert!(!Borrower::of(&client("", "salted-root"), b"other-key").borrowed(&out));
        // Nobody matches an unknown caller, nor an unknown borrower.
        let nobody = Borrower::of(&client("", ""), key);
        assert!(!nobody.is_known());
        assert!(!nobody.borrowed(&checkout(now, hour, hour, &nobody)));
    }

    #[test]
    fn dependents_belong_to_the_account_they_name() {
        let mut set = LibrarySet {
            target: Target::PolardbAccount {
                connection: "ali".into(),
                cluster_id: "pc-1".into(),
            },
            service_account_names: vec!["a".into(), "b".into()],
            ttl_secs: 0,
            max_ttl_secs: 0,
            disable_check_in_enforcement: false,
            password_policy: None,
            dependents: vec![
                Dependent::parse("dts:ali/j1/src/a", None).unwrap(),
                Dependent::parse("dts:ali/j2/dest/b", None).unwrap(),
            ],
        };
        assert_eq!(set.dependents_of("a").len(), 1);
        assert_eq!(set.dependents_of("b")[0].to_string(), "dts:ali/j2/dest/b");
        set.service_account_names = vec!["a".into()];
        set.dependents = vec![Dependent::parse("drs:hw/job/so", None).unwrap()];
        assert_eq!(set.dependents_of("a").len(), 1);
        assert!(!set.is_acl_account("a"));
        set.target = Target::DcsInstance {
            connection: "hw".into(),
            instance_id: "dcs-1".into(),
        };
        assert!(set.is_acl_account("a") && !set.is_acl_account("default"));
    }
}
