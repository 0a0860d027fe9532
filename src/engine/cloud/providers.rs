//! [`Cloud`] over the provider clients: the only module of the engine that
//! names a provider's client or request type. One session per connection:
//! one pooled HTTP client, one pacing bucket, and the readers and batchers
//! that coalesce the calls of concurrent rotations.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::providers::alicloud::client::{
    AlibabaClient, AlibabaConfig, SignatureVersion as AliSignature,
};
use crate::providers::alicloud::dts::{DtsEndpoint as AliDtsEndpoint, ModifyDtsJobPasswordRequest};
use crate::providers::alicloud::polardb::{
    ModifyAccountDescriptionRequest, ModifyAccountPasswordRequest,
};
use crate::providers::huaweicloud::client::{HuaweiClient, HuaweiConfig};
use crate::providers::huaweicloud::dcs::UpdatePasswordRequest;
use crate::providers::huaweicloud::dcs::acl::{AclAccount, ListAclAccountsResponse};
use crate::providers::huaweicloud::drs::{DrsEndpointType, DrsPasswordChange};
use crate::providers::{
    ConnectionOptions, Credentials, ErrorClass, ErrorKind, ProviderError, Secret, Service,
};

use super::super::connection::{Connection, Provider, SignatureVersion};
use super::super::role::{Dependent, DrsEndpoint, DtsEndpoint, Target};
use super::batch::DrsBatcher;
use super::readers::{AccountReader, InstanceReader, describe_account};
use super::{AccountInfo, ChangeMethod, Cloud, JobState, Session, TargetState};

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
