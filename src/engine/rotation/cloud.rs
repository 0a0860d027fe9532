//! The engine's adapter to the provider clients: the few operations a
//! rotation needs, in engine terms (targets, dependents, access keys),
//! with provider errors passed through so their class drives the saga.

// Provider errors are large (request ids, codes) and rare; see providers.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::time::Duration;

use crate::framework::Error;
use crate::providers::alicloud::client::{
    AlibabaClient, AlibabaConfig, SignatureVersion as AliSignature,
};
use crate::providers::alicloud::dts::{DtsEndpoint as AliDtsEndpoint, ModifyDtsJobPasswordRequest};
use crate::providers::alicloud::polardb::{
    ModifyAccountDescriptionRequest, ModifyAccountPasswordRequest,
};
use crate::providers::huaweicloud::client::{HuaweiClient, HuaweiConfig};
use crate::providers::huaweicloud::dcs::UpdatePasswordRequest;
use crate::providers::huaweicloud::drs::{DrsEndpointType, DrsPasswordChange};
use crate::providers::{
    ConnectionOptions, Credentials, ErrorClass, ErrorKind, ProviderError, Secret, Service,
};

use super::super::Engine;
use super::super::connection::{Connection, Provider, SignatureVersion};
use super::super::role::{Dependent, DrsEndpoint, DtsEndpoint, Role, Rotation, Target};
use super::drs_batch::DrsBatcher;
use super::targets::{AccountReader, InstanceReader, TargetState};

/// DCS locks password changes after 5 wrong old passwords in a row.
pub const DCS_PASSWORD_TRIES: u32 = 5;

/// Vault never spends the last two of the DCS tries, so a drifted password
/// can still be fixed by hand.
pub const DCS_RESERVED_ATTEMPTS: u32 = 2;

/// The clients of one connection, with the readers and batchers that
/// coalesce the calls of concurrent rotations.
pub enum Clients {
    Alicloud(AlibabaClient, AccountReader),
    Huaweicloud(HuaweiClient, DrsBatcher, InstanceReader),
}

fn options(connection: &Connection) -> ConnectionOptions {
    let mut options = ConnectionOptions::new(connection.region.clone());
    options.endpoint = connection.endpoint.clone();
    options.endpoints = connection
        .endpoints
        .iter()
        .filter_map(|(service, url)| {
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

impl Clients {
    /// The access key id the clients sign with.
    pub fn access_key_id(&self) -> &str {
        match self {
            Self::Alicloud(client, _) => client.access_key_id(),
            Self::Huaweicloud(client, ..) => client.access_key_id(),
        }
    }

    pub fn build(connection: &Connection) -> Result<Self, ProviderError> {
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
                Self::Alicloud(client, accounts)
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
                Self::Huaweicloud(client, drs, instances)
            }
        })
    }

    fn alicloud(&self, service: Service) -> Result<&AlibabaClient, ProviderError> {
        match self {
            Self::Alicloud(client, _) => Ok(client),
            Self::Huaweicloud(..) => Err(ProviderError::config(
                service,
                "connect",
                "this connection is not an alicloud connection",
            )),
        }
    }

    fn huaweicloud(&self, service: Service) -> Result<&HuaweiClient, ProviderError> {
        match self {
            Self::Huaweicloud(client, ..) => Ok(client),
            Self::Alicloud(..) => Err(ProviderError::config(
                service,
                "connect",
                "this connection is not a huaweicloud connection",
            )),
        }
    }

    fn drs(&self) -> Result<&DrsBatcher, ProviderError> {
        match self {
            Self::Huaweicloud(_, drs, _) => Ok(drs),
            Self::Alicloud(..) => Err(ProviderError::config(
                Service::Drs,
                "connect",
                "this connection is not a huaweicloud connection",
            )),
        }
    }
}

/// Turns an engine error met while getting clients into a provider error,
/// so callers handle one error type. Only a connection the operator must
/// fix is permanent; storage trouble or a node that cannot write passes
/// (nothing was sent, so retrying is safe).
fn setup_error(service: Service, error: Error) -> ProviderError {
    match error {
        Error::BadRequest(_) | Error::UnsupportedPath => {
            ProviderError::config(service, "connect", &error.to_string())
        }
        _ => ProviderError::new(
            ErrorClass::Retryable,
            ErrorKind::Connect,
            service,
            "connect",
            &error.to_string(),
            &[],
        ),
    }
}

/// The clients of a connection, unless the cloud rejected its key: then
/// nothing more is sent with it (Huawei locks an AK/SK after 5 failures)
/// until the connection is written again.
async fn clients(
    engine: &Engine,
    connection: &str,
    service: Service,
) -> Result<std::sync::Arc<Clients>, ProviderError> {
    if let Some(rejection) = engine.credentials_rejected(connection) {
        return Err(ProviderError::new(
            ErrorClass::Permanent,
            ErrorKind::Auth,
            service,
            "connect",
            &rejection,
            &[],
        )
        .with_code(Some(NOT_SENT.to_owned())));
    }
    engine
        .clients(connection)
        .await
        .map_err(|e| setup_error(service, e))
}

/// The code of a call refused before it was sent because the connection's
/// key was rejected earlier.
const NOT_SENT: &str = "NotSent.CredentialsRejected";

/// Passes `result` through; an authentication failure marks the
/// connection's key rejected, which stops every call through it.
async fn noted<T>(
    engine: &Engine,
    connection: &str,
    signed_with: &str,
    result: Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    if let Err(error) = &result
        && error.kind == ErrorKind::Auth
        && error.code.as_deref() != Some(NOT_SENT)
    {
        engine
            .reject_credentials(connection, signed_with, error)
            .await;
    }
    result
}

/// Runs `call` with the connection's clients, noting an authentication
/// failure against the key the call was signed with.
async fn with_clients<T, F, Fut>(
    engine: &Engine,
    connection: &str,
    service: Service,
    call: F,
) -> Result<T, ProviderError>
where
    F: FnOnce(std::sync::Arc<Clients>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let clients = clients(engine, connection, service).await?;
    let signed_with = clients.access_key_id().to_owned();
    let result = call(clients).await;
    noted(engine, connection, &signed_with, result).await
}

/// One cheap signed call. An authenticated "not allowed" still proves the
/// key and signature work, so it passes.
pub async fn verify(connection: &Connection) -> Result<(), ProviderError> {
    let result = match Clients::build(connection)? {
        Clients::Alicloud(client, _) => client.polardb().verify().await.map(drop),
        Clients::Huaweicloud(client, ..) => client.dcs().verify().await.map(drop),
    };
    match result {
        Err(error) if error.kind == ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

/// Whether the next change of a DCS target offers the old password
/// (`UpdatePassword`) rather than resetting: only when Vault knows it, the
/// role allows it, this rotation never offered it before, and DCS has
/// attempts to spare.
pub fn dcs_offers_old_password(role: &Role, flight: &Rotation) -> bool {
    let attempts_to_spare = role
        .state
        .dcs_retry_times_left
        .is_none_or(|left| left > DCS_RESERVED_ATTEMPTS);
    matches!(role.target, Target::DcsInstance { .. })
        && flight.old_password.is_some()
        && !role.dcs_reset
        && !flight.dcs_reset_only
        && attempts_to_spare
}

/// Changes the target's password to the flight's new one, for DCS with the
/// old password when `offer_old_password`. Returns the provider request id.
pub async fn change_target(
    engine: &Engine,
    role: &Role,
    flight: &Rotation,
    offer_old_password: bool,
) -> Result<Option<String>, ProviderError> {
    let new_password = Secret::new(flight.new_password.clone());
    match &role.target {
        Target::PolardbAccount {
            connection,
            cluster_id,
        } => {
            let clients = clients(engine, connection, Service::Polardb).await?;
            let request = ModifyAccountPasswordRequest {
                db_cluster_id: cluster_id.clone(),
                account_name: role.username.clone().unwrap_or_default(),
                new_password,
                password_type: None,
            };
            let result = async {
                clients
                    .alicloud(Service::Polardb)?
                    .polardb()
                    .modify_account_password(&request)
                    .await
            }
            .await;
            noted(engine, connection, clients.access_key_id(), result)
                .await
                .map(|answer| answer.info.request_id)
        }
        Target::DcsInstance {
            connection,
            instance_id,
        } => {
            let clients = clients(engine, connection, Service::Dcs).await?;
            let dcs = clients.huaweicloud(Service::Dcs)?.dcs();
            let result = match (&flight.old_password, offer_old_password) {
                (Some(old), true) => {
                    let request = UpdatePasswordRequest {
                        instance_id: instance_id.clone(),
                        old_password: Secret::new(old.clone()),
                        new_password,
                    };
                    dcs.update_password(&request).await.map(|a| a.info)
                }
                _ => dcs
                    .reset_password(instance_id, &new_password)
                    .await
                    .map(|a| a.info),
            };
            noted(engine, connection, clients.access_key_id(), result)
                .await
                .map(|info| info.request_id)
        }
        Target::External => Ok(None),
    }
}

/// The target's status and description (marker), coalesced with the reads
/// of other rotations on the same connection. `None` for external targets.
pub async fn read_target(
    engine: &Engine,
    role: &Role,
) -> Option<Result<TargetState, ProviderError>> {
    let (connection, service) = match &role.target {
        Target::PolardbAccount { connection, .. } => (connection, Service::Polardb),
        Target::DcsInstance { connection, .. } => (connection, Service::Dcs),
        Target::External => return None,
    };
    let result = with_clients(engine, connection, service, |clients| async move {
        match (&role.target, clients.as_ref()) {
            (Target::PolardbAccount { cluster_id, .. }, Clients::Alicloud(_, accounts)) => {
                accounts
                    .read(cluster_id, role.username.as_deref().unwrap_or_default())
                    .await
            }
            (Target::DcsInstance { instance_id, .. }, Clients::Huaweicloud(_, _, instances)) => {
                instances.read(instance_id).await
            }
            _ => Err(ProviderError::config(
                service,
                "connect",
                &format!("connection {connection:?} is for the other cloud"),
            )),
        }
    })
    .await;
    Some(result)
}

/// Sets the target's description (which carries the ownership marker).
pub async fn write_description(
    engine: &Engine,
    role: &Role,
    description: &str,
) -> Result<(), ProviderError> {
    match &role.target {
        Target::PolardbAccount {
            connection,
            cluster_id,
        } => with_clients(engine, connection, Service::Polardb, |clients| async move {
            let request = ModifyAccountDescriptionRequest {
                db_cluster_id: cluster_id.clone(),
                account_name: role.username.clone().unwrap_or_default(),
                account_description: description.to_owned(),
            };
            clients
                .alicloud(Service::Polardb)?
                .polardb()
                .modify_account_description(&request)
                .await
        })
        .await
        .map(drop),
        Target::DcsInstance {
            connection,
            instance_id,
        } => with_clients(engine, connection, Service::Dcs, |clients| async move {
            clients
                .huaweicloud(Service::Dcs)?
                .dcs()
                .update_instance_description(instance_id, description)
                .await
        })
        .await
        .map(drop),
        Target::External => Ok(()),
    }
}

fn dts_endpoint(endpoint: DtsEndpoint) -> AliDtsEndpoint {
    match endpoint {
        DtsEndpoint::Src => AliDtsEndpoint::Source,
        DtsEndpoint::Dest => AliDtsEndpoint::Destination,
    }
}

fn drs_job(dependent: &Dependent) -> &str {
    match dependent {
        Dependent::Drs { job_id, .. } => job_id,
        Dependent::Dts { job_id, .. } => job_id,
    }
}

fn drs_endpoint(endpoint: DrsEndpoint) -> DrsEndpointType {
    match endpoint {
        DrsEndpoint::So => DrsEndpointType::Source,
        DrsEndpoint::Ta => DrsEndpointType::Target,
    }
}

/// The state of each dependent's job and whether it accepts a password
/// change now: `(dependent, state, accepts)`. One DRS call per connection.
pub async fn describe_dependents(
    engine: &Engine,
    dependents: &[Dependent],
) -> Result<Vec<(String, String, bool)>, ProviderError> {
    let mut out = Vec::new();
    let mut drs: BTreeMap<&str, Vec<&Dependent>> = BTreeMap::new();
    for dependent in dependents {
        match dependent {
            Dependent::Dts {
                connection,
                job_id,
                endpoint,
                username,
            } => {
                let clients = clients(engine, connection, Service::Dts).await?;
                let detail = async {
                    clients
                        .alicloud(Service::Dts)?
                        .dts()
                        .describe_dts_job_detail(job_id, None)
                        .await
                }
                .await;
                let detail = noted(engine, connection, clients.access_key_id(), detail).await?;
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
                out.push((
                    dependent.to_string(),
                    detail.status.clone(),
                    detail.accepts_password_change(dts_endpoint(*endpoint)),
                ));
            }
            Dependent::Drs { connection, .. } => drs.entry(connection).or_default().push(dependent),
        }
    }
    for (connection, group) in drs {
        let clients = clients(engine, connection, Service::Drs).await?;
        let ids: Vec<String> = group.iter().map(|d| drs_job(d).to_owned()).collect();
        let answers = clients.drs()?.status(ids).await;
        for (dependent, answer) in group.into_iter().zip(answers) {
            let job = noted(engine, connection, clients.access_key_id(), answer).await?;
            // A failed lookup stops the precheck; a failed job is a state
            // like any other (INCRE_TRANSFER_FAILED accepts a change).
            if let Some(error) = job.lookup_error.clone() {
                return Err(error);
            }
            let state = job.status.clone().unwrap_or_else(|| "UNKNOWN".into());
            out.push((dependent.to_string(), state, job.accepts_password_change()));
        }
    }
    Ok(out)
}

/// The dependents that cannot take a password change now, with why.
pub async fn precheck_dependents(
    engine: &Engine,
    dependents: &[Dependent],
) -> Result<Vec<(String, String)>, ProviderError> {
    Ok(describe_dependents(engine, dependents)
        .await?
        .into_iter()
        .filter(|(_, _, accepts)| !accepts)
        .map(|(dependent, state, _)| {
            (
                dependent,
                format!("the job is {state}, which does not accept password changes"),
            )
        })
        .collect())
}

/// Sends the password to every dependent (DRS batched per connection).
/// Each dependent gets its own result: the provider request id, or why not.
pub async fn update_dependents(
    engine: &Engine,
    dependents: &[Dependent],
    password: &str,
) -> Vec<(Dependent, Result<Option<String>, ProviderError>)> {
    let mut results = Vec::new();
    let mut drs: BTreeMap<&str, Vec<&Dependent>> = BTreeMap::new();
    for dependent in dependents {
        match dependent {
            Dependent::Dts {
                connection,
                job_id,
                endpoint,
                username,
            } => {
                let result = with_clients(engine, connection, Service::Dts, |clients| async move {
                    let request = ModifyDtsJobPasswordRequest {
                        dts_job_id: job_id.clone(),
                        endpoint: dts_endpoint(*endpoint),
                        user_name: username.clone(),
                        password: Secret::new(password.to_owned()),
                        region_id: None,
                        synchronization_direction: None,
                    };
                    Ok(clients
                        .alicloud(Service::Dts)?
                        .dts()
                        .modify_dts_job_password(&request)
                        .await?
                        .info
                        .request_id)
                })
                .await;
                results.push((dependent.clone(), result));
            }
            Dependent::Drs { connection, .. } => drs.entry(connection).or_default().push(dependent),
        }
    }
    for (connection, group) in drs {
        let changes: Vec<DrsPasswordChange> = group
            .iter()
            .map(|d| DrsPasswordChange {
                job_id: drs_job(d).to_owned(),
                end_point_type: match d {
                    Dependent::Drs { endpoint, .. } => drs_endpoint(*endpoint),
                    Dependent::Dts { .. } => unreachable!("grouped DRS dependents only"),
                },
                db_password: Secret::new(password.to_owned()),
            })
            .collect();
        let clients = clients(engine, connection, Service::Drs).await;
        let answers = match clients.as_ref().map_err(Clone::clone).and_then(|c| c.drs()) {
            Ok(drs) => drs.modify(changes).await,
            Err(error) => group.iter().map(|_| Err(error.clone())).collect(),
        };
        for (dependent, answer) in group.into_iter().zip(answers) {
            let answer = match &clients {
                Ok(clients) => noted(engine, connection, clients.access_key_id(), answer).await,
                Err(_) => answer,
            };
            results.push((dependent.clone(), answer));
        }
    }
    results
}

pub async fn list_access_keys(
    connection: &Connection,
    user: &str,
) -> Result<Vec<String>, ProviderError> {
    Ok(match Clients::build(connection)? {
        Clients::Alicloud(client, _) => client
            .ram()
            .list_access_keys(Some(user))
            .await?
            .access_keys
            .into_iter()
            .map(|k| k.access_key_id)
            .collect(),
        Clients::Huaweicloud(client, ..) => client
            .iam()
            .list_access_keys(user)
            .await?
            .access_keys
            .into_iter()
            .map(|k| k.access)
            .collect(),
    })
}

/// Creates a key for `user`: `(access key, secret)`.
pub async fn create_access_key(
    connection: &Connection,
    user: &str,
) -> Result<(String, String), ProviderError> {
    Ok(match Clients::build(connection)? {
        Clients::Alicloud(client, _) => {
            let key = client.ram().create_access_key(Some(user)).await?;
            (key.access_key_id, key.access_key_secret.expose().to_owned())
        }
        Clients::Huaweicloud(client, ..) => {
            let key = client
                .iam()
                .create_access_key(user, Some("created by vault-plugin-secrets-cloudrotate"))
                .await?;
            (key.access, key.secret.expose().to_owned())
        }
    })
}

pub async fn delete_access_key(
    connection: &Connection,
    user: &str,
    key: &str,
) -> Result<(), ProviderError> {
    match Clients::build(connection)? {
        Clients::Alicloud(client, _) => client
            .ram()
            .delete_access_key(Some(user), key)
            .await
            .map(drop),
        Clients::Huaweicloud(client, ..) => client.iam().delete_access_key(key).await.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::StorageError;

    #[test]
    fn only_a_connection_the_operator_must_fix_is_a_permanent_setup_error() {
        let bad = setup_error(Service::Dcs, Error::bad_request("no such connection"));
        assert_eq!(
            (bad.class, bad.kind),
            (ErrorClass::Permanent, ErrorKind::Config)
        );
        for transient in [
            Error::from(StorageError::ReadOnly),
            Error::internal("storage error: timeout"),
        ] {
            let error = setup_error(Service::Dcs, transient);
            assert_eq!(
                (error.class, error.kind),
                (ErrorClass::Retryable, ErrorKind::Connect)
            );
        }
    }
}
