//! The OpenAPI 3 document the host merges into `sys/internal/specs/openapi`.

use serde_json::{Map, Value, json};

use super::field::{Field, FieldType};
use super::operation::Operation;
use super::path::Path;
use super::router::BackendInfo;

pub fn document<S>(info: &BackendInfo, paths: &[&Path<S>], prefix: &str) -> Value {
    let mut items = Map::new();
    let mut schemas = Map::new();
    for path in paths {
        items.insert(path.openapi_path(), path_item(path, prefix, &mut schemas));
    }
    json!({
        "openapi": "3.0.2",
        "info": {
            "title": info.title,
            "description": info.help.trim().lines().next().unwrap_or_default(),
            "version": info.version,
            "license": { "name": "Mozilla Public License 2.0", "url": "https://www.mozilla.org/en-US/MPL/2.0" }
        },
        "paths": items,
        "components": { "schemas": schemas }
    })
}

fn schema(field: &Field) -> Value {
    let mut schema = match field.kind {
        FieldType::String => json!({ "type": "string" }),
        FieldType::Bool => json!({ "type": "boolean" }),
        FieldType::Int => json!({ "type": "integer" }),
        FieldType::Duration => json!({ "type": "string", "format": "duration" }),
        FieldType::StringList => json!({ "type": "array", "items": { "type": "string" } }),
        FieldType::Map => json!({ "type": "object", "additionalProperties": { "type": "string" } }),
    };
    let object = schema.as_object_mut().expect("schemas are objects");
    object.insert("description".into(), Value::from(field.description));
    if let Some(default) = &field.default {
        object.insert("default".into(), default.clone());
    }
    if !field.allowed.is_empty() {
        object.insert("enum".into(), Value::from(field.allowed.to_vec()));
    }
    if field.kind == FieldType::String {
        object.insert("maxLength".into(), Value::from(field.max_len));
    }
    if field.sensitive {
        object.insert("x-vault-displaySensitive".into(), Value::Bool(true));
    }
    schema
}

fn camel(words: &str) -> String {
    words
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn path_item<S>(path: &Path<S>, prefix: &str, schemas: &mut Map<String, Value>) -> Value {
    let captures: Vec<&str> = path.captures().collect();
    let slug = path
        .pattern
        .trim_end_matches('/')
        .replace(['{', '}'], "")
        .replace('/', "-");
    let mut item = Map::new();
    item.insert("description".into(), Value::from(path.synopsis));
    let parameters: Vec<Value> = path
        .fields
        .iter()
        .filter(|field| captures.contains(&field.name))
        .map(|field| json!({ "name": field.name, "description": field.description, "in": "path", "schema": { "type": "string" }, "required": true }))
        .collect();
    if !parameters.is_empty() {
        item.insert("parameters".into(), Value::from(parameters));
    }
    if path.operation(Operation::Create).is_some() {
        item.insert("x-vault-createSupported".into(), Value::Bool(true));
    }
    let body_fields: Vec<&Field> = path
        .fields
        .iter()
        .filter(|field| !captures.contains(&field.name))
        .collect();
    for spec in &path.operations {
        let (method, verb) = match spec.operation {
            Operation::Read => ("get", "read"),
            Operation::List => ("get", "list"),
            Operation::Create | Operation::Update => ("post", "write"),
            Operation::Delete => ("delete", "delete"),
            _ => continue,
        };
        if item.contains_key(method) {
            continue;
        }
        let operation_id = format!("{prefix}-{verb}-{slug}");
        let mut operation = json!({
            "summary": spec.summary,
            "operationId": operation_id,
            "tags": ["secrets"],
            "responses": { "200": { "description": "OK" } }
        });
        if spec.operation == Operation::List {
            operation["parameters"] = json!([{ "name": "list", "description": "Must be set to `true`", "in": "query", "required": true, "schema": { "type": "string", "enum": ["true"] } }]);
        }
        if method == "post" && !body_fields.is_empty() {
            let name = format!("{}Request", camel(&operation_id));
            let properties: Map<String, Value> = body_fields
                .iter()
                .map(|field| (field.name.to_owned(), schema(field)))
                .collect();
            let required: Vec<&str> = body_fields
                .iter()
                .filter(|field| field.required)
                .map(|field| field.name)
                .collect();
            let mut body = json!({ "type": "object", "properties": properties });
            if !required.is_empty() {
                body["required"] = Value::from(required);
            }
            schemas.insert(name.clone(), body);
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } } }
            });
        }
        item.insert(method.into(), operation);
    }
    Value::Object(item)
}
