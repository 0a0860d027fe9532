//! What the engine keeps in memory about all roles of the mount, loaded
//! once from storage: which role owns each cloud resource, which roles use
//! each connection. Writes happen only on the active node and always go
//! through `Engine`, which keeps this in step.
//!
//! Held for every role of the mount, so kept compact: the names back to
//! back in one buffer, and one sorted vector of fixed-size entries: no
//! allocation of its own for a role that claims and uses nothing (an
//! external target). Thousands of small long-lived allocations, one per
//! role, cost more than their size: each pins the heap around it, so the
//! short-lived ones of every request after it take fresh pages (measured
//! with `benches/runtime.rs`). Changes move at most one vector's tail,
//! microseconds at tens of thousands of roles.

use super::role::{Role, RoleKind};

#[derive(Default)]
pub struct Index {
    /// Every role's name, back to back; entries point into it.
    names: String,
    /// Bytes of `names` no entry points to any more.
    unused: usize,
    /// Sorted by name.
    roles: Vec<Entry>,
    /// Sorted by resource: the role that owns it.
    owners: Vec<(Box<str>, Box<str>)>,
}

struct Entry {
    /// The name is `names[start..start + len]`.
    start: u32,
    len: u32,
    kind: RoleKind,
    /// `None` for a role that claims no resource and uses no connection.
    uses: Option<Box<Uses>>,
}

struct Uses {
    claims: Box<[Box<str>]>,
    connections: Box<[Box<str>]>,
}

fn boxed(items: impl IntoIterator<Item = impl Into<Box<str>>>) -> Box<[Box<str>]> {
    items.into_iter().map(Into::into).collect()
}

fn offset(n: usize) -> u32 {
    u32::try_from(n).expect("role names take less than 4 GiB")
}

impl Index {
    /// Adds or replaces `name`; a role whose kind, claims and connections
    /// are unchanged (every commit of a rotation) is left as it is, so
    /// state-only writes allocate nothing long-lived.
    pub fn insert(&mut self, name: &str, role: &Role) {
        let claims = role.claims();
        let connections = role.connections();
        if let Ok(at) = self.position(name) {
            let entry = &self.roles[at];
            let (known_claims, known_connections): (&[Box<str>], &[Box<str>]) = match &entry.uses {
                Some(uses) => (&uses.claims, &uses.connections),
                None => (&[], &[]),
            };
            fn same<S: AsRef<str>>(known: &[Box<str>], now: &[S]) -> bool {
                known.len() == now.len() && known.iter().zip(now).all(|(k, n)| **k == *n.as_ref())
            }
            if entry.kind == role.kind
                && same(known_claims, &claims)
                && same(known_connections, &connections)
            {
                return;
            }
        }
        self.remove(name);
        let uses = (!claims.is_empty() || !connections.is_empty()).then(|| {
            Box::new(Uses {
                claims: boxed(claims),
                connections: boxed(connections),
            })
        });
        for claim in uses.iter().flat_map(|uses| uses.claims.iter()) {
            match self.owners.binary_search_by(|(c, _)| c.cmp(claim)) {
                Ok(at) => self.owners[at].1 = name.into(),
                Err(at) => self.owners.insert(at, (claim.clone(), name.into())),
            }
        }
        let at = self.position(name).unwrap_err();
        let entry = Entry {
            start: offset(self.names.len()),
            len: offset(name.len()),
            kind: role.kind,
            uses,
        };
        self.names.push_str(name);
        self.roles.insert(at, entry);
    }

    pub fn remove(&mut self, name: &str) {
        let Ok(at) = self.position(name) else {
            return;
        };
        let entry = self.roles.remove(at);
        for claim in entry.uses.iter().flat_map(|uses| uses.claims.iter()) {
            if let Ok(at) = self.owners.binary_search_by(|(c, _)| c.cmp(claim))
                && &*self.owners[at].1 == name
            {
                self.owners.remove(at);
            }
        }
        self.unused += entry.len as usize;
        if self.unused > self.names.len() / 2 {
            self.compact();
        }
    }

    /// Drops the names of removed roles from `names`.
    fn compact(&mut self) {
        let mut names = String::with_capacity(self.names.len() - self.unused);
        for entry in &mut self.roles {
            let start = entry.start as usize;
            let name = &self.names[start..start + entry.len as usize];
            entry.start = offset(names.len());
            names.push_str(name);
        }
        self.names = names;
        self.unused = 0;
    }

    /// Frees the spare capacity left by growing, after the initial load.
    pub fn shrink_to_fit(&mut self) {
        self.names.shrink_to_fit();
        self.roles.shrink_to_fit();
        self.owners.shrink_to_fit();
    }

    fn name(&self, entry: &Entry) -> &str {
        let start = entry.start as usize;
        &self.names[start..start + entry.len as usize]
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.roles
            .binary_search_by(|entry| self.name(entry).cmp(name))
    }

    fn owner(&self, claim: &str) -> Option<&str> {
        let at = self
            .owners
            .binary_search_by(|(c, _)| (**c).cmp(claim))
            .ok()?;
        Some(&*self.owners[at].1)
    }

    /// The first resource of `role` already owned by another role.
    pub fn conflict(&self, name: &str, role: &Role) -> Option<(String, String)> {
        role.claims()
            .into_iter()
            .find_map(|claim| match self.owner(&claim) {
                Some(owner) if owner != name => Some((claim, owner.to_owned())),
                _ => None,
            })
    }

    fn names_where(&self, keep: impl Fn(&Entry) -> bool) -> Vec<String> {
        self.roles
            .iter()
            .filter(|entry| keep(entry))
            .map(|entry| self.name(entry).to_owned())
            .collect()
    }

    pub fn roles_using(&self, connection: &str) -> Vec<String> {
        self.names_where(|entry| {
            entry
                .uses
                .as_ref()
                .is_some_and(|uses| uses.connections.iter().any(|c| &**c == connection))
        })
    }

    pub fn names(&self, kind: RoleKind) -> Vec<String> {
        self.names_where(|entry| entry.kind == kind)
    }

    pub fn all_names(&self) -> Vec<String> {
        self.names_where(|_| true)
    }

    pub fn len(&self) -> usize {
        self.roles.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::role::Target;

    fn polardb(connection: &str, cluster: &str, user: &str) -> Role {
        let mut role = Role::new(
            RoleKind::Static,
            Target::PolardbAccount {
                connection: connection.into(),
                cluster_id: cluster.into(),
            },
        );
        role.username = Some(user.into());
        role
    }

    #[test]
    fn one_role_per_resource_and_the_users_of_each_connection() {
        let mut index = Index::default();
        let a = polardb("c1", "pc-1", "app");
        index.insert("b", &a);
        index.insert("a", &Role::new(RoleKind::Library, Target::External));
        index.insert("c", &polardb("c2", "pc-2", "app"));
        assert_eq!(index.all_names(), ["a", "b", "c"]);
        assert_eq!(index.names(RoleKind::Static), ["b", "c"]);
        assert_eq!(index.names(RoleKind::Library), ["a"]);
        assert_eq!(index.roles_using("c1"), ["b"]);

        // The same account through another connection is the same resource.
        let same = polardb("c2", "pc-1", "app");
        assert_eq!(
            index.conflict("d", &same),
            Some(("polardb:pc-1/app".to_owned(), "b".to_owned()))
        );
        assert_eq!(index.conflict("b", &same), None, "its own resource");

        // Moving a role to another resource frees the first one.
        index.insert("b", &polardb("c1", "pc-1", "other"));
        assert_eq!(index.conflict("d", &same), None);
        assert_eq!(index.len(), 3);
        index.remove("b");
        assert_eq!(index.roles_using("c1"), Vec::<String>::new());
        assert_eq!(index.conflict("d", &polardb("c1", "pc-1", "other")), None);
        assert_eq!(
            index.conflict("d", &polardb("c1", "pc-2", "app")),
            Some(("polardb:pc-2/app".to_owned(), "c".to_owned()))
        );
    }

    #[test]
    fn removed_names_are_dropped_from_the_buffer() {
        let mut index = Index::default();
        let role = Role::new(RoleKind::Static, Target::External);
        let names: Vec<String> = (0..100).map(|i| format!("role-{i:03}")).collect();
        for name in names.iter().rev() {
            index.insert(name, &role);
        }
        for name in names.iter().filter(|name| !name.ends_with('7')) {
            index.remove(name);
        }
        let kept: Vec<String> = names
            .iter()
            .filter(|name| name.ends_with('7'))
            .cloned()
            .collect();
        assert_eq!(index.all_names(), kept);
        assert!(index.names.len() < 2 * kept.len() * "role-000".len());
        index.insert("role-500", &role);
        assert_eq!(index.all_names().last().unwrap(), "role-500");
    }
}
