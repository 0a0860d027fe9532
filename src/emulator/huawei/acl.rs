//! DCS v2 ACL accounts: list, create, change (old -> new) or reset the
//! password, change the role, delete. Rules: [`crate::emulator::accounts`].
//!
//! Our model where DCS is silent: ACL accounts exist on Redis 4.0 and
//! later (the API reference names 4.0/5.0; the user guide has 6.0 behind
//! a ticket, which the emulator takes as granted); the `default` user is
//! listed but changed only through the instance password calls; a wrong
//! old password of UpdateAclAccountPassWord counts toward a 5-try,
//! 5-minute lock of that account, as the instance's UpdatePassword does
//! (the answer has the same `retry_times_left` / `lock_time_left` fields);
//! create, reset, role change and delete are tasks that leave the account
//! `CREATING`, `UPDATING` or `DELETING` for the instance's
//! `account_settle_seconds`; the old -> new change is immediate. A bad
//! parameter answers `DCS.4961` ("Acl account request param invalid.",
//! DeleteAclAccount's documented 400); as our model so do a taken name, an
//! unknown account id, the `default` user, and a create on a single-node or
//! master/standby instance whose password holds `:` (documented: "normal
//! users cannot be created", with no code). An instance below Redis 4.0
//! answers the appendix's `DCS.4008` and a full instance its generic quota
//! code `DCS.4039`.

use serde_json::{Value, json};

use super::{Answer, Call, DCS_LOCK_SECONDS, DCS_MAX_TRIES, str_field};
use crate::emulator::accounts::{
    ACL_ROLES, acl_account_id, check_acl_account_name, check_acl_password, default_account_id,
    settles_at,
};
use crate::emulator::backing::{BackingChange, BackingOp, RedisChange, Snapshot};
use crate::emulator::codes::{self, Code};
use crate::emulator::http::Reply;
use crate::emulator::model::{AclAccount, DcsInstance, World};
use crate::providers::Secret;

/// One ACL call (the SDK method names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclOp {
    List,
    Create,
    UpdatePassword,
    ResetPassword,
    UpdateRole,
    Delete,
}

impl AclOp {
    pub fn name(self) -> &'static str {
        match self {
            AclOp::List => "dcs.ListAclAccounts",
            AclOp::Create => "dcs.CreateAclAccount",
            AclOp::UpdatePassword => "dcs.UpdateAclAccountPassWord",
            AclOp::ResetPassword => "dcs.ResetAclAccountPassWord",
            AclOp::UpdateRole => "dcs.UpdateAclAccount",
            AclOp::Delete => "dcs.DeleteAclAccount",
        }
    }
}

/// Whether the instance has ACL accounts: Redis 4.0 or later.
fn supports_acl(instance: &DcsInstance) -> bool {
    let major = instance
        .engine_version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(0);
    instance.engine.eq_ignore_ascii_case("Redis") && major >= 4
}

/// "The password of the default user of a single-node or master/standby
/// instance cannot contain colons (:). Otherwise, normal users cannot be
/// created" (CreateAclAccount API reference). DCS's own password rules
/// keep `:` out, so only a seed can make such an instance.
fn colon_blocks_acl_users(instance: &DcsInstance) -> bool {
    matches!(instance.cache_mode.as_str(), "single" | "ha")
        && instance
            .password
            .as_deref()
            .is_some_and(|p| p.contains(':'))
}

fn account_view(instance: &DcsInstance, account: &AclAccount) -> Value {
    json!({
        "account_id": account.id,
        "account_name": account.name,
        "account_type": "normal",
        "instance_id": instance.id,
        "status": account.status,
        "account_role": account.role,
        "description": account.description,
        "error_code": null,
    })
}

fn default_view(instance: &DcsInstance) -> Value {
    json!({
        "account_id": default_account_id(&instance.id),
        "account_name": "default",
        "account_type": "default",
        "instance_id": instance.id,
        "status": "AVAILABLE",
        "account_role": "write",
        "description": "",
        "error_code": null,
    })
}

/// Seconds left of a running lock (clearing a lapsed one).
fn lock_left(account: &mut AclAccount, now: i64) -> Option<i64> {
    match account.locked_until {
        Some(until) if until > now => Some(until - now),
        Some(_) => {
            account.locked_until = None;
            account.failed_attempts = 0;
            None
        }
        None => None,
    }
}

impl Call<'_> {
    fn acl_error(&self, status: u16, code: Code, message: &str) -> Reply {
        self.ctx.error(status, code, message)
    }

    /// `DCS.4961`, "Acl account request param invalid.": the ACL calls'
    /// documented parameter error.
    fn acl_invalid(&self, detail: &str) -> Reply {
        self.acl_error(
            400,
            codes::DCS_ACL_PARAMETER_INVALID,
            &format!("Acl account request param invalid: {detail}."),
        )
    }

    /// The `result` answer of an old -> new password change (the
    /// instance's UpdatePassword and the ACL account's).
    pub(super) fn password_change_reply(
        &self,
        result: &str,
        left: u32,
        lock_secs: Option<i64>,
        message: &str,
    ) -> Reply {
        let minutes_left = lock_secs.map_or(0, |s| (s + 59) / 60);
        let lock_time = if lock_secs.is_some() {
            DCS_LOCK_SECONDS / 60
        } else {
            0
        };
        self.ctx.reply(
            200,
            &json!({
                "lock_time": lock_time.to_string(),
                "result": result,
                "lock_time_left": minutes_left.to_string(),
                "retry_times_left": left.to_string(),
                "message": message,
            }),
        )
    }

    fn queue_redis(&self, world: &mut World, before: Option<DcsInstance>, change: RedisChange) {
        let Some(before) = before else { return };
        let Some(server) = before.backing.clone() else {
            return;
        };
        world.queue_backing(BackingChange {
            ops: vec![BackingOp::Redis(server, change)],
            undo: Some(Snapshot::Instance(Box::new(before))),
            on_failure: self.acl_error(500, codes::DCS_INTERNAL_ERROR, "Internal service error."),
        });
    }

    /// The instance before a change, when a server backs it.
    pub(super) fn backed_instance(&self, world: &World, id: &str) -> Option<DcsInstance> {
        world
            .seed
            .huaweicloud
            .dcs_instances
            .iter()
            .find(|i| i.id == id && i.backing.is_some())
            .cloned()
    }

    /// The instance password on a backed instance: `requirepass`.
    pub(super) fn queue_instance_password(
        &self,
        world: &mut World,
        before: Option<DcsInstance>,
        password: Option<&str>,
    ) {
        self.queue_redis(
            world,
            before,
            RedisChange::SetInstancePassword(password.map(Secret::new)),
        );
    }

    pub(super) fn dcs_acl(
        &self,
        world: &mut World,
        project: &str,
        id: &str,
        account_id: Option<&str>,
        op: AclOp,
    ) -> Answer {
        if matches!(
            op,
            AclOp::Create | AclOp::UpdatePassword | AclOp::ResetPassword
        ) {
            self.remember_body_secrets(
                world,
                &["account_password", "old_password", "new_password"],
            );
        }
        let before = self.backed_instance(world, id);
        let instance = self.dcs_instance(world, project, id)?;
        if !supports_acl(instance) {
            return Err(self.acl_error(
                400,
                codes::DCS_ENGINE_VERSION_NOT_SUPPORTED,
                "The selected cache engine version is not supported: ACL accounts need Redis 4.0 or later.",
            ));
        }
        if op == AclOp::List {
            let mut accounts = vec![default_view(instance)];
            accounts.extend(
                instance
                    .acl_accounts
                    .iter()
                    .map(|a| account_view(instance, a)),
            );
            return Ok(self.ctx.reply(200, &json!({ "accounts": accounts })));
        }
        let instance = self.running(instance)?;
        if op == AclOp::Create {
            let (reply, change) = self.create_acl_account(instance)?;
            self.queue_redis(world, before, change);
            return Ok(reply);
        }
        let account_id = account_id.unwrap_or_default();
        if account_id == default_account_id(&instance.id) {
            return Err(self.acl_invalid(
                "account_id is the default user, whose password is the instance password (UpdatePassword, ResetPassword)",
            ));
        }
        let settle = instance.account_settle_seconds;
        let instance_id = instance.id.clone();
        let index = instance
            .acl_accounts
            .iter()
            .position(|a| a.id == account_id)
            .ok_or_else(|| self.acl_invalid("no ACL account has this account_id"))?;
        let account = &mut instance.acl_accounts[index];
        if op == AclOp::Delete && account.status == "DELETING" {
            return Ok(self.ctx.reply(200, &json!({})));
        }
        if account.status != "AVAILABLE" {
            return Err(self.acl_error(
                400,
                codes::DCS_STATE_NOT_SUPPORTED,
                &format!(
                    "The account is {}: try again when it is available.",
                    account.status
                ),
            ));
        }
        let (reply, change) = match op {
            AclOp::UpdatePassword => self.modify_acl_password(account)?,
            AclOp::ResetPassword => self.reset_acl_password(account, settle)?,
            AclOp::UpdateRole => self.update_acl_role(account, &instance_id, settle)?,
            AclOp::Delete => {
                account.status = "DELETING".into();
                account.settles_at_ms = settles_at(self.now, settle);
                let change = RedisChange::DeleteUser {
                    name: account.name.clone(),
                };
                (self.ctx.reply(200, &json!({})), Some(change))
            }
            AclOp::List | AclOp::Create => unreachable!("answered above"),
        };
        if let Some(change) = change {
            self.queue_redis(world, before, change);
        }
        Ok(reply)
    }

    fn create_acl_account(
        &self,
        instance: &mut DcsInstance,
    ) -> Result<(Reply, RedisChange), Reply> {
        let body = self.body(codes::DCS_INVALID_BODY)?;
        let name = str_field(&body, "account_name").unwrap_or_default();
        check_acl_account_name(name)
            .map_err(|reason| self.acl_invalid(&format!("account_name: {reason}")))?;
        let role = str_field(&body, "account_role").unwrap_or_default();
        if !ACL_ROLES.contains(&role) {
            return Err(self.acl_invalid("account_role must be read or write"));
        }
        let description = str_field(&body, "description").unwrap_or_default();
        if description.chars().count() > 1024 {
            return Err(self.acl_invalid("description: at most 1,024 characters"));
        }
        let password = str_field(&body, "account_password").unwrap_or_default();
        check_acl_password(name, password).map_err(|reason| {
            self.acl_error(
                400,
                codes::DCS_INVALID_PASSWORD,
                &format!("Invalid password: {reason}."),
            )
        })?;
        if name == "default" || instance.acl_accounts.iter().any(|a| a.name == name) {
            return Err(self.acl_invalid("account_name: an account of that name exists"));
        }
        if colon_blocks_acl_users(instance) {
            return Err(self.acl_invalid(
                "the default user's password contains ':', so a single-node or master/standby instance cannot have normal users",
            ));
        }
        if instance.acl_accounts.len() >= instance.acl_account_limit {
            return Err(self.acl_error(
                400,
                codes::DCS_QUOTA_REACHED,
                &format!(
                    "The quota limit has been reached: the instance already holds its {} ACL accounts.",
                    instance.acl_account_limit
                ),
            ));
        }
        instance.acl_accounts.push(AclAccount {
            id: acl_account_id(&instance.id, name),
            name: name.to_owned(),
            password: password.to_owned(),
            role: role.to_owned(),
            description: description.to_owned(),
            status: "CREATING".into(),
            settles_at_ms: settles_at(self.now, instance.account_settle_seconds),
            changes: 0,
            failed_attempts: 0,
            locked_until: None,
        });
        let change = RedisChange::SetUser {
            name: name.to_owned(),
            password: Secret::new(password),
            role: role.to_owned(),
        };
        Ok((self.ctx.reply(200, &json!({})), change))
    }

    fn new_acl_password(&self, account: &AclAccount, body: &Value) -> Result<String, Reply> {
        let password = str_field(body, "new_password").unwrap_or_default();
        check_acl_password(&account.name, password)
            .map(|()| password.to_owned())
            .map_err(|reason| {
                self.acl_error(
                    400,
                    codes::DCS_INVALID_PASSWORD,
                    &format!("Invalid password: {reason}."),
                )
            })
    }

    fn modify_acl_password(
        &self,
        account: &mut AclAccount,
    ) -> Result<(Reply, Option<RedisChange>), Reply> {
        let body = self.body(codes::DCS_INVALID_PASSWORD)?;
        let old = str_field(&body, "old_password").unwrap_or_default();
        let new = self.new_acl_password(account, &body)?;
        if new == old {
            return Err(self.acl_error(
                400,
                codes::DCS_INVALID_PASSWORD,
                "Invalid password: the new password must differ from the old one.",
            ));
        }
        let now = self.now.unix_timestamp();
        if let Some(left) = lock_left(account, now) {
            let reply = self.password_change_reply(
                "locked",
                0,
                Some(left),
                "Password operations are locked after too many wrong passwords.",
            );
            return Ok((reply, None));
        }
        if account.password != old {
            account.failed_attempts += 1;
            let reply = if account.failed_attempts >= DCS_MAX_TRIES {
                account.failed_attempts = 0;
                account.locked_until = Some(now + DCS_LOCK_SECONDS);
                self.password_change_reply(
                    "locked",
                    0,
                    Some(DCS_LOCK_SECONDS),
                    "The old password is incorrect; password operations are locked for 5 minutes.",
                )
            } else {
                self.password_change_reply(
                    "passwordFailed",
                    DCS_MAX_TRIES - account.failed_attempts,
                    None,
                    "The old password is incorrect.",
                )
            };
            return Ok((reply, None));
        }
        account.password = new.clone();
        account.failed_attempts = 0;
        account.changes += 1;
        let change = RedisChange::SetUserPassword {
            name: account.name.clone(),
            password: Secret::new(new),
        };
        let reply = self.password_change_reply(
            "success",
            DCS_MAX_TRIES,
            None,
            "Password changed successfully.",
        );
        Ok((reply, Some(change)))
    }

    fn reset_acl_password(
        &self,
        account: &mut AclAccount,
        settle: f64,
    ) -> Result<(Reply, Option<RedisChange>), Reply> {
        let body = self.body(codes::DCS_INVALID_PASSWORD)?;
        let answer = |code: &str, message: &str| {
            self.ctx.reply(
                200,
                &json!({"retry_times_left": "5", "lock_time": "0", "lock_time_left": "0",
                    "code": code, "message": message}),
            )
        };
        if lock_left(account, self.now.unix_timestamp()).is_some() {
            return Ok((answer("3", "account is locked"), None));
        }
        let new = self.new_acl_password(account, &body)?;
        account.password = new.clone();
        account.failed_attempts = 0;
        account.changes += 1;
        account.status = "UPDATING".into();
        account.settles_at_ms = settles_at(self.now, settle);
        let change = RedisChange::SetUserPassword {
            name: account.name.clone(),
            password: Secret::new(new),
        };
        Ok((answer("1", "success"), Some(change)))
    }

    fn update_acl_role(
        &self,
        account: &mut AclAccount,
        instance_id: &str,
        settle: f64,
    ) -> Result<(Reply, Option<RedisChange>), Reply> {
        let body = self.body(codes::DCS_INVALID_BODY)?;
        let role = str_field(&body, "account_role").unwrap_or_default();
        if !ACL_ROLES.contains(&role) {
            return Err(self.acl_invalid("account_role must be read or write"));
        }
        account.role = role.to_owned();
        account.status = "UPDATING".into();
        account.settles_at_ms = settles_at(self.now, settle);
        let change = RedisChange::SetUserRole {
            name: account.name.clone(),
            role: role.to_owned(),
        };
        let job_id = acl_account_id(
            instance_id,
            &format!("role-{}-{}", account.name, account.changes),
        );
        let reply = self
            .ctx
            .reply(200, &json!({"instance_id": instance_id, "job_id": job_id}));
        Ok((reply, Some(change)))
    }
}
