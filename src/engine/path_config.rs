//! `config/:name`: cloud connections. `config/` lists them.

use std::sync::Arc;

use crate::framework::{
    Error, Field, FieldData, HandlerResult, Operation, Path, Request, Response,
};
use crate::handler;
use crate::providers::http::{check_root_certificates, parse_base_url};
use crate::providers::huaweicloud::client::is_path_segment;

use super::connection::{Connection, Provider, SignatureVersion};
use super::core::Engine;
use super::schedule;
use super::store::LockKey;

const PROVIDERS: &[&str] = &["alicloud", "huaweicloud"];

fn fields() -> Vec<Field> {
    let mut fields = vec![
        Field::string("name", "Name of the connection."),
        Field::string("provider", "Cloud provider: alicloud or huaweicloud. Cannot be changed.")
            .one_of(PROVIDERS)
            .required(),
        Field::string("region", "Region of the resources, e.g. cn-hangzhou or cn-north-4.")
            .required()
            .max_len(64),
        Field::string("access_key", "Access key id (AK) the plugin signs requests with.")
            .required()
            .max_len(256),
        Field::string("secret_key", "Secret of the access key (SK). Write-only.")
            .required()
            .sensitive()
            .max_len(256),
        Field::string(
            "security_token",
            "Security token of temporary credentials (Alibaba STS / Huawei temporary AK/SK). Write-only.",
        )
        .sensitive(),
        Field::string("project_id", "Huawei Cloud project id of the region (huaweicloud only).").max_len(64),
        Field::string(
            "domain_id",
            "Huawei Cloud account (domain) id, letters and digits (huaweicloud only, optional). IAM is a global service: rotate-root's access-key calls carry it as X-Domain-Id; without it they carry X-Project-Id of project_id.",
        )
        .max_len(64),
        Field::string(
            "endpoint",
            "Base URL for every service of this connection (emulators, private gateways). Default: the public endpoint of each service in the region.",
        )
        .max_len(512),
        Field::map(
            "endpoints",
            "Base URL per service, winning over endpoint: polardb, dts, ram (alicloud); drs, dcs, iam (huaweicloud).",
        )
        .max_len(512),
        Field::string("signature_version", "Alibaba request signature: v3 (ACS3-HMAC-SHA256) or v2 (HMAC-SHA1).")
            .one_of(&["v3", "v2"])
            .default("v3"),
        Field::string(
            "iam_user",
            "RAM user name (alicloud) or IAM user id (huaweicloud) that owns the access key; needed by rotate-root.",
        )
        .max_len(128),
        Field::list(
            "allowed_roles",
            "Roles (names or globs such as team-a-*) that may use this connection. Empty allows none.",
        )
        .max_len(256),
        Field::bool(
            "verify_connection",
            "Make a cheap signed call when the connection is written and refuse it if the call fails.",
        )
        .default(true),
        Field::int("max_retries", "Retries of a failed retryable provider call (0-10).").default(3),
        Field::duration("request_timeout", "Timeout of one provider request (1s-5m).").default(30),
        Field::int(
            "requests_per_second",
            "Pace of calls to the provider through this connection (1-1000), so bursts never trip throttling.",
        )
        .default(10),
        Field::string(
            "ca_certificate",
            "PEM certificate(s) to trust besides the system roots, for private gateways. Verification is always on.",
        )
        .max_len(65_536),
    ];
    fields.extend(schedule::fields());
    fields
}

pub fn paths() -> Vec<Path<Engine>> {
    vec![
        Path::new("config/{name}")
            .fields(fields())
            .on(Operation::Create, "Create a connection.", handler!(write))
            .on(Operation::Update, "Update a connection.", handler!(write))
            .on(Operation::Read, "Read a connection (never its secrets).", handler!(read))
            .on(Operation::Delete, "Delete a connection.", handler!(delete))
            .existence(handler!(exists))
            .help(
                "A cloud connection: credentials, endpoints and pacing for one provider account.",
                "Roles name a connection for their target and each dependent. secret_key and security_token are \
                 write-only. With verify_connection (the default), writing the connection makes one cheap signed call \
                 and refuses the write if it fails. rotation_period / rotation_schedule rotate the connection's own \
                 access key automatically (see rotate-root).",
            ),
        Path::new("config/")
            .on(Operation::List, "List connections.", handler!(list))
            .help("List the configured connections.", "Returns the names of all connections."),
    ]
}

async fn exists(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> Result<bool, Error> {
    Ok(engine
        .store
        .load_connection(data.str("name").unwrap_or_default())
        .await?
        .is_some())
}

async fn read(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let connection = engine
        .store
        .load_connection(data.str("name").unwrap_or_default())
        .await?;
    Ok(connection.map(|c| Response {
        data: c.describe(),
        ..Response::default()
    }))
}

async fn list(engine: &Arc<Engine>, _: &Request, _: &FieldData) -> HandlerResult {
    Ok(Some(Response::list(engine.store.list_connections().await?)))
}

async fn delete(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let _guard = engine.store.lock(LockKey::Connection(name)).await;
    let users = engine.store.roles_using_connection(name).await?;
    if !users.is_empty() {
        // A library set's service accounts are named by their set, once.
        let mut named: Vec<String> = users
            .iter()
            .map(|user| match super::library::split_member(user) {
                Some((set, _)) => format!("library set {set}"),
                None => user.clone(),
            })
            .collect();
        named.dedup();
        return Err(Error::bad_request(format!(
            "connection {name:?} is used by role(s) {}; delete those roles or point them at another connection first",
            named.join(", ")
        )));
    }
    let dynamic = super::dynamic::cleanup::connection_users(engine, name).await?;
    if !dynamic.is_empty() {
        return Err(Error::bad_request(format!(
            "connection {name:?} is still needed by {}: only it can delete their accounts; point the roles at another connection (or delete them) and wait for their leases to end (or revoke them), then delete the connection",
            dynamic.join(" and ")
        )));
    }
    engine.store.delete_connection(name).await?;
    Ok(None)
}

fn non_empty(data: &FieldData, name: &str) -> Option<String> {
    data.str(name)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn validate_base_url(field: &str, url: &str) -> Result<(), Error> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest
        .map(|r| r.split('/').next().unwrap_or_default())
        .unwrap_or_default();
    // What the provider clients will parse it with: a URL that passes the
    // checks above can still be unusable (port 99999, `[::1`).
    let unusable =
        if rest.is_none() || host.is_empty() || url.contains(['?', '#', '@', ' ', '\n', '\t']) {
            Some(String::new())
        } else {
            parse_base_url(url)
                .err()
                .map(|reason| format!(" ({reason})"))
        };
    if let Some(reason) = unusable {
        return Err(Error::bad_request(format!(
            "invalid {field} {url:?}{reason}: use a base URL such as https://host[:port][/path] (http:// only for emulators and private gateways), without credentials, query or fragment"
        )));
    }
    Ok(())
}

fn bounded(data: &FieldData, name: &str, min: i64, max: i64) -> Result<u32, Error> {
    let value = data.int(name).unwrap_or(min);
    if !(min..=max).contains(&value) {
        return Err(Error::bad_request(format!(
            "{name} must be between {min} and {max}, got {value}"
        )));
    }
    Ok(value as u32)
}

/// Builds the connection a write asks for, on top of the stored one.
fn apply(existing: Option<Connection>, data: &FieldData) -> Result<Connection, Error> {
    let provider_name = data.str("provider").unwrap_or_default();
    let provider = match (&existing, Provider::parse(provider_name)) {
        (Some(existing), Some(asked))
            if data.provided("provider") && asked != existing.provider =>
        {
            return Err(Error::bad_request(format!(
                "provider cannot be changed (this connection is {}); create a new connection instead",
                existing.provider.as_str()
            )));
        }
        (Some(existing), _) => existing.provider,
        (None, Some(asked)) => asked,
        (None, None) => {
            return Err(Error::bad_request(
                "missing required field \"provider\": alicloud or huaweicloud",
            ));
        }
    };
    let mut connection = existing.unwrap_or_else(|| Connection::new(provider));
    let provided = |name| data.provided(name);
    if provided("region") {
        let region = non_empty(data, "region").unwrap_or_default();
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(Error::bad_request(format!(
                "invalid region {region:?}: use the provider's region id, e.g. cn-hangzhou or cn-north-4"
            )));
        }
        connection.region = region;
    }
    if provided("access_key") {
        connection.access_key = non_empty(data, "access_key")
            .ok_or_else(|| Error::bad_request("access_key must not be empty"))?;
    }
    if provided("secret_key") {
        connection.secret_key = non_empty(data, "secret_key")
            .ok_or_else(|| Error::bad_request("secret_key must not be empty"))?;
    }
    if provided("security_token") {
        connection.security_token = non_empty(data, "security_token");
    }
    if provided("project_id") {
        connection.project_id = non_empty(data, "project_id");
    }
    if provided("domain_id") {
        connection.domain_id = non_empty(data, "domain_id");
    }
    if provided("endpoint") {
        connection.endpoint =
            non_empty(data, "endpoint").map(|u| u.trim_end_matches('/').to_owned());
    }
    if provided("endpoints") {
        let mut endpoints = std::collections::BTreeMap::new();
        for (service, url) in data.map("endpoints").cloned().unwrap_or_default() {
            let service = provider.service(&service).map_err(|why| {
                Error::bad_request(format!(
                    "endpoints: {why} ({} connections)",
                    provider.as_str()
                ))
            })?;
            endpoints.insert(service.to_owned(), url.trim_end_matches('/').to_owned());
        }
        connection.endpoints = endpoints;
    }
    if provided("signature_version") {
        connection.signature_version = match data.str("signature_version") {
            Some("v2") => SignatureVersion::V2,
            _ => SignatureVersion::V3,
        };
    }
    if provided("iam_user") {
        connection.iam_user = non_empty(data, "iam_user");
    }
    if provided("allowed_roles") {
        connection.allowed_roles = data
            .list("allowed_roles")
            .map(<[String]>::to_vec)
            .unwrap_or_default();
    }
    if provided("verify_connection") {
        connection.verify_connection = data.bool("verify_connection").unwrap_or(true);
    }
    if provided("max_retries") {
        connection.max_retries = bounded(data, "max_retries", 0, 10)?;
    }
    if provided("requests_per_second") {
        connection.requests_per_second = bounded(data, "requests_per_second", 1, 1000)?;
    }
    if provided("request_timeout") {
        let timeout = data
            .duration("request_timeout")
            .unwrap_or_default()
            .as_secs();
        if !(1..=300).contains(&timeout) {
            return Err(Error::bad_request(format!(
                "request_timeout must be between 1s and 5m, got {timeout}s"
            )));
        }
        connection.request_timeout_secs = timeout;
    }
    if provided("ca_certificate") {
        connection.ca_certificate = non_empty(data, "ca_certificate");
    }
    connection.schedule.update_from(data)?;
    validate(&connection)?;
    Ok(connection)
}

fn validate(connection: &Connection) -> Result<(), Error> {
    if connection.region.is_empty() {
        return Err(Error::bad_request("missing required field \"region\""));
    }
    if connection.provider == Provider::Huaweicloud && connection.project_id.is_none() {
        return Err(Error::bad_request(
            "huaweicloud connections need project_id (the project id of the region, see the console's My Credentials page)",
        ));
    }
    // It goes into every request path; the client refuses anything else.
    if let Some(project_id) = &connection.project_id
        && !is_path_segment(project_id)
    {
        return Err(Error::bad_request(format!(
            "invalid project_id {project_id:?}: use the project id of the region (one path segment: no '/', not '.' or '..'), see the console's My Credentials page"
        )));
    }
    if let Some(domain_id) = &connection.domain_id {
        if connection.provider != Provider::Huaweicloud {
            return Err(Error::bad_request(
                "domain_id applies to huaweicloud only; remove it (domain_id=\"\")",
            ));
        }
        // It is sent as a header: nothing but an id.
        if !domain_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::bad_request(format!(
                "invalid domain_id {domain_id:?}: use the account id (letters and digits only), see the console's My Credentials page"
            )));
        }
    }
    if connection.provider == Provider::Huaweicloud
        && connection.signature_version == SignatureVersion::V2
    {
        return Err(Error::bad_request(
            "signature_version applies to alicloud only; huaweicloud always signs with SDK-HMAC-SHA256",
        ));
    }
    if let Some(endpoint) = &connection.endpoint {
        validate_base_url("endpoint", endpoint)?;
    }
    for (service, url) in &connection.endpoints {
        validate_base_url(&format!("endpoints.{service}"), url)?;
    }
    if let Some(pem) = &connection.ca_certificate {
        let problem = if pem.contains("-----BEGIN CERTIFICATE-----") {
            // The armour alone proves nothing: build the client with it.
            check_root_certificates(pem).err()
        } else {
            Some("no -----BEGIN CERTIFICATE----- block".to_owned())
        };
        if let Some(problem) = problem {
            return Err(Error::bad_request(format!(
                "ca_certificate must hold one or more PEM certificates (-----BEGIN CERTIFICATE-----): {problem}; paste the PEM of the CA that signed the gateway's certificate, or leave ca_certificate empty"
            )));
        }
    }
    if connection.schedule.is_automatic() && connection.iam_user.is_none() {
        return Err(Error::bad_request(
            "automated root rotation needs iam_user (the RAM user name or IAM user id owning the access key)",
        ));
    }
    Ok(())
}

async fn write(engine: &Arc<Engine>, request: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    let _guard = engine.store.lock(LockKey::Connection(name)).await;
    let existing = engine.store.load_connection(name).await?;
    if existing
        .as_ref()
        .is_some_and(|c| c.root.in_flight.is_some())
    {
        return Err(Error::conflict(format!(
            "connection {name:?} is rotating its access key; retry when rotate-root/{name} has finished"
        )));
    }
    if request.operation == Operation::Update && existing.is_none() {
        // Hosts without existence checks send update for new objects.
        return Err(Error::bad_request(format!(
            "connection {name:?} does not exist"
        )));
    }
    let mut connection = apply(existing, data)?;
    if connection.verify_connection {
        engine.verify_connection(&connection).await?;
    }
    let now = engine.clock.now();
    connection.root.next_rotation = connection
        .schedule
        .next_after(connection.root.last_rotation.or(Some(now)), now);
    // Writing the connection is the answer to a rejected key.
    let was_rejected = connection.credentials_rejected.take().is_some();
    engine.store.commit_connection(name, &connection).await?;
    if was_rejected || engine.store.rejection(name).is_some() {
        engine.resume_after_rejection(name).await?;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn written(raw: Value) -> Result<Connection, Error> {
        let captures = [("name", "c1".to_owned())];
        let data = FieldData::parse(&fields(), raw.as_object().unwrap(), &captures, true)?;
        apply(None, &data)
    }

    fn refusal(key: &str, value: Value, provider: &str) -> String {
        let mut raw = json!({
            "provider": provider, "region": "cn-north-4", "access_key": "AK", "secret_key": "SK",
            "project_id": "p1", "verify_connection": false,
        });
        if provider == "alicloud" {
            raw.as_object_mut().unwrap().remove("project_id");
        }
        raw[key] = value;
        written(raw)
            .err()
            .unwrap_or_else(|| panic!("{key} accepted"))
            .to_string()
    }

    #[test]
    fn settings_no_client_can_use_are_refused_even_without_verification() {
        // Found by tests/e2e_bad_input.rs: with verify_connection=false these
        // were stored, and rotate-root on the connection then answered 502.
        let armoured = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
        let m = refusal("ca_certificate", armoured.into(), "alicloud");
        assert!(
            m.contains("ca_certificate") && m.contains("paste the PEM"),
            "{m}"
        );
        for url in ["http://x:99999", "https://[::1"] {
            let m = refusal("endpoint", url.into(), "alicloud");
            assert!(
                m.contains("invalid endpoint") && m.contains("https://host[:port]"),
                "{m}"
            );
        }
        let m = refusal("endpoints", json!({ "dts": "http://x:99999" }), "alicloud");
        assert!(m.contains("invalid endpoints.dts"), "{m}");
        for project in ["../x", "a/b", ".."] {
            let m = refusal("project_id", project.into(), "huaweicloud");
            assert!(
                m.contains("invalid project_id") && m.contains("one path segment"),
                "{m}"
            );
        }
        let fine = written(json!({
            "provider": "huaweicloud", "region": "cn-north-4", "access_key": "AK", "secret_key": "SK",
            "project_id": "054ba152d480d55b", "endpoint": "http://127.0.0.1:8080/base", "verify_connection": false,
        }));
        assert!(fine.is_ok());
    }

    #[test]
    fn domain_id_is_checked_when_written_and_shown_on_read() {
        for bad in ["a b", "x\r\nX-Evil: 1", "d/1"] {
            let m = refusal("domain_id", bad.into(), "huaweicloud");
            assert!(
                m.contains("invalid domain_id") && m.contains("letters and digits"),
                "{m}"
            );
        }
        let m = refusal("domain_id", "0a1b2c".into(), "alicloud");
        assert!(m.contains("huaweicloud only"), "{m}");
        let connection = written(json!({
            "provider": "huaweicloud", "region": "cn-north-4", "access_key": "AK", "secret_key": "SK",
            "project_id": "p1", "domain_id": "0a1b2c3d", "verify_connection": false,
        }))
        .unwrap();
        assert_eq!(connection.domain_id.as_deref(), Some("0a1b2c3d"));
        assert_eq!(connection.describe()["domain_id"], "0a1b2c3d");
    }
}
