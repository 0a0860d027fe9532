//! `roles/:name` (a dynamic role: where and how each lease's account is
//! created), `roles/` (list) and `creds/:name` (a fresh account under a
//! lease), as Vault's database engine shapes them. The machinery is in
//! [`super::dynamic`].

use std::sync::Arc;

use serde_json::Value;

use crate::framework::{
    Error, Field, FieldData, HandlerResult, Operation, Path, Request, Response, SecretType,
};
use crate::handler;

use super::core::Engine;
use super::dynamic::create::{self, SECRET_TYPE};
use super::dynamic::role::{self, DynamicRole, TARGETS};
use super::dynamic::{check, cleanup, list_issued, load_issued, revoke};
use super::store::LockKey;

fn fields() -> Vec<Field> {
    vec![
        Field::string("name", "Name of the role."),
        Field::string(
            "target",
            "Where each lease's account is created: polardb-account (a PolarDB cluster) or dcs-instance (a DCS Redis instance's ACL accounts). Cannot be changed.",
        )
        .one_of(&TARGETS)
        .required(),
        Field::string(
            "connection",
            "Connection (config/:name) that reaches the cluster or instance; it must allow this role. Leases issued before a change keep the connection they were issued through.",
        )
        .max_len(128),
        Field::string("cluster_id", "polardb-account: the PolarDB cluster id (pc-...).").max_len(128),
        Field::string("instance_id", "dcs-instance: the DCS instance id.").max_len(128),
        Field::map(
            "grants",
            "polardb-account (required): database=privilege pairs, each granted to every account (one GrantAccountPrivilege per database); privileges: ReadWrite, ReadOnly, DMLOnly, DDLOnly, ReadIndex. Accounts are PolarDB standard (Normal) accounts.",
        )
        .max_len(64),
        Field::string(
            "acl_role",
            "dcs-instance (required): the ACL role of every account, read or write.",
        )
        .one_of(&["read", "write"]),
        Field::string(
            "username_template",
            "How account names are made, in Vault's username template syntax (.RoleName, .DisplayName, random, truncate, lowercase, replace, ...). Checked against the target's name rules when written. Default: PolarDB v_<role>_<random>, 16 characters at most; DCS v-<role>-<random>-<unix time>.",
        )
        .max_len(1024),
        Field::duration(
            "default_ttl",
            "How long a lease lasts before renewal (default: the mount's default lease TTL).",
        ),
        Field::duration(
            "max_ttl",
            "How long a lease may last with renewals (default: the mount's max lease TTL); never longer than the mount's.",
        ),
        Field::string(
            "password_policy",
            "A Vault password policy to generate the accounts' passwords with; checked against the target's rules when the role is written.",
        )
        .max_len(128),
    ]
}

const ROLE_HELP: &str = "\
A dynamic role creates a fresh account for every lease, as Vault's database engine does: reading creds/:name creates \
a PolarDB standard account with the role's grants (or a DCS Redis ACL account with its ACL role), waits until it is \
available and answers its username and password under a lease. Renewing extends the lease up to max_ttl without a \
cloud call; when the lease ends (expiry, bao lease revoke, revoke -prefix, disabling the mount) the account is \
deleted. No account outlives its lease: each is recorded before it is created, so a read that fails or stops half \
way has its account deleted by the host's rollback a few minutes later, and one whose lease the host never recorded \
is deleted after its max TTL. A read shows the settings and pending_cleanups: the accounts of the role still \
waiting to be deleted (tried again every minute).";

const CREDS_HELP: &str = "\
Creates an account for the role and answers username and password under a renewable lease (secret type creds). \
The read takes as long as the cloud needs to create the account (mount option account_ready_wait bounds the wait, \
60s by default). Errors name the cloud's code: 429 when the cluster or instance holds as many accounts as it may, \
503 when it is not running (or the account was not ready in time), 403 when the connection's key may not create \
accounts, 400 for a role the cloud refuses.";

pub fn paths() -> Vec<Path<Engine>> {
    vec![
        Path::new("roles/{name}")
            .fields(fields())
            .on(Operation::Create, "Create a dynamic role.", handler!(write))
            .on(Operation::Update, "Update a dynamic role.", handler!(write))
            .on(
                Operation::Read,
                "Read a dynamic role and its pending cleanups.",
                handler!(read),
            )
            .on(
                Operation::Delete,
                "Delete a dynamic role (its leases keep their accounts until they end).",
                handler!(delete),
            )
            .existence(handler!(exists))
            .help("A role whose every lease gets its own account.", ROLE_HELP),
        Path::new("roles/")
            .on(Operation::List, "List dynamic roles.", handler!(list))
            .help(
                "List dynamic roles.",
                "Returns the names of all dynamic roles.",
            ),
        Path::new("creds/{name}")
            .fields([Field::string("name", "Name of the dynamic role.")])
            .on(
                Operation::Read,
                "Create an account for the role under a lease.",
                handler!(creds),
            )
            .help("A fresh account under a lease.", CREDS_HELP),
    ]
}

/// The secret type `creds`: a dynamic account's lease. A check-out lease
/// of an earlier version's leased role also carries this type (its data
/// holds a `checkout`); leased roles became library sets, so such a lease
/// is not renewed and its revoke ends it without a cloud call (the
/// CHANGELOG says to revoke them before upgrading).
pub fn secret_types() -> Vec<SecretType<Engine>> {
    vec![SecretType {
        name: SECRET_TYPE,
        renew: handler!(renew),
        revoke: handler!(revoke),
    }]
}

fn is_checkout(request: &Request) -> bool {
    request
        .secret
        .as_ref()
        .is_some_and(|lease| lease.internal_data.contains_key("checkout"))
}

async fn renew(engine: &Arc<Engine>, request: &Request, _: &FieldData) -> HandlerResult {
    if is_checkout(request) {
        return Err(Error::bad_request(
            "this lease is a check-out of a leased role, which became a library set: check the account out again from library/<set>/check-out",
        ));
    }
    Ok(Some(revoke::renew(engine, request).await?))
}

async fn revoke(engine: &Arc<Engine>, request: &Request, _: &FieldData) -> HandlerResult {
    if is_checkout(request) {
        tracing::warn!(
            "ended a check-out lease of a leased role stored by an earlier version; its password was not rotated (rotate it with library/<set>/rotate once the account is in a library set)"
        );
        return Ok(None);
    }
    revoke::revoke(engine, request).await?;
    Ok(None)
}

fn name(data: &FieldData) -> &str {
    data.str("name").unwrap_or_default()
}

async fn exists(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> Result<bool, Error> {
    Ok(role::load(engine, name(data)).await?.is_some())
}

async fn write(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = name(data);
    // The lock static and leased role writes take too: a name is checked
    // free and taken in one step.
    let _guard = engine.store.lock(LockKey::Role(name)).await;
    let existing = role::load(engine, name).await?;
    let role = DynamicRole::apply(existing.clone(), data)?;
    role::refuse_static_name(engine, name).await?;
    // Read before the connection is locked: a key the cloud rejects is
    // recorded under that lock.
    let mut warnings = check::check_target(engine, name, &role, existing.as_ref()).await?;
    // Held until the role is stored: its connection cannot be deleted
    // between the check and the write.
    let connection = role::place(&role.target).0.to_owned();
    let _connection = engine.store.lock_connections(&[&connection]).await;
    warnings.extend(role.validate(engine, name).await?);
    role::save(engine, name, &role).await?;
    Ok(warnings
        .into_iter()
        .fold(None, |response: Option<Response>, warning| {
            Some(response.unwrap_or_default().warn(warning))
        }))
}

async fn read(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = name(data);
    let Some(role) = role::load(engine, name).await? else {
        return Ok(None);
    };
    let mut out = role.describe();
    let pending = cleanup::pending(engine, name).await?;
    out.insert("pending_cleanups".into(), Value::from(pending.len()));
    let mut response = Response {
        data: out,
        ..Response::default()
    };
    if !pending.is_empty() {
        response = response.warn(format!(
            "account(s) {} are waiting to be deleted: Vault tries again every minute; the host's log says why (rollback)",
            pending.join(", ")
        ));
    }
    Ok(Some(response))
}

async fn delete(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = name(data);
    let _guard = engine.store.lock(LockKey::Role(name)).await;
    if role::load(engine, name).await?.is_none() {
        return Ok(None);
    }
    role::delete(engine, name).await?;
    let now = engine.clock.now().unix_timestamp();
    let mut leased = 0;
    for (key, deadline, _) in list_issued(engine).await? {
        if deadline > now
            && load_issued(engine, &key)
                .await?
                .is_some_and(|issued| issued.account.role == name)
        {
            leased += 1;
        }
    }
    if leased == 0 {
        return Ok(None);
    }
    Ok(Some(Response::default().warn(format!(
        "role {name:?} deleted; {leased} of its accounts still have leases: each is deleted when its lease ends (revoke them all with bao lease revoke -prefix <mount>/creds/{name}); they cannot be renewed"
    ))))
}

async fn list(engine: &Arc<Engine>, _: &Request, _: &FieldData) -> HandlerResult {
    Ok(Some(Response::list(role::list(engine).await?)))
}

async fn creds(engine: &Arc<Engine>, request: &Request, data: &FieldData) -> HandlerResult {
    Ok(Some(create::issue(engine, request, name(data)).await?))
}
