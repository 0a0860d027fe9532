//! IAM v3.0: rotation of the plugin's own permanent access keys (at most
//! two per user: create -> switch -> delete the old one).

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::HuaweiService;
use super::client::{HuaweiClient, RestCall, path_segment};
use crate::providers::{
    CallInfo, Idempotency, ProviderError, Secret, Service, Verified, decode_body,
};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IamAccessKey {
    pub access: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub create_time: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl IamAccessKey {
    pub fn is_active(&self) -> bool {
        self.status.as_deref() == Some("active")
    }
}

/// A key just created: the only time its secret is ever returned.
#[derive(Debug, Clone)]
pub struct CreatedIamAccessKey {
    pub access: String,
    pub secret: Secret,
    pub status: Option<String>,
    pub user_id: Option<String>,
    pub create_time: Option<String>,
    pub info: CallInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListIamAccessKeysResponse {
    pub access_keys: Vec<IamAccessKey>,
    pub info: CallInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteIamAccessKeyResponse {
    pub info: CallInfo,
}

#[derive(Deserialize)]
struct CreatedWire {
    access: String,
    secret: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    create_time: Option<String>,
}

#[derive(Deserialize)]
struct CreateBody {
    credential: CreatedWire,
}

#[derive(Deserialize)]
struct ListBody {
    #[serde(default)]
    credentials: Vec<IamAccessKey>,
}

const CREDENTIALS_PATH: &str = "/v3.0/OS-CREDENTIAL/credentials";

/// IAM calls of one connection.
#[derive(Debug, Clone)]
pub struct IamClient {
    client: HuaweiClient,
}

impl IamClient {
    pub(crate) fn new(client: HuaweiClient) -> Self {
        IamClient { client }
    }

    /// Not idempotent: a lost answer may have created a key whose secret is
    /// gone. The caller lists keys and deletes the stray one.
    pub async fn create_access_key(
        &self,
        user_id: &str,
        description: Option<&str>,
    ) -> Result<CreatedIamAccessKey, ProviderError> {
        let mut credential = json!({ "user_id": user_id });
        if let Some(description) = description {
            credential["description"] = json!(description);
        }
        let call = RestCall::new(
            HuaweiService::Iam,
            "CreatePermanentAccessKey",
            Method::POST,
            CREDENTIALS_PATH.to_owned(),
            Idempotency::NonIdempotent,
        )
        .json(&json!({ "credential": credential }));
        let (body, info) = self.client.call(&call).await?;
        let body: CreateBody = decode_body(Service::Iam, call.action, body, &info)?;
        let key = body.credential;
        Ok(CreatedIamAccessKey {
            access: key.access,
            secret: Secret::new(key.secret),
            status: key.status,
            user_id: key.user_id,
            create_time: key.create_time,
            info,
        })
    }

    /// Idempotent in effect: a second delete answers `NotFound`.
    pub async fn delete_access_key(
        &self,
        access: &str,
    ) -> Result<DeleteIamAccessKeyResponse, ProviderError> {
        let call = RestCall::new(
            HuaweiService::Iam,
            "DeletePermanentAccessKey",
            Method::DELETE,
            format!(
                "{CREDENTIALS_PATH}/{}",
                path_segment(
                    HuaweiService::Iam,
                    "DeletePermanentAccessKey",
                    "access key id",
                    access
                )?
            ),
            Idempotency::Idempotent,
        );
        let (_, info) = self.client.call(&call).await?;
        Ok(DeleteIamAccessKeyResponse { info })
    }

    pub async fn list_access_keys(
        &self,
        user_id: &str,
    ) -> Result<ListIamAccessKeysResponse, ProviderError> {
        let call = RestCall::new(
            HuaweiService::Iam,
            "ListPermanentAccessKeys",
            Method::GET,
            CREDENTIALS_PATH.to_owned(),
            Idempotency::Idempotent,
        )
        .query("user_id", user_id);
        let (body, info) = self.client.call(&call).await?;
        let body: ListBody = decode_body(Service::Iam, call.action, body, &info)?;
        Ok(ListIamAccessKeysResponse {
            access_keys: body.credentials,
            info,
        })
    }

    /// A cheap authenticated call: list the user's keys.
    pub async fn verify(&self, user_id: &str) -> Result<Verified, ProviderError> {
        let listed = self.list_access_keys(user_id).await?;
        Ok(Verified {
            service: Service::Iam,
            action: "ListPermanentAccessKeys",
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
        let created: CreateBody = decode_body(
            Service::Iam,
            "CreatePermanentAccessKey",
            json!({"credential":{"access":"AK2","secret":"SK2","status":"active","user_id":"u1","create_time":"2024-05-01T08:00:00.000000Z","description":""}}),
            &info,
        )
        .unwrap();
        assert_eq!(created.credential.access, "AK2");
        let listed: ListBody = decode_body(
            Service::Iam,
            "ListPermanentAccessKeys",
            json!({"credentials":[{"user_id":"u1","access":"AK1","status":"active","create_time":"x","description":"d"}]}),
            &info,
        )
        .unwrap();
        assert!(listed.credentials[0].is_active());
    }
}
