//! Cloud clients that know nothing of Vault: signing, typed calls, one error
//! type whose class drives retries, shared pacing and backoff.

pub mod alicloud;
pub mod encoding;
pub mod huaweicloud;
