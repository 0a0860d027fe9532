//! The storage the host is asked to seal-wrap (Vault Enterprise wraps it
//! with its seal on top of the barrier), matched the way the Vault SDK
//! documents `SealWrapStorage`: an exact key, or a prefix when the entry
//! ends with `/`. Every stored value that holds a secret must be covered.

use std::sync::Arc;

use cloudrotate::engine::{self, SystemClock};
use cloudrotate::framework::{
    Backend, BackendConfig, MemoryStorage, Operation, Request, StaticSystemView, Storage,
};
use serde_json::json;

const SECRET_KEY: &str = "seal-wrap-secret-key-0001";
const PASSWORD: &str = "Seal-Wrap-Password-1";

fn covered(wrapped: &[String], key: &str) -> bool {
    wrapped.iter().any(|entry| {
        if entry.ends_with('/') {
            key.starts_with(entry.as_str())
        } else {
            key == entry
        }
    })
}

#[tokio::test]
async fn every_stored_secret_is_under_a_seal_wrapped_path() {
    let storage = Arc::new(MemoryStorage::new());
    let backend = engine::backend(
        BackendConfig {
            config: Default::default(),
            backend_uuid: "seal-wrap".into(),
            storage: storage.clone(),
            system: Arc::new(StaticSystemView::default()),
        },
        Arc::new(SystemClock),
        Arc::new(engine::ProviderCloud),
    );
    backend.initialize().await.unwrap();
    let writes = [
        (
            Operation::Create,
            "config/ali",
            json!({ "provider": "alicloud", "region": "cn-hangzhou", "access_key": "LTAI-seal",
                    "secret_key": SECRET_KEY, "endpoint": "http://127.0.0.1:9",
                    "verify_connection": false }),
        ),
        (
            Operation::Create,
            "static-roles/given",
            json!({ "target": "external", "username": "sink" }),
        ),
        (
            Operation::Update,
            "rotate-role/given",
            json!({ "password": PASSWORD }),
        ),
    ];
    for (operation, path, body) in writes {
        backend
            .handle_request(Request::new(operation, path).with_data(body))
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }

    let wrapped = backend.special_paths().seal_wrap_storage;
    let mut holding_secrets = Vec::new();
    for key in storage.keys() {
        let value = storage.get(&key).await.unwrap().unwrap_or_default();
        let text = String::from_utf8_lossy(&value);
        if text.contains(SECRET_KEY) || text.contains(PASSWORD) {
            holding_secrets.push(key);
        }
    }
    assert!(holding_secrets.len() >= 2, "{holding_secrets:?}");
    for key in &holding_secrets {
        assert!(
            covered(&wrapped, key),
            "{key} holds a secret but no seal-wrap entry covers it: {wrapped:?}"
        );
    }
}
