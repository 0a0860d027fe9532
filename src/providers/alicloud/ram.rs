//! RAM (version 2015-05-01): rotation of the plugin's own access keys.
//! A RAM user holds at most two keys, so rotation is create -> switch ->
//! delete the old one.

use serde::Deserialize;

use super::AlibabaService;
use super::client::{AlibabaClient, RpcCall};
use crate::providers::{
    CallInfo, Idempotency, ProviderError, Secret, Service, Verified, decode_body,
};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RamAccessKey {
    pub access_key_id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub create_date: Option<String>,
}

impl RamAccessKey {
    pub fn is_active(&self) -> bool {
        self.status.as_deref() == Some("Active")
    }
}

/// A key just created: the only time its secret is ever returned.
#[derive(Debug, Clone)]
pub struct CreatedAccessKey {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub status: Option<String>,
    pub create_date: Option<String>,
    pub info: CallInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAccessKeysResponse {
    pub access_keys: Vec<RamAccessKey>,
    pub info: CallInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteAccessKeyResponse {
    pub info: CallInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreatedKeyWire {
    access_key_id: String,
    access_key_secret: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    create_date: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateAccessKeyBody {
    access_key: CreatedKeyWire,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct KeyList {
    #[serde(default)]
    access_key: Vec<RamAccessKey>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListAccessKeysBody {
    #[serde(default)]
    access_keys: KeyList,
}

/// RAM calls of one connection. `user_name: None` acts on the calling
/// user itself.
#[derive(Debug, Clone)]
pub struct RamClient {
    client: AlibabaClient,
}

impl RamClient {
    pub(crate) fn new(client: AlibabaClient) -> Self {
        RamClient { client }
    }

    /// Not idempotent: a lost answer may have created a key whose secret is
    /// gone. The caller lists keys and deletes the stray one.
    pub async fn create_access_key(
        &self,
        user_name: Option<&str>,
    ) -> Result<CreatedAccessKey, ProviderError> {
        let call = RpcCall::new(
            AlibabaService::Ram,
            "CreateAccessKey",
            Idempotency::NonIdempotent,
        )
        .optional("UserName", user_name);
        let (body, info) = self.client.call(&call).await?;
        let body: CreateAccessKeyBody = decode_body(Service::Ram, call.action, body, &info)?;
        let key = body.access_key;
        Ok(CreatedAccessKey {
            access_key_id: key.access_key_id,
            access_key_secret: Secret::new(key.access_key_secret),
            status: key.status,
            create_date: key.create_date,
            info,
        })
    }

    /// Idempotent in effect: deleting twice answers `NotFound` the second
    /// time, which the caller treats as done.
    pub async fn delete_access_key(
        &self,
        user_name: Option<&str>,
        access_key_id: &str,
    ) -> Result<DeleteAccessKeyResponse, ProviderError> {
        let call = RpcCall::new(
            AlibabaService::Ram,
            "DeleteAccessKey",
            Idempotency::Idempotent,
        )
        .optional("UserName", user_name)
        .param("UserAccessKeyId", access_key_id);
        let (_, info) = self.client.call(&call).await?;
        Ok(DeleteAccessKeyResponse { info })
    }

    pub async fn list_access_keys(
        &self,
        user_name: Option<&str>,
    ) -> Result<ListAccessKeysResponse, ProviderError> {
        let call = RpcCall::new(
            AlibabaService::Ram,
            "ListAccessKeys",
            Idempotency::Idempotent,
        )
        .optional("UserName", user_name);
        let (body, info) = self.client.call(&call).await?;
        let body: ListAccessKeysBody = decode_body(Service::Ram, call.action, body, &info)?;
        Ok(ListAccessKeysResponse {
            access_keys: body.access_keys.access_key,
            info,
        })
    }

    /// A cheap authenticated call: `ListAccessKeys`.
    pub async fn verify(&self, user_name: Option<&str>) -> Result<Verified, ProviderError> {
        let listed = self.list_access_keys(user_name).await?;
        Ok(Verified {
            service: Service::Ram,
            action: "ListAccessKeys",
            info: listed.info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_decode() {
        let info = CallInfo::default();
        let created: CreateAccessKeyBody = decode_body(
            Service::Ram,
            "CreateAccessKey",
            serde_json::json!({"RequestId":"R","AccessKey":{"AccessKeyId":"LTAI1","AccessKeySecret":"s3cr3t","Status":"Active","CreateDate":"2024-05-01T08:00:00Z"}}),
            &info,
        )
        .unwrap();
        assert_eq!(created.access_key.access_key_id, "LTAI1");
        let listed: ListAccessKeysBody = decode_body(
            Service::Ram,
            "ListAccessKeys",
            serde_json::json!({"RequestId":"R","AccessKeys":{"AccessKey":[{"AccessKeyId":"LTAI1","Status":"Active","CreateDate":"x"}]}}),
            &info,
        )
        .unwrap();
        assert!(listed.access_keys.access_key[0].is_active());
        let empty: ListAccessKeysBody = decode_body(
            Service::Ram,
            "ListAccessKeys",
            serde_json::json!({"RequestId":"R"}),
            &info,
        )
        .unwrap();
        assert!(empty.access_keys.access_key.is_empty());
    }

    #[test]
    fn a_bad_create_answer_does_not_quote_the_secret() {
        let error = decode_body::<CreateAccessKeyBody>(
            Service::Ram,
            "CreateAccessKey",
            serde_json::json!({"AccessKey":{"AccessKeyId":"LTAI1","AccessKeySecret":42}}),
            &CallInfo::default(),
        )
        .err()
        .unwrap();
        assert!(!error.to_string().contains("42"), "{error}");
    }
}
