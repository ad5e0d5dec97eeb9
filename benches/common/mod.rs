//! Shared by the benchmark targets: the stores under test (each through the library and as
//! a raw driver baseline doing the same round trips), the session payloads, and the request
//! cycles both run. See docs/BENCHMARKS.md.

#![allow(dead_code)] // each benchmark target uses its own part of this module

#[cfg(feature = "capi")]
pub mod capi;
pub mod machine;
pub mod payload;
pub mod raw;
pub mod setup;
