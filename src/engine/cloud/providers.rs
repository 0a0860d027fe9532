//! [`Cloud`] over the provider clients: the only module of the engine that
//! names a provider's client or request type. One session per connection:
//! one pooled HTTP client, one pacing bucket, and the readers and batchers
//! that coalesce the calls of concurrent rotations.
//!
//! Per-lease accounts go through the same clients, so they share the
//! connection's pacing and its retry policy.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::providers::alicloud::client::{
    AlibabaClient, AlibabaConfig, SignatureVersion as AliSignature,
};
use crate::providers::alicloud::dts::{DtsEndpoint as AliDtsEndpoint, ModifyDtsJobPasswordRequest};
use crate::providers::alicloud::polardb::accounts::{
    AccountPrivilege, CreateAccountRequest, DatabaseGrant, DeleteAccountRequest,
    GrantAccountPrivilegeRequest, PolarDbAccountType,
};
use crate::providers::alicloud::polardb::{
    DescribeAccountsPage, DescribeDatabasesPage, MAX_ACCOUNTS_PAGE, MAX_DATABASES_PAGE,
    ModifyAccountDescriptionRequest, ModifyAccountPasswordRequest,
};
use crate::providers::huaweicloud::client::{HuaweiClient, HuaweiConfig};
use crate::providers::huaweicloud::dcs::UpdatePasswordRequest;
use crate::providers::huaweicloud::dcs::acl::{
    AclAccount, AclAccountRole, CreateAclAccountRequest, ListAclAccountsResponse,
};
use crate::providers::huaweicloud::drs::{DrsEndpointType, DrsPasswordChange};
use crate::providers::{
    ConnectionOptions, Credentials, ErrorClass, ErrorKind, ProviderError, Secret, Service,
};

use super::super::connection::{Connection, Provider, SignatureVersion};
use super::super::role::{Dependent, DrsEndpoint, DtsEndpoint, Target};
use super::batch::DrsBatcher;
use super::readers::{AccountReader, InstanceReader, describe_account, find_account};
use super::{
    AccountInfo, AccountKind, AclRole, ChangeMethod, Cloud, JobState, NewAccount, Session,
    TargetState,
};

/// The real clouds.
pub struct ProviderCloud;

impl Cloud for ProviderCloud {
    fn open(&self, connection: &Connection) -> Result<Arc<dyn Session>, ProviderError> {
        Ok(match connection.provider {
            Provider::Alicloud => {
                let client = AlibabaClient::new(AlibabaConfig {
                    credentials: credentials(connection),
                    options: options(connection),
                    signature: match connection.signature_version {
                        SignatureVersion::V3 => AliSignature::Acs3,
                        SignatureVersion::V2 => AliSignature::V2,
                    },
                })?;
                let accounts = AccountReader::new(client.polardb());
                Arc::new(Alibaba { client, accounts })
            }
            Provider::Huaweicloud => {
                let client = HuaweiClient::new(HuaweiConfig {
                    credentials: credentials(connection),
                    options: options(connection),
                    project_id: connection.project_id.clone().unwrap_or_default(),
                    domain_id: connection.domain_id.clone(),
                })?;
                let drs = DrsBatcher::new(client.drs());
                let instances = InstanceReader::new(client.dcs());
                Arc::new(Huawei {
                    client,
                    drs,
                    instances,
                })
            }
        })
    }
}

fn options(connection: &Connection) -> ConnectionOptions {
    let mut options = ConnectionOptions::new(connection.region.clone());
    options.endpoint = connection.endpoint.clone();
    options.endpoints = connection
        .endpoints
        .iter()
        .filter_map(|(service, url)| {
            // Names are checked when the connection is written.
            service
                .parse::<Service>()
                .ok()
                .map(|service| (service, url.clone()))
        })
        .collect();
    options.request_timeout = connection.request_timeout();
    options.connect_timeout = connection.request_timeout().min(Duration::from_secs(10));
    options.max_retries = connection.max_retries;
    options.requests_per_second = Some(f64::from(connection.requests_per_second));
    // A small bucket: a burst of rotations starts at once but then follows
    // the configured pace instead of front-loading a second's worth.
    options.burst = connection.requests_per_second.clamp(1, 5);
    options.extra_root_certificates_pem = connection.ca_certificate.clone();
    options
}

fn credentials(connection: &Connection) -> Credentials {
    let credentials =
        Credentials::new(connection.access_key.clone(), connection.secret_key.clone());
    match &connection.security_token {
        Some(token) => credentials.with_security_token(token.clone()),
        None => credentials,
    }
}

/// A target or dependent of the other cloud reached this session: the
/// role names a connection of the wrong provider.
fn wrong_cloud(service: Service, what: &str) -> ProviderError {
    ProviderError::config(
        service,
        "connect",
        &format!("{what} needs a connection to its own cloud; this connection is to the other one"),
    )
}

/// A verifying call's answer: an authenticated "not allowed" still proves
/// the key and signature work.
fn proves_the_key<T>(answer: Result<T, ProviderError>) -> Result<(), ProviderError> {
    match answer {
        Err(error) if error.kind == ErrorKind::PermissionDenied => Ok(()),
        other => other.map(drop),
    }
}

struct Alibaba {
    client: AlibabaClient,
    accounts: AccountReader,
}

fn polardb_account(target: &Target) -> Result<&str, ProviderError> {
    match target {
        Target::PolardbAccount { cluster_id, .. } => Ok(cluster_id),
        _ => Err(wrong_cloud(Service::Dcs, "a DCS instance")),
    }
}

/// An account of the other cloud's kind: the role names the wrong target
/// type.
fn wrong_kind(service: Service, action: &str, what: &str) -> ProviderError {
    ProviderError::config(
        service,
        action,
        &format!("{what} cannot be created on this target; the account kind is the other cloud's"),
    )
}

/// PolarDB's answer for an account that does not exist (a cluster that
/// does not exist has codes of its own).
const POLARDB_ACCOUNT_GONE: &str = "InvalidAccountName.NotFound";

/// A CreateAccount `ClientToken`: the client re-sends a call whose answer
/// was lost with the same token, and PolarDB answers the repeat like the
/// first. Fresh per call, so an account name used again later is never
/// mistaken for an old request.
fn client_token() -> String {
    format!("cloudrotate-{:032x}", rand::random::<u128>())
}

/// `(database, privilege)` pairs as the client takes them; an unknown
/// privilege fails before any call is sent.
fn database_grants(grants: &[(String, String)]) -> Result<Vec<DatabaseGrant>, ProviderError> {
    grants
        .iter()
        .map(|(database, privilege)| {
            let privilege = privilege.parse::<AccountPrivilege>().map_err(|reason| {
                ProviderError::new(
                    ErrorClass::Permanent,
                    ErrorKind::InvalidParameter,
                    Service::Polardb,
                    "GrantAccountPrivilege",
                    &format!("database {database}: {reason}"),
                    &[],
                )
            })?;
            Ok(DatabaseGrant {
                db_name: database.clone(),
                privilege,
            })
        })
        .collect()
}

/// A paged PolarDB listing of one cluster (DescribeAccounts,
/// DescribeDatabases), whose answers carry no total.
struct Listing<'a> {
    action: &'static str,
    cluster: &'a str,
    page_size: u32,
}

impl Listing<'_> {
    /// Every item, each name once: pages from 1 until one holds fewer than
    /// `page_size`. A full page that adds no new name means the provider
    /// ignores `PageNumber`: an error, not an endless loop.
    async fn every_page<T, Page, Fut>(
        &self,
        mut page: Page,
        name: impl Fn(&T) -> String,
    ) -> Result<Vec<T>, ProviderError>
    where
        Page: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<Vec<T>, ProviderError>>,
    {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for page_number in 1.. {
            let items = page(page_number).await?;
            let full = items.len() >= self.page_size as usize;
            let before = out.len();
            for item in items {
                if seen.insert(name(&item)) {
                    out.push(item);
                }
            }
            if !full {
                break;
            }
            if out.len() == before {
                return Err(ProviderError::new(
                    ErrorClass::Permanent,
                    ErrorKind::InvalidResponse,
                    Service::Polardb,
                    self.action,
                    &format!(
                        "page {page_number} of cluster {} repeats what earlier pages listed",
                        self.cluster
                    ),
                    &[],
                ));
            }
        }
        Ok(out)
    }
}

fn dts_endpoint(endpoint: DtsEndpoint) -> AliDtsEndpoint {
    match endpoint {
        DtsEndpoint::Src => AliDtsEndpoint::Source,
        DtsEndpoint::Dest => AliDtsEndpoint::Destination,
    }
}

impl Alibaba {
    async fn describe_job(&self, dependent: &Dependent) -> Result<JobState, ProviderError> {
        let Dependent::Dts {
            job_id,
            endpoint,
            username,
            ..
        } = dependent
        else {
            return Err(wrong_cloud(Service::Drs, "a DRS job"));
        };
        let detail = self
            .client
            .dts()
            .describe_dts_job_detail(job_id, None)
            .await?;
        let job_user = detail
            .endpoint(dts_endpoint(*endpoint))
            .and_then(|e| e.user_name.clone());
        if let Some(job_user) = job_user.filter(|u| u != username) {
            return Err(ProviderError::new(
                ErrorClass::Permanent,
                ErrorKind::InvalidParameter,
                Service::Dts,
                "DescribeDtsJobDetail",
                &format!(
                    "dependent {dependent} names user {username:?} but the job's endpoint uses {job_user:?}"
                ),
                &[],
            ));
        }
        Ok(JobState {
            accepts_password_change: detail.accepts_password_change(dts_endpoint(*endpoint)),
            status: detail.status,
        })
    }

    async fn update_job(
        &self,
        dependent: &Dependent,
        password: &str,
    ) -> Result<Option<String>, ProviderError> {
        let Dependent::Dts {
            job_id,
            endpoint,
            username,
            ..
        } = dependent
        else {
            return Err(wrong_cloud(Service::Drs, "a DRS job"));
        };
        let request = ModifyDtsJobPasswordRequest {
            dts_job_id: job_id.clone(),
            endpoint: dts_endpoint(*endpoint),
            user_name: username.clone(),
            password: Secret::new(password.to_owned()),
            region_id: None,
            synchronization_direction: None,
        };
        Ok(self
            .client
            .dts()
            .modify_dts_job_password(&request)
            .await?
            .info
            .request_id)
    }
}

#[async_trait]
impl Session for Alibaba {
    fn access_key_id(&self) -> &str {
        self.client.access_key_id()
    }

    async fn verify(&self) -> Result<(), ProviderError> {
        proves_the_key(self.client.polardb().verify().await)
    }

    async fn read_target(
        &self,
        target: &Target,
        username: &str,
    ) -> Result<TargetState, ProviderError> {
        self.accounts.read(polardb_account(target)?, username).await
    }

    /// The account is the target: its status is `status`.
    async fn read_account(
        &self,
        target: &Target,
        username: &str,
    ) -> Result<TargetState, ProviderError> {
        self.read_target(target, username).await
    }

    /// One DescribeAccounts call per name: a cluster may hold more
    /// accounts than a page, and write-time checks name only two.
    async fn describe_accounts(
        &self,
        target: &Target,
        usernames: &[&str],
    ) -> Vec<Result<AccountInfo, ProviderError>> {
        let cluster = match polardb_account(target) {
            Ok(cluster) => cluster,
            Err(error) => return usernames.iter().map(|_| Err(error.clone())).collect(),
        };
        let client = self.client.polardb();
        let mut out = Vec::with_capacity(usernames.len());
        for username in usernames {
            let found = describe_account(&client, cluster, username).await;
            out.push(found.map(|account| AccountInfo::from(&account)));
        }
        out
    }

    async fn change_target(
        &self,
        target: &Target,
        username: &str,
        _method: ChangeMethod,
        _old_password: Option<&str>,
        new_password: &str,
    ) -> Result<Option<String>, ProviderError> {
        let request = ModifyAccountPasswordRequest {
            db_cluster_id: polardb_account(target)?.to_owned(),
            account_name: username.to_owned(),
            new_password: Secret::new(new_password.to_owned()),
            password_type: None,
        };
        Ok(self
            .client
            .polardb()
            .modify_account_password(&request)
            .await?
            .info
            .request_id)
    }

    async fn write_description(
        &self,
        target: &Target,
        username: &str,
        description: &str,
    ) -> Result<(), ProviderError> {
        let request = ModifyAccountDescriptionRequest {
            db_cluster_id: polardb_account(target)?.to_owned(),
            account_name: username.to_owned(),
            account_description: description.to_owned(),
        };
        self.client
            .polardb()
            .modify_account_description(&request)
            .await
            .map(drop)
    }

    async fn describe_jobs(
        &self,
        dependents: &[&Dependent],
    ) -> Vec<Result<JobState, ProviderError>> {
        let mut out = Vec::with_capacity(dependents.len());
        for dependent in dependents {
            out.push(self.describe_job(dependent).await);
        }
        out
    }

    async fn update_jobs(
        &self,
        dependents: &[&Dependent],
        password: &str,
    ) -> Vec<Result<Option<String>, ProviderError>> {
        let mut out = Vec::with_capacity(dependents.len());
        for dependent in dependents {
            out.push(self.update_job(dependent, password).await);
        }
        out
    }

    async fn create_account(
        &self,
        target: &Target,
        account: &NewAccount,
    ) -> Result<Option<String>, ProviderError> {
        let cluster = polardb_account(target)?;
        if account.kind != AccountKind::PolardbNormal {
            return Err(wrong_kind(
                Service::Polardb,
                "CreateAccount",
                "a DCS ACL account",
            ));
        }
        let request = CreateAccountRequest {
            db_cluster_id: cluster.to_owned(),
            account_name: account.name.clone(),
            account_password: account.password.clone(),
            account_type: PolarDbAccountType::Normal,
            account_description: account.description.clone(),
            // Granted once the account is available (`grant_account`).
            grants: Vec::new(),
            client_token: Some(client_token()),
        };
        let client = self.client.polardb();
        match client.create_account(&request).await {
            Ok(info) => Ok(info.request_id),
            Err(error) if error.is_outcome_unknown() => {
                match find_account(&client, cluster, &account.name).await {
                    Ok(Some(_)) => Ok(error.request_id),
                    _ => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    async fn grant_account(
        &self,
        target: &Target,
        name: &str,
        grants: &[(String, String)],
    ) -> Result<(), ProviderError> {
        let cluster = polardb_account(target)?;
        let client = self.client.polardb();
        for grant in database_grants(grants)? {
            let request = GrantAccountPrivilegeRequest {
                db_cluster_id: cluster.to_owned(),
                account_name: name.to_owned(),
                grants: vec![grant],
            };
            client.grant_account_privilege(&request).await?;
        }
        Ok(())
    }

    async fn account_status(
        &self,
        target: &Target,
        name: &str,
    ) -> Result<Option<AccountInfo>, ProviderError> {
        let found = find_account(&self.client.polardb(), polardb_account(target)?, name).await?;
        Ok(found.as_ref().map(AccountInfo::from))
    }

    async fn delete_account(&self, target: &Target, name: &str) -> Result<(), ProviderError> {
        let request = DeleteAccountRequest {
            db_cluster_id: polardb_account(target)?.to_owned(),
            account_name: name.to_owned(),
        };
        match self.client.polardb().delete_account(&request).await {
            Err(error) if error.code.as_deref() != Some(POLARDB_ACCOUNT_GONE) => Err(error),
            _ => Ok(()),
        }
    }

    async fn list_accounts(&self, target: &Target) -> Result<Vec<AccountInfo>, ProviderError> {
        let cluster = polardb_account(target)?;
        let client = self.client.polardb();
        let listing = Listing {
            action: "DescribeAccounts",
            cluster,
            page_size: MAX_ACCOUNTS_PAGE,
        };
        let accounts = listing
            .every_page(
                |page_number| {
                    let page = DescribeAccountsPage {
                        db_cluster_id: cluster.to_owned(),
                        page_number,
                    };
                    let client = &client;
                    async move { Ok(client.describe_accounts_page(&page).await?.accounts) }
                },
                |account| account.account_name.clone(),
            )
            .await?;
        Ok(accounts.iter().map(AccountInfo::from).collect())
    }

    async fn list_databases(&self, target: &Target) -> Result<Vec<String>, ProviderError> {
        let cluster = polardb_account(target)?;
        let client = self.client.polardb();
        let listing = Listing {
            action: "DescribeDatabases",
            cluster,
            page_size: MAX_DATABASES_PAGE,
        };
        let databases = listing
            .every_page(
                |page_number| {
                    let page = DescribeDatabasesPage {
                        db_cluster_id: cluster.to_owned(),
                        page_number,
                    };
                    let client = &client;
                    async move { Ok(client.describe_databases_page(&page).await?.databases) }
                },
                |database| database.db_name.clone(),
            )
            .await?;
        Ok(databases.into_iter().map(|d| d.db_name).collect())
    }

    async fn list_access_keys(&self, user: &str) -> Result<Vec<String>, ProviderError> {
        Ok(self
            .client
            .ram()
            .list_access_keys(Some(user))
            .await?
            .access_keys
            .into_iter()
            .map(|k| k.access_key_id)
            .collect())
    }

    async fn create_access_key(&self, user: &str) -> Result<(String, String), ProviderError> {
        let key = self.client.ram().create_access_key(Some(user)).await?;
        Ok((key.access_key_id, key.access_key_secret.expose().to_owned()))
    }

    async fn delete_access_key(&self, user: &str, key: &str) -> Result<(), ProviderError> {
        self.client
            .ram()
            .delete_access_key(Some(user), key)
            .await
            .map(drop)
    }
}

struct Huawei {
    client: HuaweiClient,
    drs: DrsBatcher,
    instances: InstanceReader,
}

fn dcs_instance(target: &Target) -> Result<&str, ProviderError> {
    match target {
        Target::DcsInstance { instance_id, .. } => Ok(instance_id),
        _ => Err(wrong_cloud(Service::Polardb, "a PolarDB account")),
    }
}

/// The ACL account `name` of the instance's list, or NotFound (DCS
/// documents no code of its own for a missing ACL account).
fn acl_account<'a>(
    list: &'a ListAclAccountsResponse,
    instance_id: &str,
    name: &str,
) -> Result<&'a AclAccount, ProviderError> {
    list.by_name(name).ok_or_else(|| {
        ProviderError::new(
            ErrorClass::Permanent,
            ErrorKind::NotFound,
            Service::Dcs,
            "ListAclAccounts",
            &format!("DCS instance {instance_id} has no ACL account {name:?}"),
            &[],
        )
    })
}

fn acl_role(role: AclRole) -> AclAccountRole {
    match role {
        AclRole::Read => AclAccountRole::Read,
        AclRole::Write => AclAccountRole::Write,
    }
}

/// Grants given for a DCS ACL account: the role was written for PolarDB.
fn no_acl_grants(action: &str) -> ProviderError {
    ProviderError::config(
        Service::Dcs,
        action,
        "a DCS ACL account takes a role (read or write), not per-database grants",
    )
}

/// Newer DCS editions keep a deleted account listed as `DELETED`.
fn acl_listed(account: &AclAccount) -> bool {
    account.status.as_deref() != Some("DELETED")
}

/// Nothing is left to delete: not listed, listed `DELETED`, or `DELETING`.
fn acl_gone_or_going(list: &ListAclAccountsResponse, name: &str) -> bool {
    list.by_name(name)
        .is_none_or(|a| !acl_listed(a) || a.status.as_deref() == Some("DELETING"))
}

/// The DRS job and endpoint of each dependent, or why one is not a DRS job.
fn drs_jobs(dependents: &[&Dependent]) -> Result<Vec<(String, DrsEndpointType)>, ProviderError> {
    dependents
        .iter()
        .map(|dependent| match dependent {
            Dependent::Drs {
                job_id, endpoint, ..
            } => Ok((
                job_id.clone(),
                match endpoint {
                    DrsEndpoint::So => DrsEndpointType::Source,
                    DrsEndpoint::Ta => DrsEndpointType::Target,
                },
            )),
            Dependent::Dts { .. } => Err(wrong_cloud(Service::Dts, "a DTS job")),
        })
        .collect()
}

#[async_trait]
impl Session for Huawei {
    fn access_key_id(&self) -> &str {
        self.client.access_key_id()
    }

    async fn verify(&self) -> Result<(), ProviderError> {
        proves_the_key(self.client.dcs().verify().await)
    }

    async fn read_target(&self, target: &Target, _: &str) -> Result<TargetState, ProviderError> {
        self.instances.read(dcs_instance(target)?).await
    }

    /// The instance carries the marker and its status; the ACL account
    /// says whether a reset has settled.
    async fn read_account(
        &self,
        target: &Target,
        username: &str,
    ) -> Result<TargetState, ProviderError> {
        let instance_id = dcs_instance(target)?;
        let mut state = self.instances.read(instance_id).await?;
        let list = self.client.dcs().list_acl_accounts(instance_id).await?;
        state.account_status = acl_account(&list, instance_id, username)?.status.clone();
        Ok(state)
    }

    async fn describe_accounts(
        &self,
        target: &Target,
        usernames: &[&str],
    ) -> Vec<Result<AccountInfo, ProviderError>> {
        let listed = match dcs_instance(target) {
            Ok(instance_id) => self
                .client
                .dcs()
                .list_acl_accounts(instance_id)
                .await
                .map(|list| (instance_id, list)),
            Err(error) => Err(error),
        };
        usernames
            .iter()
            .map(|name| {
                let (instance_id, list) = listed.as_ref().map_err(Clone::clone)?;
                acl_account(list, instance_id, name).map(AccountInfo::from)
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
        let instance_id = dcs_instance(target)?;
        let dcs = self.client.dcs();
        let new_password = Secret::new(new_password.to_owned());
        let answer = match (method, old_password) {
            (ChangeMethod::AclReset, _) => {
                // The reset addresses the account by id; the role knows it
                // by name.
                let list = dcs.list_acl_accounts(instance_id).await?;
                let account_id = &acl_account(&list, instance_id, username)?.account_id;
                dcs.reset_acl_account_password(instance_id, account_id, &new_password)
                    .await?
                    .info
            }
            (ChangeMethod::DcsUpdate, Some(old)) => {
                let request = UpdatePasswordRequest {
                    instance_id: instance_id.to_owned(),
                    old_password: Secret::new(old.to_owned()),
                    new_password,
                };
                dcs.update_password(&request).await?.info
            }
            _ => dcs.reset_password(instance_id, &new_password).await?.info,
        };
        Ok(answer.request_id)
    }

    async fn write_description(
        &self,
        target: &Target,
        _: &str,
        description: &str,
    ) -> Result<(), ProviderError> {
        self.client
            .dcs()
            .update_instance_description(dcs_instance(target)?, description)
            .await
            .map(drop)
    }

    async fn describe_jobs(
        &self,
        dependents: &[&Dependent],
    ) -> Vec<Result<JobState, ProviderError>> {
        let jobs = match drs_jobs(dependents) {
            Ok(jobs) => jobs,
            Err(error) => return dependents.iter().map(|_| Err(error.clone())).collect(),
        };
        let ids = jobs.into_iter().map(|(id, _)| id).collect();
        self.drs
            .status(ids)
            .await
            .into_iter()
            .map(|answer| {
                let job = answer?;
                // A failed lookup is an error; a failed job is a state like
                // any other (INCRE_TRANSFER_FAILED accepts a change).
                if let Some(error) = job.lookup_error.clone() {
                    return Err(error);
                }
                Ok(JobState {
                    accepts_password_change: job.accepts_password_change(),
                    status: job.status.unwrap_or_else(|| "UNKNOWN".into()),
                })
            })
            .collect()
    }

    async fn update_jobs(
        &self,
        dependents: &[&Dependent],
        password: &str,
    ) -> Vec<Result<Option<String>, ProviderError>> {
        let jobs = match drs_jobs(dependents) {
            Ok(jobs) => jobs,
            Err(error) => return dependents.iter().map(|_| Err(error.clone())).collect(),
        };
        let changes = jobs
            .into_iter()
            .map(|(job_id, end_point_type)| DrsPasswordChange {
                job_id,
                end_point_type,
                db_password: Secret::new(password.to_owned()),
            })
            .collect();
        self.drs.modify(changes).await
    }

    async fn create_account(
        &self,
        target: &Target,
        account: &NewAccount,
    ) -> Result<Option<String>, ProviderError> {
        let instance_id = dcs_instance(target)?;
        let AccountKind::DcsAcl(role) = account.kind else {
            return Err(wrong_kind(
                Service::Dcs,
                "CreateAclAccount",
                "a PolarDB account",
            ));
        };
        if !account.grants.is_empty() {
            return Err(no_acl_grants("CreateAclAccount"));
        }
        let request = CreateAclAccountRequest {
            instance_id: instance_id.to_owned(),
            account_name: account.name.clone(),
            account_role: acl_role(role),
            account_password: account.password.clone(),
            description: account.description.clone(),
        };
        let dcs = self.client.dcs();
        match dcs.create_acl_account(&request).await {
            Ok(info) => Ok(info.request_id),
            // Never re-sent (a second create of the name is refused), and
            // the answer carries no id: the list says whether it took.
            Err(error) if error.is_outcome_unknown() => {
                match dcs.list_acl_accounts(instance_id).await {
                    Ok(list) if list.by_name(&account.name).is_some_and(acl_listed) => {
                        Ok(error.request_id)
                    }
                    _ => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// The role came with the create; there is nothing finer to grant.
    async fn grant_account(
        &self,
        target: &Target,
        _: &str,
        grants: &[(String, String)],
    ) -> Result<(), ProviderError> {
        dcs_instance(target)?;
        if grants.is_empty() {
            Ok(())
        } else {
            Err(no_acl_grants("UpdateAclAccount"))
        }
    }

    async fn account_status(
        &self,
        target: &Target,
        name: &str,
    ) -> Result<Option<AccountInfo>, ProviderError> {
        let list = self
            .client
            .dcs()
            .list_acl_accounts(dcs_instance(target)?)
            .await?;
        Ok(list
            .by_name(name)
            .filter(|a| acl_listed(a))
            .map(AccountInfo::from))
    }

    /// DeleteAclAccount takes the account's id, found by name in the list.
    async fn delete_account(&self, target: &Target, name: &str) -> Result<(), ProviderError> {
        let instance_id = dcs_instance(target)?;
        let dcs = self.client.dcs();
        let list = dcs.list_acl_accounts(instance_id).await?;
        if acl_gone_or_going(&list, name) {
            return Ok(());
        }
        let account = acl_account(&list, instance_id, name)?;
        if account.is_default() {
            return Err(ProviderError::config(
                Service::Dcs,
                "DeleteAclAccount",
                "the default user is the instance password's and cannot be deleted",
            ));
        }
        match dcs
            .delete_acl_account(instance_id, &account.account_id)
            .await
        {
            Ok(_) => Ok(()),
            // A delete re-sent after a lost answer, or racing another one,
            // finds no account and is refused as a parameter error: the
            // list says whether the account is gone.
            Err(error)
                if error.kind == ErrorKind::InvalidParameter || error.is_outcome_unknown() =>
            {
                match dcs.list_acl_accounts(instance_id).await {
                    Ok(list) if acl_gone_or_going(&list, name) => Ok(()),
                    _ => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// DCS lists every ACL account in one answer (18 at most).
    async fn list_accounts(&self, target: &Target) -> Result<Vec<AccountInfo>, ProviderError> {
        let list = self
            .client
            .dcs()
            .list_acl_accounts(dcs_instance(target)?)
            .await?;
        Ok(list
            .accounts
            .iter()
            .filter(|a| !a.is_default() && acl_listed(a))
            .map(AccountInfo::from)
            .collect())
    }

    async fn list_databases(&self, target: &Target) -> Result<Vec<String>, ProviderError> {
        dcs_instance(target)?;
        Err(ProviderError::config(
            Service::Dcs,
            "DescribeDatabases",
            "a DCS instance has no databases; its ACL accounts take a role",
        ))
    }

    async fn list_access_keys(&self, user: &str) -> Result<Vec<String>, ProviderError> {
        Ok(self
            .client
            .iam()
            .list_access_keys(user)
            .await?
            .access_keys
            .into_iter()
            .map(|k| k.access)
            .collect())
    }

    async fn create_access_key(&self, user: &str) -> Result<(String, String), ProviderError> {
        let key = self
            .client
            .iam()
            .create_access_key(user, Some("created by vault-plugin-secrets-cloudrotate"))
            .await?;
        Ok((key.access, key.secret.expose().to_owned()))
    }

    async fn delete_access_key(&self, _: &str, key: &str) -> Result<(), ProviderError> {
        self.client.iam().delete_access_key(key).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::providers::CallInfo;

    use super::*;

    #[test]
    fn acl_accounts_are_found_by_name_and_a_missing_one_is_not_found() {
        let list = ListAclAccountsResponse {
            accounts: vec![
                serde_json::from_value(json!({"account_id": "id-1", "account_name": "app_blue"}))
                    .unwrap(),
            ],
            info: CallInfo {
                request_id: None,
                http_status: 200,
                attempts: 1,
            },
        };
        let found = acl_account(&list, "dcs-1", "app_blue").unwrap();
        assert_eq!(found.account_id, "id-1");
        let missing = acl_account(&list, "dcs-1", "app_green").unwrap_err();
        assert!(missing.is_not_found());
        assert!(missing.to_string().contains("dcs-1"), "{missing}");
    }
}
