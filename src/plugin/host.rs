//! The host's Storage and SystemView, reached over the brokered connection,
//! behind the framework's transport-free traits.

use std::time::Duration;

use async_trait::async_trait;
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::proto::pb;
use super::proto::pb::storage_client::StorageClient;
use super::proto::pb::system_view_client::SystemViewClient;
use crate::framework::{Error, ReplicationState, Storage, StorageError, SystemView};

/// The Go sides allow messages up to `MaxInt32`; so do we.
pub const MAX_MESSAGE: usize = i32::MAX as usize;

pub struct HostStorage(StorageClient<Channel>);

impl HostStorage {
    pub fn new(channel: Channel) -> Self {
        Self(
            StorageClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
    }
}

fn transport(status: Status) -> StorageError {
    StorageError::Unavailable(status.message().to_owned())
}

/// Errors the host reports in the reply's `err` string.
fn host_error(err: String) -> Result<(), StorageError> {
    if err.is_empty() {
        Ok(())
    } else if err.contains("readonly") || err.contains("read-only") {
        Err(StorageError::ReadOnly)
    } else if err.contains("missing storage") {
        Err(StorageError::Unavailable(err))
    } else {
        Err(StorageError::Backend(err))
    }
}

#[async_trait]
impl Storage for HostStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let reply = self
            .0
            .clone()
            .get(pb::StorageGetArgs { key: key.into() })
            .await
            .map_err(transport)?
            .into_inner();
        host_error(reply.err)?;
        Ok(reply.entry.map(|entry| entry.value))
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        let entry = pb::StorageEntry {
            key: key.into(),
            value,
            seal_wrap: false,
        };
        let reply = self
            .0
            .clone()
            .put(pb::StoragePutArgs { entry: Some(entry) })
            .await
            .map_err(transport)?;
        host_error(reply.into_inner().err)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let reply = self
            .0
            .clone()
            .delete(pb::StorageDeleteArgs { key: key.into() })
            .await
            .map_err(transport)?;
        host_error(reply.into_inner().err)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let reply = self
            .0
            .clone()
            .list(pb::StorageListArgs {
                prefix: prefix.into(),
            })
            .await
            .map_err(transport)?
            .into_inner();
        host_error(reply.err)?;
        Ok(reply.keys)
    }
}

pub struct HostSystemView(SystemViewClient<Channel>);

impl HostSystemView {
    pub fn new(channel: Channel) -> Self {
        Self(
            SystemViewClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
    }
}

fn unavailable(status: Status) -> Error {
    Error::unavailable(format!(
        "the host's system view failed: {}",
        status.message()
    ))
}

#[async_trait]
impl SystemView for HostSystemView {
    async fn default_lease_ttl(&self) -> Result<Duration, Error> {
        let reply = self.0.clone().default_lease_ttl(pb::Empty {}).await;
        let ttl = reply.map_err(unavailable)?.into_inner().ttl;
        Ok(Duration::from_nanos(u64::try_from(ttl).unwrap_or(0)))
    }

    async fn max_lease_ttl(&self) -> Result<Duration, Error> {
        let reply = self.0.clone().max_lease_ttl(pb::Empty {}).await;
        let ttl = reply.map_err(unavailable)?.into_inner().ttl;
        Ok(Duration::from_nanos(u64::try_from(ttl).unwrap_or(0)))
    }

    async fn generate_password_from_policy(&self, policy: &str) -> Result<String, Error> {
        let request = pb::GeneratePasswordFromPolicyRequest {
            policy_name: policy.into(),
        };
        match self.0.clone().generate_password_from_policy(request).await {
            Ok(reply) => Ok(reply.into_inner().password),
            // The host answers "failed to generate password" for a policy
            // that does not exist as for one that cannot be satisfied.
            Err(status) if matches!(status.code(), Code::Internal | Code::InvalidArgument) => {
                Err(Error::bad_request(format!(
                    "password policy {policy:?} did not generate a password ({}); check that it exists \
                     with `vault read sys/policies/password/{policy}`",
                    status.message()
                )))
            }
            Err(status) => Err(unavailable(status)),
        }
    }

    async fn replication_state(&self) -> Result<ReplicationState, Error> {
        let reply = self.0.clone().replication_state(pb::Empty {}).await;
        let state = reply.map_err(unavailable)?.into_inner().state;
        Ok(ReplicationState(u32::try_from(state).unwrap_or(0)))
    }

    async fn local_mount(&self) -> Result<bool, Error> {
        let reply = self.0.clone().local_mount(pb::Empty {}).await;
        Ok(reply.map_err(unavailable)?.into_inner().local)
    }

    async fn tainted(&self) -> Result<bool, Error> {
        let reply = self.0.clone().tainted(pb::Empty {}).await;
        Ok(reply.map_err(unavailable)?.into_inner().tainted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_error_strings_map_to_storage_errors() {
        assert_eq!(host_error(String::new()), Ok(()));
        assert_eq!(
            host_error("cannot write to readonly storage".into()),
            Err(StorageError::ReadOnly)
        );
        assert!(matches!(
            host_error("missing storage implementation: nil".into()),
            Err(StorageError::Unavailable(_))
        ));
        assert!(matches!(
            host_error("raft: not leader".into()),
            Err(StorageError::Backend(_))
        ));
    }
}
