//! The targets' own state (status and description, which carries the
//! ownership marker), read coalesced per connection the way `drs_batch`
//! coalesces DRS calls: while one read is on its way, the reads of other
//! rotations queue and go together in the next call. A batch of one is a
//! single-resource read; a larger one lists: DCS `ListInstances` (1,000 per
//! page), PolarDB `DescribeAccounts` per cluster (100 per page). Listing
//! stops when paging on would cost more calls than reading the rest one by
//! one.

// Each answer carries the clients' one error type by value, as every other
// provider call does.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use crate::providers::alicloud::polardb::{
    DescribeAccountsPage, DescribeAccountsRequest, MAX_ACCOUNTS_PAGE, PolarDbAccount, PolarDbClient,
};
use crate::providers::huaweicloud::dcs::acl::AclAccount;
use crate::providers::huaweicloud::dcs::{DcsClient, DcsInstance, MAX_INSTANCES_PAGE};
use crate::providers::{ErrorClass, ErrorKind, ProviderError, Service};

use super::batch::Batches;
use super::{AccountInfo, TargetState};

impl From<&DcsInstance> for TargetState {
    fn from(instance: &DcsInstance) -> Self {
        Self {
            status: instance.status.clone(),
            description: instance.description.clone().unwrap_or_default(),
            account_status: None,
        }
    }
}

impl From<&PolarDbAccount> for TargetState {
    fn from(account: &PolarDbAccount) -> Self {
        Self {
            status: account.account_status.clone(),
            description: account.account_description.clone().unwrap_or_default(),
            account_status: None,
        }
    }
}

impl From<&PolarDbAccount> for AccountInfo {
    fn from(account: &PolarDbAccount) -> Self {
        Self::new(
            account.account_name.clone(),
            account.account_status.clone(),
            account.account_type.clone(),
            account
                .database_privileges
                .iter()
                .map(|p| (p.db_name.clone(), p.account_privilege.clone()))
                .collect(),
        )
    }
}

/// An ACL account's role holds on every key: DCS grants no finer rights.
impl From<&AclAccount> for AccountInfo {
    fn from(account: &AclAccount) -> Self {
        Self::new(
            account.account_name.clone(),
            account.status.clone(),
            account.account_type.clone(),
            account
                .account_role
                .iter()
                .map(|role| ("*".to_owned(), role.clone()))
                .collect(),
        )
    }
}

fn account_not_found(cluster: &str, account: &str) -> ProviderError {
    ProviderError::new(
        ErrorClass::Permanent,
        ErrorKind::NotFound,
        Service::Polardb,
        "DescribeAccounts",
        &format!("cluster {cluster} has no account {account:?}"),
        &[],
    )
}

/// One account of a cluster, by its own DescribeAccounts call.
pub async fn describe_account(
    client: &PolarDbClient,
    cluster: &str,
    account: &str,
) -> Result<PolarDbAccount, ProviderError> {
    find_account(client, cluster, account)
        .await?
        .ok_or_else(|| account_not_found(cluster, account))
}

/// One PolarDB account of `cluster`, if it has it (DescribeAccounts
/// filtered by name).
pub async fn find_account(
    client: &PolarDbClient,
    cluster: &str,
    name: &str,
) -> Result<Option<PolarDbAccount>, ProviderError> {
    let request = DescribeAccountsRequest {
        db_cluster_id: cluster.to_owned(),
        account_name: Some(name.to_owned()),
    };
    Ok(client
        .describe_accounts(&request)
        .await?
        .accounts
        .into_iter()
        .find(|a| a.account_name == name))
}

/// Reads of DCS instances through one connection.
pub struct InstanceReader {
    client: DcsClient,
    batches: Arc<Batches<String, TargetState>>,
}

impl InstanceReader {
    pub fn new(client: DcsClient) -> Self {
        Self {
            client,
            batches: Arc::new(Batches::new()),
        }
    }

    pub async fn read(&self, instance_id: &str) -> Result<TargetState, ProviderError> {
        let client = self.client.clone();
        self.batches
            .submit(vec![instance_id.to_owned()], move |ids: Vec<String>| {
                read_instances(client.clone(), ids)
            })
            .await
            .pop()
            .expect("one answer per item")
    }
}

async fn read_instances(
    client: DcsClient,
    ids: Vec<String>,
) -> Vec<Result<TargetState, ProviderError>> {
    let mut found: HashMap<String, TargetState> = HashMap::new();
    if ids.len() > 1 {
        let mut offset = 0;
        loop {
            let page = match client.list_instances(offset).await {
                Ok(page) => page,
                Err(error) => return ids.iter().map(|_| Err(error.clone())).collect(),
            };
            offset += page.instances.len();
            for instance in &page.instances {
                if ids.contains(&instance.instance_id) {
                    found.insert(instance.instance_id.clone(), instance.into());
                }
            }
            let missing = ids.iter().filter(|id| !found.contains_key(*id)).count();
            let pages_left = page
                .total
                .saturating_sub(offset)
                .div_ceil(MAX_INSTANCES_PAGE);
            if missing == 0 || page.instances.is_empty() || pages_left == 0 || pages_left > missing
            {
                break;
            }
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in &ids {
        out.push(match found.get(id).cloned() {
            Some(state) => Ok(state),
            // Not listed (or a batch of one): its own read, which also
            // gives the provider's own error for an instance that is gone.
            None => client
                .show_instance(id)
                .await
                .map(|instance| (&instance).into()),
        });
    }
    out
}

/// Reads of PolarDB accounts through one connection: `(cluster, account)`.
pub struct AccountReader {
    client: PolarDbClient,
    batches: Arc<Batches<(String, String), TargetState>>,
}

impl AccountReader {
    pub fn new(client: PolarDbClient) -> Self {
        Self {
            client,
            batches: Arc::new(Batches::new()),
        }
    }

    pub async fn read(&self, cluster: &str, account: &str) -> Result<TargetState, ProviderError> {
        let client = self.client.clone();
        self.batches
            .submit(
                vec![(cluster.to_owned(), account.to_owned())],
                move |items: Vec<(String, String)>| read_accounts(client.clone(), items),
            )
            .await
            .pop()
            .expect("one answer per item")
    }
}

async fn read_accounts(
    client: PolarDbClient,
    items: Vec<(String, String)>,
) -> Vec<Result<TargetState, ProviderError>> {
    let mut by_cluster: HashMap<&str, Vec<&str>> = HashMap::new();
    for (cluster, account) in &items {
        by_cluster.entry(cluster).or_default().push(account);
    }
    let mut found: HashMap<(String, String), Result<TargetState, ProviderError>> = HashMap::new();
    for (cluster, accounts) in by_cluster {
        if accounts.len() < 2 {
            continue;
        }
        for page_number in 1.. {
            let page = DescribeAccountsPage {
                db_cluster_id: cluster.to_owned(),
                page_number,
            };
            match client.describe_accounts_page(&page).await {
                Ok(answer) => {
                    for account in answer
                        .accounts
                        .iter()
                        .filter(|a| accounts.contains(&a.account_name.as_str()))
                    {
                        found.insert(
                            (cluster.to_owned(), account.account_name.clone()),
                            Ok(account.into()),
                        );
                    }
                    let missing = accounts
                        .iter()
                        .filter(|a| !found.contains_key(&(cluster.to_owned(), (**a).to_owned())))
                        .count();
                    if missing == 0 || answer.accounts.len() < MAX_ACCOUNTS_PAGE as usize {
                        break;
                    }
                }
                Err(error) => {
                    for account in &accounts {
                        found.insert(
                            (cluster.to_owned(), (*account).to_owned()),
                            Err(error.clone()),
                        );
                    }
                    break;
                }
            }
        }
    }
    let mut out = Vec::with_capacity(items.len());
    for (cluster, account) in items {
        let key = (cluster, account);
        out.push(match found.get(&key).cloned() {
            Some(answer) => answer,
            None => {
                let (cluster, account) = key;
                describe_account(&client, &cluster, &account)
                    .await
                    .map(|found| TargetState::from(&found))
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn polardb_grants_compare_whatever_order_the_provider_lists_them_in() {
        let account = |name: &str, grants: Value| -> PolarDbAccount {
            serde_json::from_value(json!({
                "AccountName": name, "AccountStatus": "Available", "AccountType": "Normal",
                "DatabasePrivileges": grants,
            }))
            .unwrap()
        };
        let blue = AccountInfo::from(&account(
            "app_blue",
            json!([{"DBName": "zdb", "AccountPrivilege": "ReadOnly"},
                   {"DBName": "appdb", "AccountPrivilege": "ReadWrite"}]),
        ));
        let green = AccountInfo::from(&account(
            "app_green",
            json!({"DatabasePrivilege": [{"DBName": "appdb", "AccountPrivilege": "ReadWrite"},
                                         {"DBName": "zdb", "AccountPrivilege": "ReadOnly"}]}),
        ));
        assert_eq!(blue.kind.as_deref(), Some("Normal"));
        assert_eq!(blue.status.as_deref(), Some("Available"));
        assert_eq!(blue.privileges, green.privileges);
        assert_eq!(blue.privileges[0].0, "appdb");
    }

    #[test]
    fn an_acl_account_holds_its_role_on_every_key() {
        let account: AclAccount = serde_json::from_value(json!({
            "account_id": "a1", "account_name": "app_blue", "account_type": "normal",
            "status": "UPDATING", "account_role": "read",
        }))
        .unwrap();
        let info = AccountInfo::from(&account);
        assert_eq!(info.privileges, [("*".to_owned(), "read".to_owned())]);
        assert_eq!(info.status.as_deref(), Some("UPDATING"));
        assert_eq!(info.kind.as_deref(), Some("normal"));
    }
}
