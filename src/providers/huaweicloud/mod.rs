//! Huawei Cloud: DRS, DCS and IAM.

pub mod sign;
