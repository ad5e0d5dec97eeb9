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

/// Microseconds with the digits that matter.
pub fn micros(us: f64) -> String {
    if us >= 100.0 {
        format!("{us:.0} µs")
    } else if us >= 10.0 {
        format!("{us:.1} µs")
    } else {
        format!("{us:.2} µs")
    }
}
