//! PolarDB account lifecycle: CreateAccount, DeleteAccount,
//! GrantAccountPrivilege, RevokeAccountPrivilege, and the backing-server
//! side of every account change. Rules: [`crate::emulator::accounts`].
//!
//! CreateAccount, DeleteAccount and GrantAccountPrivilege need a `Running`
//! cluster (the references of the last two say so; Alibaba's Terraform
//! provider retries all three on the cluster-status codes) and answer
//! `OperationDenied.DBClusterStatus` (403, PolarDB's error-code list)
//! otherwise, before any other check.
//!
//! Our model where PolarDB is silent: a `Deleting` account answers a
//! repeated DeleteAccount like the first (nothing more happens); a
//! `Creating` or `Deleting` account refuses other changes with
//! `IncorrectDBClusterState`; an account created without `AccountType`
//! is `Super`, as the API reference says; a cluster holds any number of
//! accounts unless its seed sets `account_limit`. Codes from PolarDB's
//! client error-code table: `InvalidParameter` for a parameter without a
//! code of its own, `QuotaExceeded.AccountName` for a full cluster,
//! `InvalidDBName.NotFound` for an unknown database and
//! `OperationDenied.AccountType` for privileges on a privileged account.

use serde_json::json;

use super::{Answer, Call};
use crate::emulator::accounts::{
    POLARDB_PRIVILEGES, POLARDB_RUNNING, check_polardb_account_name, check_polardb_description,
    settles_at,
};
use crate::emulator::backing::{BackingChange, BackingOp, PgChange, Snapshot};
use crate::emulator::codes;
use crate::emulator::http::Reply;
use crate::emulator::model::{PolarAccount, PolarCluster, PolarPrivilege, World};
use crate::emulator::rules::POLARDB;
use crate::providers::Secret;

/// A comma-separated list parameter (`DBName`, `AccountPrivilege`).
fn list(value: Option<&str>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(|item| item.trim().to_owned())
                .filter(|item| !item.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

impl Call<'_> {
    /// A parameter without a documented code of its own (`AccountType`,
    /// `AccountDescription`, `AccountPrivilege`): the documented generic.
    fn invalid(&self, message: &str) -> Reply {
        self.ctx
            .error(400, codes::POLARDB_INVALID_PARAMETER, message)
    }

    /// A database of `DBName` the cluster does not have.
    fn unknown_database(&self, missing: &str) -> Reply {
        self.ctx.error(
            404,
            codes::POLARDB_DB_NAME_NOT_FOUND,
            &format!("The specified database {missing} does not exist."),
        )
    }

    fn account_not_available(&self) -> Reply {
        self.ctx.error(
            403,
            codes::INCORRECT_DB_CLUSTER_STATE,
            "Current DB cluster state does not support this operation.",
        )
    }

    /// The cluster of an account change, which must be `Running`.
    fn running_cluster<'w>(
        &self,
        world: &'w mut World,
        cluster_id: &str,
    ) -> Result<&'w mut PolarCluster, Reply> {
        let cluster = world
            .polardb_cluster_mut(cluster_id)
            .ok_or_else(|| self.cluster_not_found())?;
        if cluster.status != POLARDB_RUNNING {
            return Err(self.ctx.error(
                403,
                codes::POLARDB_CLUSTER_STATUS_DENIED,
                &format!(
                    "The operation is not permitted due to Cluster status: the cluster is {}.",
                    cluster.status
                ),
            ));
        }
        Ok(cluster)
    }

    fn unknown_account(&self) -> Reply {
        self.ctx.error(
            404,
            codes::INVALID_ACCOUNT_NAME_NOT_FOUND,
            "The specified account name does not exist.",
        )
    }

    /// `DBName` with one privilege per database (`AccountPrivilege`, or
    /// `ReadWrite` for each when it is left out), every database one of
    /// the cluster's.
    fn grants(&self, cluster: &PolarCluster) -> Result<Vec<PolarPrivilege>, Reply> {
        let databases = list(self.param("DBName"));
        let mut privileges = list(self.param("AccountPrivilege"));
        if privileges.is_empty() {
            privileges = vec!["ReadWrite".to_owned(); databases.len()];
        }
        if privileges.len() != databases.len() {
            return Err(self
                .invalid("AccountPrivilege must hold one privilege for each database of DBName."));
        }
        if let Some(bad) = privileges
            .iter()
            .find(|p| !POLARDB_PRIVILEGES.contains(&p.as_str()))
        {
            return Err(self.invalid(&format!(
                "The specified parameter AccountPrivilege is not valid: {bad}."
            )));
        }
        if let Some(missing) = databases.iter().find(|d| !cluster.databases.contains(d)) {
            return Err(self.unknown_database(missing));
        }
        Ok(databases
            .into_iter()
            .zip(privileges)
            .map(|(db_name, privilege)| PolarPrivilege { db_name, privilege })
            .collect())
    }

    /// Queues `changes` for the cluster's server, if it has one, with the
    /// cluster as it was before the call.
    fn queue_postgres(
        &self,
        world: &mut World,
        before: Option<PolarCluster>,
        changes: Vec<PgChange>,
    ) {
        let Some(before) = before else { return };
        let Some(server) = before.backing.clone() else {
            return;
        };
        world.queue_backing(BackingChange {
            ops: changes
                .into_iter()
                .map(|change| BackingOp::Postgres(server.clone(), change))
                .collect(),
            undo: Some(Snapshot::Cluster(Box::new(before))),
            on_failure: self.ctx.error(
                500,
                codes::INTERNAL_ERROR,
                "The request processing has failed due to some unknown error, exception or failure.",
            ),
        });
    }

    /// The cluster before a change, when a server backs it.
    pub(super) fn backed_cluster(&self, world: &World, cluster_id: &str) -> Option<PolarCluster> {
        world
            .polardb_cluster(cluster_id)
            .filter(|c| c.backing.is_some())
            .cloned()
    }

    /// ModifyAccountPassword on a backed cluster: the role's new password.
    pub(super) fn queue_password_change(
        &self,
        world: &mut World,
        before: Option<PolarCluster>,
        account: &str,
        password: &str,
    ) {
        self.queue_postgres(
            world,
            before,
            vec![PgChange::SetPassword {
                name: account.to_owned(),
                password: Secret::new(password),
            }],
        );
    }

    pub(super) fn create_account(&self, world: &mut World) -> Answer {
        let cluster_id = self.required("DBClusterId")?;
        let name = self.required("AccountName")?;
        let password = self.required("AccountPassword")?;
        world.remember(password);
        let before = self.backed_cluster(world, cluster_id);
        let cluster = self.running_cluster(world, cluster_id)?;
        let token = self.param("ClientToken");
        if let Some(token) = token
            && cluster.client_tokens.iter().any(|t| t == token)
        {
            // The documented idempotence: the same token, the same answer.
            return Ok(self.ctx.ok(json!({})));
        }
        check_polardb_account_name(name).map_err(|reason| {
            self.ctx.error(
                400,
                codes::INVALID_ACCOUNT_NAME_MALFORMED,
                &format!("The specified parameter AccountName is not valid: {reason}."),
            )
        })?;
        if POLARDB.check(password).is_err() {
            return Err(self.ctx.error(
                400,
                codes::INVALID_ACCOUNT_PASSWORD_MALFORMED,
                "The specified parameter AccountPassword is not valid.",
            ));
        }
        let account_type = self.param("AccountType").unwrap_or("Super");
        if !matches!(account_type, "Normal" | "Super") {
            return Err(self.invalid("The specified parameter AccountType is not valid."));
        }
        let description = self.param("AccountDescription").unwrap_or_default();
        if !description.is_empty() {
            check_polardb_description(description).map_err(|reason| {
                self.invalid(&format!(
                    "The specified parameter AccountDescription is not valid: {reason}."
                ))
            })?;
        }
        let grants = self.grants(cluster)?;
        if cluster.accounts.iter().any(|a| a.name == name) {
            return Err(self.ctx.error(
                400,
                codes::INVALID_ACCOUNT_NAME_DUPLICATE,
                "The specified account name already exists.",
            ));
        }
        if let Some(limit) = cluster.account_limit
            && cluster.accounts.len() >= limit
        {
            return Err(self.ctx.error(
                403,
                codes::POLARDB_ACCOUNT_QUOTA_EXCEEDED,
                &format!(
                    "The quota of account exceeds: the cluster already holds its {limit} accounts."
                ),
            ));
        }
        let mut changes = vec![PgChange::CreateRole {
            name: name.to_owned(),
            password: Secret::new(password),
            privileged: account_type == "Super",
        }];
        changes.extend(grants.iter().map(|grant| PgChange::Grant {
            role: name.to_owned(),
            database: grant.db_name.clone(),
            privilege: grant.privilege.clone(),
        }));
        cluster.accounts.push(PolarAccount {
            name: name.to_owned(),
            password: password.to_owned(),
            status: "Creating".into(),
            account_type: account_type.to_owned(),
            description: description.to_owned(),
            changes: 0,
            new_passwords: 0,
            privileges: grants,
            settles_at_ms: settles_at(self.now, cluster.account_settle_seconds),
        });
        if let Some(token) = token {
            cluster.client_tokens.push(token.to_owned());
        }
        self.queue_postgres(world, before, changes);
        Ok(self.ctx.ok(json!({})))
    }

    pub(super) fn delete_account(&self, world: &mut World) -> Answer {
        let cluster_id = self.required("DBClusterId")?;
        let name = self.required("AccountName")?;
        let before = self.backed_cluster(world, cluster_id);
        let cluster = self.running_cluster(world, cluster_id)?;
        let databases = cluster.databases.clone();
        let settle = cluster.account_settle_seconds;
        let account = cluster
            .accounts
            .iter_mut()
            .find(|a| a.name == name)
            .ok_or_else(|| self.unknown_account())?;
        match account.status.as_str() {
            "Deleting" => return Ok(self.ctx.ok(json!({}))),
            "Available" => {}
            _ => return Err(self.account_not_available()),
        }
        account.status = "Deleting".into();
        account.settles_at_ms = settles_at(self.now, settle);
        self.queue_postgres(
            world,
            before,
            vec![PgChange::DropRole {
                name: name.to_owned(),
                databases,
            }],
        );
        Ok(self.ctx.ok(json!({})))
    }

    /// The account a privilege call is about: available and standard.
    fn standard_account<'w>(
        &self,
        cluster: &'w mut PolarCluster,
        name: &str,
    ) -> Result<&'w mut PolarAccount, Reply> {
        let account = cluster
            .accounts
            .iter_mut()
            .find(|a| a.name == name)
            .ok_or_else(|| self.unknown_account())?;
        if account.status != "Available" {
            return Err(self.account_not_available());
        }
        if account.account_type != "Normal" {
            return Err(self.ctx.error(
                403,
                codes::POLARDB_ACCOUNT_TYPE_DENIED,
                "The operation is not permitted due to type of account: privileges are granted to standard accounts only.",
            ));
        }
        Ok(account)
    }

    pub(super) fn grant_account_privilege(&self, world: &mut World) -> Answer {
        let cluster_id = self.required("DBClusterId")?;
        let name = self.required("AccountName")?;
        self.required("DBName")?;
        self.required("AccountPrivilege")?;
        let before = self.backed_cluster(world, cluster_id);
        let cluster = self.running_cluster(world, cluster_id)?;
        let grants = self.grants(cluster)?;
        let account = self.standard_account(cluster, name)?;
        let mut changes = Vec::new();
        for grant in grants {
            // A new privilege on a database replaces the old one.
            changes.push(PgChange::Revoke {
                role: name.to_owned(),
                database: grant.db_name.clone(),
            });
            changes.push(PgChange::Grant {
                role: name.to_owned(),
                database: grant.db_name.clone(),
                privilege: grant.privilege.clone(),
            });
            account.privileges.retain(|p| p.db_name != grant.db_name);
            account.privileges.push(grant);
        }
        self.queue_postgres(world, before, changes);
        Ok(self.ctx.ok(json!({})))
    }

    pub(super) fn revoke_account_privilege(&self, world: &mut World) -> Answer {
        let cluster_id = self.required("DBClusterId")?;
        let name = self.required("AccountName")?;
        let databases = list(Some(self.required("DBName")?));
        let before = self.backed_cluster(world, cluster_id);
        let cluster = world
            .polardb_cluster_mut(cluster_id)
            .ok_or_else(|| self.cluster_not_found())?;
        if let Some(missing) = databases.iter().find(|d| !cluster.databases.contains(d)) {
            return Err(self.unknown_database(missing));
        }
        let account = self.standard_account(cluster, name)?;
        account
            .privileges
            .retain(|p| !databases.contains(&p.db_name));
        let changes = databases
            .into_iter()
            .map(|database| PgChange::Revoke {
                role: name.to_owned(),
                database,
            })
            .collect();
        self.queue_postgres(world, before, changes);
        Ok(self.ctx.ok(json!({})))
    }
}
