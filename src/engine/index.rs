//! What the engine keeps in memory about all roles of the mount, loaded
//! once from storage: which role owns each cloud resource, which roles use
//! each connection. Writes happen only on the active node and always go
//! through `Engine`, which keeps this in step.

use std::collections::{BTreeMap, HashMap};

use super::role::{Role, RoleKind};

#[derive(Default)]
pub struct Index {
    roles: BTreeMap<String, Summary>,
    owners: HashMap<String, String>,
}

struct Summary {
    kind: RoleKind,
    claims: Vec<String>,
    connections: Vec<String>,
}

impl Index {
    pub fn insert(&mut self, name: &str, role: &Role) {
        self.remove(name);
        let claims = role.claims();
        for claim in &claims {
            self.owners.insert(claim.clone(), name.to_owned());
        }
        let connections = role.connections().into_iter().map(str::to_owned).collect();
        self.roles.insert(
            name.to_owned(),
            Summary {
                kind: role.kind,
                claims,
                connections,
            },
        );
    }

    pub fn remove(&mut self, name: &str) {
        if let Some(summary) = self.roles.remove(name) {
            for claim in summary.claims {
                if self.owners.get(&claim).is_some_and(|owner| owner == name) {
                    self.owners.remove(&claim);
                }
            }
        }
    }

    /// The first resource of `role` already owned by another role.
    pub fn conflict(&self, name: &str, role: &Role) -> Option<(String, String)> {
        role.claims()
            .into_iter()
            .find_map(|claim| match self.owners.get(&claim) {
                Some(owner) if owner != name => Some((claim, owner.clone())),
                _ => None,
            })
    }

    pub fn roles_using(&self, connection: &str) -> Vec<String> {
        self.roles
            .iter()
            .filter(|(_, summary)| summary.connections.iter().any(|c| c == connection))
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn names(&self, kind: RoleKind) -> Vec<String> {
        self.roles
            .iter()
            .filter(|(_, s)| s.kind == kind)
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn all_names(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.roles.len()
    }
}
