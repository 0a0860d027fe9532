//! Library sets, as Vault's LDAP engine names them: `library/:name` (a
//! pool of service accounts on one PolarDB cluster or DCS instance),
//! `library/:name/check-out` (lend the first free one under a lease),
//! `library/:name/check-in` (the borrower gives it back; it rotates),
//! `library/manage/:name/check-in` (anyone the policy lets through),
//! `library/:name/status`, and ours: `library/:name/rotate` and
//! `library/:name/history`. `library/` lists the sets.
//!
//! Each service account is a role record (`library::member_role`), so its
//! rotation at check-in, lease end or `rotate` is the ordinary saga.
//!
//! One file per path group: [`set`] (`library/:name`, `library/`), with
//! what a write asks for ([`settings`]) and the checks of accounts joining
//! a set ([`joining`]); [`check_out`], [`check_in`] (both check-in paths),
//! [`lease`] (renew and revoke of a check-out), [`status`] (`status` and
//! `history`) and [`rotate`]. This file holds the path table and what the
//! groups share.

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

mod check_in;
mod check_out;
mod joining;
mod lease;
mod rotate;
mod set;
mod settings;
mod status;

use crate::framework::{Error, Field, FieldData, Operation, Path, Response, SecretType};
use crate::handler;

use super::core::Engine;
use super::library::{self, LibrarySet};
use super::path_roles;
use super::role::{Role, RoleKind, TargetKind};
use super::rotation::plan::RunOutcome;

/// The secret type of a check-out's lease (the LDAP engine's name).
pub const SECRET_TYPE: &str = "checkout-creds";

/// The targets a set can lend accounts of.
const TARGETS: [&str; 2] = [
    TargetKind::PolardbAccount.as_str(),
    TargetKind::DcsInstance.as_str(),
];

fn name_field() -> Field {
    Field::string("name", "Name of the library set.")
}

fn accounts_field(description: &'static str) -> Field {
    Field::list("service_account_names", description).max_len(128)
}

fn set_fields() -> Vec<Field> {
    vec![
        name_field(),
        Field::string("target", "Where the service accounts live: polardb-account (accounts of one PolarDB cluster) or dcs-instance (one DCS instance: ACL accounts, and default for the instance password). Cannot be changed.")
            .one_of(&TARGETS)
            .required(),
        Field::string("connection", "Connection (config/:name) that reaches the target; it must allow the set's name (allowed_roles). Cannot be changed.").max_len(128),
        Field::string("cluster_id", "polardb-account: the PolarDB cluster id (pc-...). Cannot be changed.").max_len(128),
        Field::string("instance_id", "dcs-instance: the DCS instance id. Cannot be changed.").max_len(128),
        accounts_field(
            "The service accounts to lend, in check-out order (the first free one is lent): PolarDB account names on the cluster, or DCS ACL account names on the instance, where default means the instance password (Redis's default user). Each must exist. Adding one rotates it (Vault sets its password); removing one leaves its password as it is and is refused while it is checked out.",
        )
        .required(),
        Field::duration("ttl", "How long a check-out lasts before it must be renewed (default 24h; 0: the mount's default lease TTL)."),
        Field::duration("max_ttl", "How long a check-out may last with renewals (default 24h; 0: the mount's max lease TTL, which also caps any value)."),
        Field::bool("disable_check_in_enforcement", "Let anyone who may write library/:name/check-in check in any service account, not only its borrower.")
            .default(false),
        Field::string("password_policy", "A Vault password policy to generate passwords with; it is checked against the target's rules when the set is written.").max_len(128),
        Field::list(
            "dependents",
            "Copies of a service account's password to keep in step: dts:<connection>/<dts_job_id>/<src|dest>/<service_account_name> (the account may be left out in a set of one), or, in a set of one only, drs:<connection>/<job_id>/<so|ta>.",
        )
        .max_len(256),
        Field::bool("take_over", "When adding service accounts: take those whose ownership marker names another Vault mount (that mount's role or set then reports claimed_elsewhere drift).")
            .default(false),
    ]
}

fn check_in_fields() -> Vec<Field> {
    vec![
        name_field(),
        accounts_field(
            "The service accounts to check in (default: the caller's own check-outs in this set). Accounts already in are skipped.",
        ),
    ]
}

const SET_HELP: &str = "\
A library set lends service accounts, one borrower at a time: POST library/:name/check-out gives the first free \
one with its password under a lease (renewable up to max_ttl); library/:name/check-in (its borrower) or \
library/manage/:name/check-in (anyone allowed there) gives it back, and so does the end of its lease. Every return \
rotates the account, so the password lent stops working. Creating the set, or adding an account, rotates that \
account; deleting it is refused while any account is out, and leaves the passwords as they are. Reads show the \
settings and each account's state (never a password).";

pub fn paths() -> Vec<Path<Engine>> {
    vec![
        // Before library/:name/..., as the LDAP engine orders them.
        Path::new("library/manage/{name}/check-in")
            .fields(check_in_fields())
            .on(Operation::Update, "Check in service accounts, whoever borrowed them.", handler!(check_in::manage_check_in))
            .help(
                "Check in service accounts of a set whoever borrowed them.",
                "The privileged check-in: no borrower check (a policy on library/manage/* decides who may). Without \
                 service_account_names it checks in the caller's own check-outs, else the one account out; name them \
                 when several are out. Each account checked in rotates. Returns check_ins.",
            ),
        Path::new("library/{name}/check-out")
            .fields([
                name_field(),
                Field::duration("ttl", "A shorter lending period than the set's ttl (a longer one is cut to it)."),
            ])
            .on(Operation::Update, "Check out a free service account of the set.", handler!(check_out::check_out))
            .help(
                "Check out a service account of a library set.",
                "Lends the first free service account of the set, with its password, under a lease of the set's ttl \
                 (or the shorter ttl asked for), renewable up to max_ttl. Returns service_account_name and password. \
                 When none is free: 400, saying when the first lease ends. The borrower is the caller's entity, or its \
                 token when it has none.",
            ),
        Path::new("library/{name}/check-in")
            .fields(check_in_fields())
            .on(Operation::Update, "Check in service accounts you borrowed.", handler!(check_in::check_in))
            .help(
                "Check in service accounts of a library set.",
                "Gives service accounts back: each rotates (the password lent stops working) and is free again. Only \
                 the borrower (the same entity, or the same token) may check an account in, unless the set has \
                 disable_check_in_enforcement; see library/manage/:name/check-in. Without service_account_names: the \
                 caller's own check-outs. Returns check_ins, the accounts this call checked in. The lease of an account \
                 checked in this way ends harmlessly: its revocation or expiry changes nothing, and it cannot be \
                 renewed.",
            ),
        Path::new("library/{name}/status")
            .fields([name_field()])
            .on(Operation::Read, "Read which service accounts are free.", handler!(status::status))
            .help(
                "Which service accounts of a set are free, and who has the others.",
                "One entry per service account: available, and for an account out borrower_entity_id or \
                 borrower_client_token (a hash of the borrower's token under a key of this mount, never the token) \
                 and expires_at; an account neither out nor available (being rotated, failed) shows status and \
                 status_reason.",
            ),
        Path::new("library/{name}/rotate")
            .fields([
                name_field(),
                accounts_field("The service accounts to rotate (default: every one not checked out)."),
            ])
            .on(Operation::Update, "Rotate service accounts that are not checked out.", handler!(rotate::rotate))
            .help(
                "Rotate service accounts of a set now.",
                "Runs the rotation saga on each service account named (default: all that are in), as a check-in \
                 would: the way out for an account whose rotation failed or whose target drifted. A checked-out \
                 account is refused when named (check it in instead, which rotates it). Returns rotated; an account \
                 whose rotation did not finish is named in a warning.",
            ),
        Path::new("library/{name}/history")
            .fields([name_field()])
            .on(Operation::Read, "Read the last rotations of each service account.", handler!(status::read_history))
            .help(
                "The last rotations of each service account of a set.",
                "service_accounts: for each account its last 20 rotations, newest first, as history/:name shows a \
                 role's (trigger create, check-in, lease-end, manual, propagate...). Never a password.",
            ),
        Path::new("library/{name}")
            .fields(set_fields())
            .on(Operation::Create, "Create a library set.", handler!(set::write_set))
            .on(Operation::Update, "Update a library set.", handler!(set::write_set))
            .on(Operation::Read, "Read a library set and its service accounts' state.", handler!(set::read_set))
            .on(Operation::Delete, "Delete a library set (no account may be checked out).", handler!(set::delete_set))
            .existence(handler!(set::set_exists))
            .help("Service accounts lent one borrower at a time.", SET_HELP),
        Path::new("library/")
            .on(Operation::List, "List library sets.", handler!(set::list_sets))
            .help("List library sets.", "Returns the names of all library sets."),
    ]
}

pub fn secret_types() -> Vec<SecretType<Engine>> {
    vec![SecretType {
        name: SECRET_TYPE,
        renew: handler!(lease::renew),
        revoke: handler!(lease::revoke),
    }]
}

fn missing_set(name: &str) -> Error {
    Error::bad_request(format!(
        "library set {name:?} does not exist (write library/{name} first)"
    ))
}

async fn load_set(engine: &Engine, name: &str) -> Result<Option<LibrarySet>, Error> {
    library::load(engine.store.storage.as_ref(), name).await
}

/// The record of `account` of `set`, if it is one.
async fn load_member(engine: &Engine, set: &str, account: &str) -> Result<Option<Role>, Error> {
    Ok(engine
        .store
        .load_role(&library::member_role(set, account))
        .await?
        .filter(|role| role.kind == RoleKind::Library))
}

/// The account names a request gives (trimmed, blanks dropped, each once).
fn requested_accounts(data: &FieldData) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in data.list("service_account_names").unwrap_or_default() {
        let name = name.trim();
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// What a rotation run for a write or a check-in tells the caller.
fn outcome_warning(set: &str, account: &str, what: &str, outcome: &RunOutcome) -> Option<String> {
    path_roles::run_warning(
        &format!("service account {account:?} of library set {set:?}: "),
        what,
        outcome,
        ", and the account is lent again after that",
        &format!(
            "read library/{set} for its state, and run library/{set}/rotate service_account_names={account} once fixed"
        ),
    )
}

/// `response` with `warnings`.
fn with_warnings(response: Response, warnings: Vec<String>) -> Response {
    warnings
        .into_iter()
        .fold(response, |response, text| response.warn(text))
}
