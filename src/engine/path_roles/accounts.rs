//! Dual-account roles (`usernames`) when a role is written: the two
//! accounts and what such a role refuses, DTS copies pinned to one of
//! them, the provider checks that both exist with the same privileges,
//! and the run that follows the write's own on the inactive account.

use std::sync::Arc;

use crate::framework::{Error, FieldData};
use crate::providers::{ErrorKind, ProviderError};

use super::super::calls;
use super::super::cloud::{AccountInfo, DCS_NO_ACL, lacks_acl_accounts};
use super::super::core::Engine;
use super::super::role::{Dependent, Role, Target, Trigger};
use super::super::rotation::execute::{self, RotateRequest};
use super::super::rotation::plan::{self, RunOutcome};
use super::{non_empty, warning_about};

/// The account names a write gives in `usernames` (trimmed, blanks
/// dropped); empty when it gives none.
pub(super) fn requested_usernames(data: &FieldData) -> Vec<String> {
    if !data.provided("usernames") {
        return Vec::new();
    }
    data.list("usernames")
        .unwrap_or_default()
        .iter()
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Sets a new role's `usernames`, or checks that a write leaves an
/// existing role's accounts as they are: `usernames` cannot be changed, and
/// a role never switches between one account and two.
pub(super) fn apply_usernames(
    role: &mut Role,
    creating: bool,
    data: &FieldData,
) -> Result<(), Error> {
    let names = requested_usernames(data);
    let username = non_empty(data, "username").filter(|_| data.provided("username"));
    if username.is_some() && !names.is_empty() {
        return Err(Error::bad_request(
            "give either username (one account) or usernames (two accounts that take turns), not both",
        ));
    }
    if !creating {
        let listed = |names: &[String]| names.join(", ");
        if role.is_dual() {
            if data.provided("usernames") && names != role.usernames {
                return Err(Error::bad_request(format!(
                    "usernames cannot be changed (they are [{}]); delete the role and create it again with the new accounts",
                    listed(&role.usernames)
                )));
            }
            if username.is_some() {
                return Err(Error::bad_request(format!(
                    "a dual-account role cannot become a single-account role: its accounts are usernames [{}]; delete the role and create it again with username",
                    listed(&role.usernames)
                )));
            }
        } else if !names.is_empty() {
            return Err(Error::bad_request(
                "a single-account role cannot become a dual-account role (usernames cannot be added); delete the role and create it again with usernames",
            ));
        }
        return Ok(());
    }
    if names.is_empty() {
        return Ok(());
    }
    match role.target {
        Target::External => {
            return Err(Error::bad_request(
                "usernames needs a target Vault can change (polardb-account or dcs-instance): an external target's password is given to rotate-role, never rotated by account; use username",
            ));
        }
        Target::DcsInstance { .. } if names.iter().any(|name| name == "default") => {
            return Err(Error::bad_request(
                "the DCS default account cannot be one of usernames (its password is the instance's); create two ACL accounts and name those, or use a single-account role for the instance password",
            ));
        }
        _ => {}
    }
    if names.len() != 2 {
        return Err(Error::bad_request(format!(
            "usernames must name exactly two accounts, the two that take turns (got {}: [{}])",
            names.len(),
            names.join(", ")
        )));
    }
    if names[0] == names[1] {
        return Err(Error::bad_request(format!(
            "usernames must name two different accounts (both are {:?}): while one is rotated, clients use the other",
            names[0]
        )));
    }
    role.usernames = names;
    Ok(())
}

/// A dependent of a dual-account role: a DTS copy pinned to one of its two
/// accounts (DRS jobs cannot be).
pub(in super::super) fn parse_dependent(
    spec: &str,
    usernames: &[String],
) -> Result<Dependent, Error> {
    let accounts = usernames.join(" or /");
    let dependent = Dependent::parse(spec, None).map_err(|why| {
        // Valid but for the account: say which ones it may name.
        if Dependent::parse(spec, Some("")).is_ok() {
            Error::bad_request(format!(
                "dependent {spec:?} must name its account: append /{accounts} (a DTS job logs in as one account, and a dual-account role updates it when that account rotates)"
            ))
        } else {
            Error::BadRequest(why)
        }
    })?;
    match &dependent {
        Dependent::Drs { .. } => Err(Error::bad_request(format!(
            "a dual-account role cannot keep DRS copies ({spec:?}): DRS batch-modify-pwd sets the password of whatever user the job logs in as, which Vault can neither choose nor read; use a single-account role"
        ))),
        Dependent::Dts { username, .. } if !usernames.contains(username) => {
            Err(Error::bad_request(format!(
                "dependent {spec:?} is pinned to account {username:?}, which is not one of this role's usernames; end it with /{accounts}"
            )))
        }
        Dependent::Dts { .. } => Ok(dependent),
    }
}

/// A dual-account role's ACL accounts are always reset: `dcs_change_method`
/// has nothing to choose.
pub(super) fn refuse_dcs_change_method(role: &Role) -> Result<(), Error> {
    if role.is_dual() {
        return Err(Error::bad_request(
            "dcs_change_method does not apply to a dual-account role: its ACL accounts are always reset (ResetAclAccountPassWord, which takes no old password); drop dcs_change_method",
        ));
    }
    Ok(())
}

/// A dual-account role learns both passwords by setting them: it neither
/// adopts a password nor skips the import rotation.
pub(super) fn refuse_adoption(role: &Role, data: &FieldData) -> Result<(), Error> {
    if !role.is_dual() {
        return Ok(());
    }
    if data.provided("password") {
        return Err(Error::bad_request(
            "a dual-account role cannot adopt a password in this version (it would have to say which account holds it): drop password; creating the role rotates both accounts, so Vault knows both passwords",
        ));
    }
    if data.bool("skip_import_rotation").unwrap_or(false) {
        return Err(Error::bad_request(
            "a dual-account role cannot skip the import rotation: Vault learns both accounts' passwords only by setting them; drop skip_import_rotation",
        ));
    }
    Ok(())
}

/// What follows a dual-account role's write, on its inactive account,
/// once the write's own run finished:
/// - after a create, the second import rotation: the first set the
///   inactive account (now active), this one sets the other, so Vault
///   knows both passwords and `static-creds` serves both. When the first
///   did not finish (a DCS reset still settling, a deferral), the runner
///   starts the second right after the first finishes;
/// - after a write that added DTS copies, the push of the inactive
///   account's password to the copies pinned to it, so each copy holds its
///   own account's password (the write's push was the active account's,
///   unless only the inactive one's copies were behind). Recorded before
///   it is sent, like every push.
pub(super) async fn follow_up(
    engine: &Arc<Engine>,
    name: &str,
    trigger: Trigger,
    first: &RunOutcome,
) -> Result<Option<String>, Error> {
    let Some(role) = engine.store.load_role(name).await? else {
        return Ok(None);
    };
    let finished = matches!(first, RunOutcome::Rotated { .. }) && role.state.in_flight.is_none();
    let inactive = role.inactive_username().unwrap_or_default().to_owned();
    let (what, waiting) = match trigger {
        Trigger::Create => {
            // Until the first import is confirmed nothing flips: the
            // account it sets is the flight's, or still the inactive one.
            let importing = role
                .state
                .in_flight
                .as_ref()
                .and_then(|f| f.account.clone())
                .unwrap_or_else(|| inactive.clone());
            let other = role.usernames.iter().find(|n| **n != importing);
            let other = other.cloned().unwrap_or_default();
            (
                format!("the second import rotation (account {inactive:?})"),
                format!(
                    "account {other:?} keeps a password Vault did not set until the import rotation of {importing:?} finishes; Vault then rotates {other:?} by itself (the second import rotation), after which static-creds/{name} answers both accounts (last_password is empty until then)"
                ),
            )
        }
        Trigger::Propagate if plan::inactive_copies_behind(&role) => (
            format!("pushing account {inactive:?}'s password to the new dependents pinned to it"),
            format!(
                "the new dependents pinned to account {inactive:?} were not given its password (the push above did not finish); they get one at that account's next rotation"
            ),
        ),
        _ => return Ok(None),
    };
    if !finished {
        return Ok(Some(waiting));
    }
    let outcome = execute::run(engine, name, RotateRequest::new(trigger)).await?;
    Ok(warning_about(name, &what, &outcome))
}

/// Every failure to read the accounts of a new dual-account role is a
/// warning, unless `compare` makes it a 400.
pub(super) async fn check(engine: &Engine, role: &Role) -> Result<Vec<String>, Error> {
    if !role.is_dual() {
        return Ok(Vec::new());
    }
    engine.ensure_writable().await?;
    let names: Vec<&str> = role.usernames.iter().map(String::as_str).collect();
    let Some(described) = calls::describe_accounts(&engine.store, role, &names).await else {
        return Ok(Vec::new());
    };
    compare(&role.target, &names, described)
}

/// The write-time checks of a dual-account role's two accounts: both
/// exist, with the same privileges (PolarDB: account type and sorted
/// database grants; DCS: ACL role), on a DCS instance that has ACL
/// accounts. Accounts that cannot be read otherwise give warnings.
fn compare(
    target: &Target,
    names: &[&str],
    described: Vec<Result<AccountInfo, ProviderError>>,
) -> Result<Vec<String>, Error> {
    let (place, create, grant) = match target {
        Target::PolardbAccount { cluster_id, .. } => (
            format!("cluster {cluster_id}"),
            "CreateAccount",
            "give both the same account type and the same grants on the same databases (GrantAccountPrivilege / RevokeAccountPrivilege)",
        ),
        Target::DcsInstance { instance_id, .. } => (
            format!("DCS instance {instance_id}"),
            "CreateAclAccount",
            "give both ACL accounts the same role (read or write; UpdateAclAccount)",
        ),
        Target::External => return Ok(Vec::new()),
    };
    if described
        .iter()
        .any(|r| matches!(r, Err(e) if lacks_acl_accounts(e)))
    {
        return Err(Error::bad_request(format!(
            "{place} has no ACL accounts (ListAclAccounts answered {DCS_NO_ACL}); dual DCS roles need them (Redis 4.0 and later, per DCS's API reference): upgrade the instance, or use a single-account role"
        )));
    }
    let mut found = Vec::new();
    let mut warnings = Vec::new();
    for (at, (name, result)) in names.iter().zip(described).enumerate() {
        match result {
            Ok(info) => found.push(info),
            Err(error) if error.kind == ErrorKind::NotFound => {
                let other = names.get(1 - at.min(1)).copied().unwrap_or_default();
                return Err(Error::bad_request(format!(
                    "account {name} does not exist on {place}: create it ({create}) with the privileges of {other}, then write the role again"
                )));
            }
            Err(error) => warnings.push(format!(
                "account {name} on {place} could not be read ({error}); the role is saved unchecked: make sure both accounts exist with the same privileges"
            )),
        }
    }
    if let [a, b] = found.as_slice() {
        let polardb = matches!(target, Target::PolardbAccount { .. });
        let same = a.privileges == b.privileges && (!polardb || a.kind == b.kind);
        if !same {
            let side = |info: &AccountInfo| {
                let grants = info
                    .privileges
                    .iter()
                    .map(|(on, privilege)| {
                        if polardb {
                            format!("{on}={privilege}")
                        } else {
                            format!("role {privilege}")
                        }
                    })
                    .collect::<Vec<_>>();
                let grants = if grants.is_empty() {
                    "no grants".to_owned()
                } else {
                    grants.join(", ")
                };
                match (&info.kind, polardb) {
                    (Some(kind), true) => format!("{}: type {kind}, {grants}", info.name),
                    _ => format!("{}: {grants}", info.name),
                }
            };
            return Err(Error::bad_request(format!(
                "accounts {} and {} on {place} have different privileges ({}; {}): clients switch between them at every rotation, so {grant}, then write the role again",
                a.name,
                b.name,
                side(a),
                side(b)
            )));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    // Provider errors are large (request ids, codes); see calls.rs.
    #![allow(clippy::result_large_err)]

    use serde_json::{Value, json};

    use super::super::{apply, static_fields};
    use super::*;
    use crate::engine::role::RoleKind;
    use crate::providers::{ErrorClass, Service};

    fn data(raw: Value) -> FieldData {
        FieldData::parse(
            &static_fields(),
            raw.as_object().expect("an object"),
            &[],
            true,
        )
        .expect("fields parse")
    }

    /// Static roles are the only ones written with these fields.
    fn write(existing: Option<Role>, raw: Value, kind: RoleKind) -> Result<Role, Error> {
        assert_eq!(kind, RoleKind::Static);
        apply(existing, &data(raw))
    }

    /// `base` with the fields of `extra` added.
    fn with(mut base: Value, extra: Value) -> Value {
        let extra = extra.as_object().expect("an object").clone();
        base.as_object_mut().expect("an object").extend(extra);
        base
    }

    fn polardb(extra: Value) -> Value {
        with(
            json!({"target": "polardb-account", "connection": "ali", "cluster_id": "pc-1"}),
            extra,
        )
    }

    fn dcs(extra: Value) -> Value {
        with(
            json!({"target": "dcs-instance", "connection": "hw", "instance_id": "i-1"}),
            extra,
        )
    }

    fn dual() -> Role {
        write(
            None,
            polardb(
                json!({"usernames": ["app_a", "app_b"], "dependents": ["dts:ali/j1/src/app_b"]}),
            ),
            RoleKind::Static,
        )
        .expect("a dual role")
    }

    fn single() -> Role {
        write(None, polardb(json!({"username": "app"})), RoleKind::Static).expect("a role")
    }

    fn refused(result: Result<Role, Error>) -> String {
        match result {
            Err(Error::BadRequest(message)) => message,
            Err(other) => panic!("not a 400: {other:?}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_dual_role_is_written_with_its_two_accounts_and_pinned_copies() {
        let role = dual();
        assert!(role.is_dual());
        assert_eq!(role.username, None);
        assert_eq!(role.usernames, ["app_a", "app_b"]);
        assert_eq!(role.active_username(), Some("app_a"));
        let same = write(
            Some(role),
            json!({"usernames": ["app_a", "app_b"], "rotation_period": "1h"}),
            RoleKind::Static,
        )
        .expect("the same accounts again");
        assert_eq!(same.usernames, ["app_a", "app_b"]);
        let dcs = write(
            None,
            dcs(json!({"usernames": ["u1", "u2"]})),
            RoleKind::Static,
        )
        .expect("a dual DCS role");
        assert!(dcs.is_dual());
    }

    #[test]
    fn dual_role_writes_that_cannot_work_are_refused_with_what_to_do() {
        let cases: Vec<(&str, Option<Role>, Value, RoleKind, &str)> = vec![
            (
                "both",
                None,
                polardb(json!({"username": "app", "usernames": ["a", "b"]})),
                RoleKind::Static,
                "not both",
            ),
            (
                "one",
                None,
                polardb(json!({"usernames": ["a"]})),
                RoleKind::Static,
                "exactly two accounts",
            ),
            (
                "three",
                None,
                polardb(json!({"usernames": ["a", "b", "c"]})),
                RoleKind::Static,
                "exactly two accounts",
            ),
            (
                "equal",
                None,
                polardb(json!({"usernames": ["a", "a"]})),
                RoleKind::Static,
                "two different accounts",
            ),
            (
                "external",
                None,
                json!({"target": "external", "usernames": ["a", "b"]}),
                RoleKind::Static,
                "a target Vault can change",
            ),
            (
                "dcs default",
                None,
                dcs(json!({"usernames": ["default", "b"]})),
                RoleKind::Static,
                "default account",
            ),
            (
                "drs",
                None,
                polardb(json!({"usernames": ["a", "b"], "dependents": ["drs:hw/job/so"]})),
                RoleKind::Static,
                "use a single-account role",
            ),
            (
                "dts unpinned",
                None,
                polardb(json!({"usernames": ["a", "b"], "dependents": ["dts:ali/j/src"]})),
                RoleKind::Static,
                "append /a or /b",
            ),
            (
                "dts third",
                None,
                polardb(json!({"usernames": ["a", "b"], "dependents": ["dts:ali/j/src/c"]})),
                RoleKind::Static,
                "not one of this role's usernames",
            ),
            (
                "dcs method",
                None,
                dcs(json!({"usernames": ["a", "b"], "dcs_change_method": "reset"})),
                RoleKind::Static,
                "drop dcs_change_method",
            ),
            (
                "password",
                None,
                polardb(json!({"usernames": ["a", "b"], "password": "Some-Pass-123"})),
                RoleKind::Static,
                "drop password",
            ),
            (
                "skip import",
                None,
                polardb(json!({"usernames": ["a", "b"], "skip_import_rotation": true})),
                RoleKind::Static,
                "drop skip_import_rotation",
            ),
            (
                "change",
                Some(dual()),
                json!({"usernames": ["app_a", "app_c"]}),
                RoleKind::Static,
                "usernames cannot be changed",
            ),
            (
                "reorder",
                Some(dual()),
                json!({"usernames": ["app_b", "app_a"]}),
                RoleKind::Static,
                "usernames cannot be changed",
            ),
            (
                "drop",
                Some(dual()),
                json!({"usernames": []}),
                RoleKind::Static,
                "usernames cannot be changed",
            ),
            (
                "to single",
                Some(dual()),
                json!({"username": "app_a"}),
                RoleKind::Static,
                "cannot become a single-account role",
            ),
            (
                "to dual",
                Some(single()),
                json!({"usernames": ["app", "app_b"]}),
                RoleKind::Static,
                "cannot become a dual-account role",
            ),
            (
                "update drs",
                Some(dual()),
                json!({"dependents": ["drs:hw/job/ta"]}),
                RoleKind::Static,
                "DRS batch-modify-pwd",
            ),
            (
                "update password",
                Some(dual()),
                json!({"password": "Some-Pass-123"}),
                RoleKind::Static,
                "cannot adopt a password",
            ),
        ];
        for (case, existing, raw, kind, expected) in cases {
            let message = refused(write(existing, raw, kind));
            assert!(message.contains(expected), "{case}: {message}");
        }
    }

    #[test]
    fn single_roles_are_written_as_before() {
        let role = write(
            None,
            polardb(json!({"username": "app", "dependents": ["dts:ali/j/src", "drs:hw/job/so"], "usernames": []})),
            RoleKind::Static,
        )
        .expect("a single role");
        assert!(!role.is_dual());
        assert_eq!(role.username.as_deref(), Some("app"));
        assert_eq!(role.dependents.len(), 2);
        let message = refused(write(None, polardb(json!({})), RoleKind::Static));
        assert!(message.contains("needs username"), "{message}");
    }

    fn info(
        name: &str,
        kind: &str,
        privileges: &[(&str, &str)],
    ) -> Result<AccountInfo, ProviderError> {
        Ok(AccountInfo {
            name: name.into(),
            status: Some("Available".into()),
            kind: Some(kind.into()),
            privileges: privileges
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
        })
    }

    fn failed(kind: ErrorKind, code: Option<&str>) -> Result<AccountInfo, ProviderError> {
        Err(ProviderError::new(
            ErrorClass::Permanent,
            kind,
            Service::Polardb,
            "DescribeAccounts",
            "no",
            &[],
        )
        .with_code(code.map(str::to_owned)))
    }

    #[test]
    fn provider_checks_refuse_missing_accounts_different_privileges_and_no_acl() {
        let polardb = single().target;
        let dcs = write(None, dcs(json!({"username": "default"})), RoleKind::Static)
            .expect("a DCS role")
            .target;
        let names = ["app_a", "app_b"];
        let rw = [("appdb", "ReadWrite")];
        let cases = vec![
            (
                "missing",
                &polardb,
                vec![
                    info("app_a", "Normal", &rw),
                    failed(ErrorKind::NotFound, None),
                ],
                "account app_b does not exist on cluster pc-1: create it (CreateAccount) with the privileges of app_a",
            ),
            (
                "grants",
                &polardb,
                vec![
                    info("app_a", "Normal", &rw),
                    info("app_b", "Normal", &[("appdb", "ReadOnly")]),
                ],
                "app_a: type Normal, appdb=ReadWrite; app_b: type Normal, appdb=ReadOnly",
            ),
            (
                "type",
                &polardb,
                vec![info("app_a", "Normal", &rw), info("app_b", "Super", &rw)],
                "GrantAccountPrivilege",
            ),
            (
                "acl role",
                &dcs,
                vec![
                    info("app_a", "normal", &[("*", "write")]),
                    info("app_b", "normal", &[("*", "read")]),
                ],
                "app_a: role write; app_b: role read",
            ),
            (
                "no acl",
                &dcs,
                vec![
                    failed(ErrorKind::NotFound, Some("DCS.4008")),
                    failed(ErrorKind::NotFound, Some("DCS.4008")),
                ],
                "has no ACL accounts",
            ),
        ];
        for (case, target, described, expected) in cases {
            match compare(target, &names, described) {
                Err(Error::BadRequest(message)) => {
                    assert!(message.contains(expected), "{case}: {message}")
                }
                other => panic!("{case}: {other:?}"),
            }
        }
        let same = compare(
            &polardb,
            &names,
            vec![info("app_a", "Normal", &rw), info("app_b", "Normal", &rw)],
        );
        assert_eq!(same.expect("accepted"), Vec::<String>::new());
        let unreadable = compare(
            &polardb,
            &names,
            vec![
                info("app_a", "Normal", &rw),
                failed(ErrorKind::PermissionDenied, Some("Forbidden")),
            ],
        )
        .expect("accepted with a warning");
        assert_eq!(unreadable.len(), 1);
        assert!(
            unreadable[0].contains("account app_b on cluster pc-1 could not be read"),
            "{unreadable:?}"
        );
    }
}
