//! Alibaba Cloud: PolarDB, DTS and RAM.

pub mod sign;
