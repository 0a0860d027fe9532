//! vault-plugin-secrets-cloudrotate: a Vault/OpenBao secrets engine that owns
//! and rotates Alibaba Cloud PolarDB/DTS and Huawei Cloud DCS/DRS passwords.
//!
//! Four rooms, arrows one way: `plugin` (transport) -> `framework` (Vault's
//! model) <- `engine` (paths, rotation) -> `providers` (cloud clients).
//! `emulator` serves stand-ins for the clouds and reuses only the signing
//! functions of `providers`.

pub mod emulator;
pub mod engine;
pub mod framework;
pub mod plugin;
pub mod providers;
