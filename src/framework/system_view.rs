//! What the host tells a mount about itself and its node, as a
//! transport-free trait.

use std::time::Duration;

use async_trait::async_trait;

use super::error::Error;

/// Vault's replication-state bit set (sdk `consts.ReplicationState`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicationState(pub u32);

impl ReplicationState {
    pub const PERFORMANCE_SECONDARY: u32 = 1 << 6;
    pub const DR_SECONDARY: u32 = 1 << 9;
    pub const PERFORMANCE_STANDBY: u32 = 1 << 14;

    pub fn has(self, bits: u32) -> bool {
        self.0 & bits != 0
    }

    /// Whether a node in this state, for a mount that is `local` or not,
    /// owns background work such as scheduled rotations. This is the rule
    /// Vault's own database engine applies before starting its queue.
    pub fn runs_background_work(self, local_mount: bool) -> bool {
        !self.has(Self::DR_SECONDARY | Self::PERFORMANCE_STANDBY)
            && (local_mount || !self.has(Self::PERFORMANCE_SECONDARY))
    }
}

#[async_trait]
pub trait SystemView: Send + Sync {
    async fn default_lease_ttl(&self) -> Result<Duration, Error>;
    async fn max_lease_ttl(&self) -> Result<Duration, Error>;
    /// Generates a password from a named Vault password policy.
    async fn generate_password_from_policy(&self, policy: &str) -> Result<String, Error>;
    async fn replication_state(&self) -> Result<ReplicationState, Error>;
    async fn local_mount(&self) -> Result<bool, Error>;
    /// True while the mount is being unmounted.
    async fn tainted(&self) -> Result<bool, Error>;
}

/// A system view with fixed answers, for in-process tests and benches.
#[derive(Debug, Clone)]
pub struct StaticSystemView {
    pub default_lease_ttl: Duration,
    pub max_lease_ttl: Duration,
    pub replication_state: ReplicationState,
    pub local_mount: bool,
    /// Password policies by name: each generates this fixed value.
    pub password_policies: std::collections::HashMap<String, String>,
}

impl Default for StaticSystemView {
    fn default() -> Self {
        Self {
            default_lease_ttl: Duration::from_secs(768 * 3600),
            max_lease_ttl: Duration::from_secs(768 * 3600),
            replication_state: ReplicationState::default(),
            local_mount: false,
            password_policies: Default::default(),
        }
    }
}

#[async_trait]
impl SystemView for StaticSystemView {
    async fn default_lease_ttl(&self) -> Result<Duration, Error> {
        Ok(self.default_lease_ttl)
    }

    async fn max_lease_ttl(&self) -> Result<Duration, Error> {
        Ok(self.max_lease_ttl)
    }

    async fn generate_password_from_policy(&self, policy: &str) -> Result<String, Error> {
        self.password_policies
            .get(policy)
            .cloned()
            .ok_or_else(|| Error::bad_request(format!("password policy {policy:?} does not exist")))
    }

    async fn replication_state(&self) -> Result<ReplicationState, Error> {
        Ok(self.replication_state)
    }

    async fn local_mount(&self) -> Result<bool, Error> {
        Ok(self.local_mount)
    }

    async fn tainted(&self) -> Result<bool, Error> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_work_runs_only_on_write_capable_nodes() {
        let active = ReplicationState(4096 | 8192); // what OpenBao reports
        assert!(active.runs_background_work(false));
        assert!(
            !ReplicationState(ReplicationState::PERFORMANCE_STANDBY).runs_background_work(false)
        );
        assert!(!ReplicationState(ReplicationState::DR_SECONDARY).runs_background_work(true));
        assert!(
            !ReplicationState(ReplicationState::PERFORMANCE_SECONDARY).runs_background_work(false)
        );
        assert!(
            ReplicationState(ReplicationState::PERFORMANCE_SECONDARY).runs_background_work(true)
        );
    }
}
