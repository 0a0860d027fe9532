//! `history/:name`: the last rotations of a role, newest first. No secrets.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::framework::{Field, FieldData, HandlerResult, Operation, Path, Request, Response};
use crate::handler;

use super::core::Engine;
use super::history;

pub fn paths() -> Vec<Path<Engine>> {
    vec![Path::new("history/{name}")
        .fields([Field::string("name", "Name of the static role (a library set's service accounts: library/:name/history).")])
        .on(Operation::Read, "Read the last rotations of a role.", handler!(read))
        .help(
            "The last 20 rotations of a role.",
            "Each entry: rotation_id, started_at, updated_at, trigger (create, schedule, manual, lease-end, check-in, \
             propagate, adopt, repair), outcome (succeeded, failed, deferred, drifted), error_class and error, provider request ids, \
             the dependents updated, the number of attempts, and events (e.g. a DCS refusal of the old password); for a \
             dual-account role also account (the one the rotation changed), active_before and active_after (the \
             account static-creds served before and after it). Never a password.",
        )]
}

async fn read(engine: &Arc<Engine>, _: &Request, data: &FieldData) -> HandlerResult {
    let name = data.str("name").unwrap_or_default();
    if engine.store.load_role(name).await?.is_none() {
        return Ok(None);
    }
    let entries = history::load(engine.store.storage.as_ref(), name).await?;
    let rotations: Vec<Value> = entries.iter().rev().map(history::Entry::describe).collect();
    Ok(Some(Response::with_data(json!({ "rotations": rotations }))))
}
