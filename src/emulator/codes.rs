//! The only error codes the emulator can answer with, each documented by
//! its provider: `docs/provider-errors.md` holds them with their sources,
//! and `tests/provider_errors_doc.rs` checks every [`Code`] here is a row
//! there. A reply takes a [`Code`], which only this module can make, so no
//! code can reach an answer without being listed in [`ALL`].
//!
//! Scripted faults name their code as text; [`documented`] checks it
//! against the same file (compiled in), so a test cannot script an answer
//! the provider never gives.

/// One documented code, with the table of `docs/provider-errors.md` it
/// belongs to (a service, or `alibaba` / `huawei` for codes every service
/// of that cloud answers with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    table: &'static str,
    code: &'static str,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        self.code
    }

    pub fn table(self) -> &'static str {
        self.table
    }
}

macro_rules! codes {
    ($($table:literal { $($name:ident = $code:literal,)* })*) => {
        $($(pub const $name: Code = Code { table: $table, code: $code };)*)*
        /// Every code the emulator can answer with.
        pub const ALL: &[Code] = &[$($($name,)*)*];
    };
}

codes! {
    "alibaba" {
        THROTTLING_USER = "Throttling.User",
        INTERNAL_ERROR = "InternalError",
        SERVICE_UNAVAILABLE = "ServiceUnavailable",
        SIGNATURE_NONCE_USED = "SignatureNonceUsed",
        INVALID_ACCESS_KEY_ID_NOT_FOUND = "InvalidAccessKeyId.NotFound",
        INVALID_ACCESS_KEY_ID_INACTIVE = "InvalidAccessKeyId.Inactive",
        SIGNATURE_DOES_NOT_MATCH = "SignatureDoesNotMatch",
        INCOMPLETE_SIGNATURE = "IncompleteSignature",
        INVALID_TIMESTAMP_FORMAT = "InvalidTimeStamp.Format",
        INVALID_TIMESTAMP_EXPIRED = "InvalidTimeStamp.Expired",
        INVALID_SECURITY_TOKEN_EXPIRED = "InvalidSecurityToken.Expired",
        INVALID_SECURITY_TOKEN_MALFORMED = "InvalidSecurityToken.Malformed",
        MISSING_ACCESS_KEY_ID = "MissingAccessKeyId",
        MISSING_TIMESTAMP = "MissingTimestamp",
        MISSING_SIGNATURE_NONCE = "MissingSignatureNonce",
        MISSING_PARAMETER = "MissingParameter",
        INVALID_VERSION = "InvalidVersion",
        INVALID_ACTION_NOT_FOUND = "InvalidAction.NotFound",
    }
    "polardb" {
        INVALID_ACCOUNT_PASSWORD_MALFORMED = "InvalidAccountPassword.Malformed",
        INVALID_DB_CLUSTER_ID_NOT_FOUND = "InvalidDBClusterId.NotFound",
        INVALID_ACCOUNT_NAME_NOT_FOUND = "InvalidAccountName.NotFound",
        INCORRECT_DB_CLUSTER_STATE = "IncorrectDBClusterState",
        INVALID_ACCOUNT_NAME_DUPLICATE = "InvalidAccountName.Duplicate",
        INVALID_ACCOUNT_NAME_MALFORMED = "InvalidAccountName.Malformed",
        INVALID_ACCOUNT_DESCRIPTION_MALFORMED = "InvalidAccountDescription.Malformed",
        POLARDB_INVALID_PARAMETER = "InvalidParameter",
        POLARDB_ACCOUNT_QUOTA_EXCEEDED = "QuotaExceeded.AccountName",
        POLARDB_DB_NAME_NOT_FOUND = "InvalidDBName.NotFound",
        POLARDB_ACCOUNT_TYPE_DENIED = "OperationDenied.AccountType",
        POLARDB_CLUSTER_STATUS_DENIED = "OperationDenied.DBClusterStatus",
    }
    "dts" {
        DTS_INVALID_PARAMETER = "InvalidParameter",
        DTS_INSTANCE_NOT_FOUND = "Forbidden.InstanceNotFound",
        DTS_JOB_STATUS_DENIED = "OperationDenied.JobStatus",
    }
    "ram" {
        RAM_USER_NOT_FOUND = "EntityNotExist.User",
        RAM_ACCESS_KEY_NOT_FOUND = "EntityNotExist.User.AccessKey",
        RAM_ACCESS_KEY_LIMIT = "LimitExceeded.User.AccessKey",
    }
    "huawei" {
        APIGW_API_NOT_FOUND = "APIGW.0101",
        APIGW_BACKEND = "APIGW.0201",
        APIGW_AUTH = "APIGW.0301",
        APIGW_THROTTLED = "APIGW.0308",
    }
    "drs" {
        DRS_INVALID_REQUEST = "DRS.M00007",
        DRS_PARAMETER_EMPTY = "DRS.M00201",
        DRS_PARAMETER_INVALID = "DRS.M00202",
        DRS_PAGE_INVALID = "DRS.M00210",
        DRS_PAGE_TOO_LARGE = "DRS.M00211",
        DRS_JOB_STATUS = "DRS.M00304",
        DRS_JOB_NOT_EXIST = "DRS.10000010",
        DRS_SERVICE_ABNORMAL = "DRS.M00004",
    }
    "dcs" {
        DCS_INSTANCE_NOT_FOUND = "DCS.3022",
        DCS_INVALID_PASSWORD = "DCS.4019",
        DCS_NOT_RUNNING = "DCS.4049",
        DCS_PASSWORD_FREE = "DCS.4850",
        DCS_STATE_NOT_SUPPORTED = "DCS.4026",
        DCS_INTERNAL_ERROR = "DCS.5000",
        DCS_ACL_PARAMETER_INVALID = "DCS.4961",
        DCS_INVALID_BODY = "DCS.4005",
        DCS_QUOTA_REACHED = "DCS.4039",
        DCS_ENGINE_VERSION_NOT_SUPPORTED = "DCS.4008",
    }
    "iam" {
        IAM_NOT_FOUND = "IAM.0004",
        IAM_INVALID_BODY = "IAM.0011",
    }
}

/// The provider-errors document, compiled in.
pub const PROVIDER_ERRORS: &str = include_str!("../../docs/provider-errors.md");

/// One row of a table of `docs/provider-errors.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentedRow {
    /// The table's key: `alibaba`, `polardb`, ..., `huawei`, `drs`, ...
    pub table: String,
    /// The code cell without its backticks (`message: akSkNumExceed` and
    /// `result: passwordFailed` keep their prefix).
    pub code: String,
    pub meaning: String,
    pub http_status: u16,
    pub class: String,
    /// The `ErrorKind` variant name.
    pub kind: String,
    pub source: String,
}

/// Every row of every table of the document: a `## key: title` heading
/// names the table, each `| ... |` line under it with six cells is a row.
pub fn documented_rows(document: &str) -> Result<Vec<DocumentedRow>, String> {
    let mut rows = Vec::new();
    let mut table: Option<String> = None;
    for (number, line) in document.lines().enumerate() {
        if let Some(heading) = line.strip_prefix("## ") {
            table = heading.split(':').next().map(|key| key.trim().to_owned());
            continue;
        }
        let Some(inner) = line
            .trim()
            .strip_prefix('|')
            .and_then(|l| l.strip_suffix('|'))
        else {
            continue;
        };
        let cells: Vec<&str> = inner.split('|').map(str::trim).collect();
        if cells.len() != 6 || cells[0] == "code" || cells[0].starts_with("---") {
            continue;
        }
        let unquote = |cell: &str| cell.trim_matches('`').to_owned();
        let table = table
            .clone()
            .ok_or_else(|| format!("line {}: a row before any table", number + 1))?;
        let http_status = cells[2]
            .parse()
            .map_err(|_| format!("line {}: HTTP {:?} is not a status", number + 1, cells[2]))?;
        rows.push(DocumentedRow {
            table,
            code: unquote(cells[0]),
            meaning: cells[1].to_owned(),
            http_status,
            class: cells[3].to_owned(),
            kind: unquote(cells[4]),
            source: cells[5].to_owned(),
        });
    }
    Ok(rows)
}

/// The tables a service's answers may use: its own and its cloud's.
pub fn tables_of(service: &str) -> Option<[&'static str; 2]> {
    Some(match service {
        "polardb" => ["polardb", "alibaba"],
        "dts" => ["dts", "alibaba"],
        "ram" => ["ram", "alibaba"],
        "drs" => ["drs", "huawei"],
        "dcs" => ["dcs", "huawei"],
        "iam" => ["iam", "huawei"],
        _ => return None,
    })
}

/// The HTTP status of `code`'s first row for `service` (`polardb`,
/// `drs`, ...), or `None` when the document does not list it.
pub fn documented_status(service: &str, code: &str) -> Option<u16> {
    let tables = tables_of(service)?;
    documented_rows(PROVIDER_ERRORS)
        .unwrap_or_default()
        .into_iter()
        .find(|row| row.code == code && tables.contains(&row.table.as_str()))
        .map(|row| row.http_status)
}

/// Whether `code` is documented for `service`.
pub fn documented(service: &str, code: &str) -> bool {
    documented_status(service, code).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_document_parses() {
        let rows = documented_rows(PROVIDER_ERRORS).unwrap();
        assert!(rows.len() > 50, "{} rows", rows.len());
        assert!(documented("dcs", "DCS.4049"));
        assert!(documented("dcs", "APIGW.0308"), "the gateway's codes");
        assert!(!documented("dcs", "DCS.4013"));
        assert!(!documented("polardb", "DCS.4049"), "another cloud's code");
        assert!(!documented("nosuch", "DCS.4049"));
    }

    #[test]
    fn malformed_rows_are_refused() {
        assert!(documented_rows("| `X` | m | 400 | permanent | `Other` | s |").is_err());
        assert!(
            documented_rows("## dcs: x\n| `X` | m | four | permanent | `Other` | s |").is_err()
        );
    }
}
