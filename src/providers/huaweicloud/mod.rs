//! Huawei Cloud: DRS, DCS and IAM over REST with JSON bodies, signed with
//! SDK-HMAC-SHA256.

pub mod client;
pub mod dcs;
pub mod drs;
pub mod endpoints;
pub mod iam;
pub mod sign;

pub use client::{HuaweiClient, HuaweiConfig};

cloud_services! {
    /// The Huawei Cloud services a REST call can be for.
    HuaweiService { Drs, Dcs, Iam }
}
