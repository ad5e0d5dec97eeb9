//! The integration tests against real servers, files and HTTP, one module per subject, in one
//! test binary: each test binary links the whole crate, so one binary builds far faster than
//! one per file. The tests here share no process-global state; those that do are binaries of
//! their own: tests/log_privacy.rs installs the global logger, tests/redis_tls.rs sets an
//! environment variable, and tests/fault_injection.rs asserts recovery times that other tests
//! running beside it (`cargo test` runs a binary's tests on parallel threads) would blur.

#[path = "../common/mod.rs"]
mod common;
#[path = "../net_servers/mod.rs"]
mod net_servers;

mod at_rest;
#[cfg(feature = "cli")]
mod cli;
mod concurrency;
mod config;
mod config_sql_mongo;
mod cross_stack;
mod errors;
mod flask_interop;
mod flask_interop_sql_mongo;
mod http_contract;
mod large_values;
mod lifecycle;
mod memcached;
mod merge_properties;
mod metrics;
mod owners;
mod pool_timeout;
mod redis;
mod security;
mod security_store;
mod server_restart;
