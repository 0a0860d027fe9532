//! Alibaba Cloud: PolarDB, DTS and RAM over the RPC style (`POST /`,
//! parameters in the query), signed with ACS3-HMAC-SHA256 or V2.

pub mod client;
pub mod dts;
pub mod endpoints;
pub mod polardb;
pub mod ram;
pub mod sign;

pub use client::{AlibabaClient, AlibabaConfig, SignatureVersion};

cloud_services! {
    /// The Alibaba Cloud services an RPC call can be for.
    AlibabaService { Polardb, Dts, Ram }
}
