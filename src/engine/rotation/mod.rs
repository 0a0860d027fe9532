//! Rotation machinery: the pure planner of a role's crash-safe rotation
//! and its executor, drift checks, the rotation of a connection's own
//! access key, and the runner that executes due work.

pub mod checker;
#[cfg(test)]
mod checker_dual_tests;
pub mod drift;
pub mod execute;
#[cfg(test)]
mod execute_dual_tests;
#[cfg(test)]
mod execute_tests;
pub mod plan;
#[cfg(test)]
mod plan_dual_tests;
#[cfg(test)]
mod plan_tests;
pub mod root;
pub mod runner;
