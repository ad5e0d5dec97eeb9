//! With the `capi` feature, generates the C header from the C ABI's sources (`src/ffi/`) with
//! cbindgen (settings in `cbindgen.toml`) into `$OUT_DIR/sessionstore.h`, and nowhere else:
//! `scripts/check-header.sh` compares the committed `include/sessionstore.h` with it, and
//! `scripts/check-header.sh --update` copies it there.
//!
//! Gives the shared library (the cdylib) the SONAME `libsessionstore.so.<major>`
//! ([`SONAME_MAJOR`]): programs linked against it record that name, and
//! `scripts/install-c.sh` installs the symlinks that resolve it.

/// The SONAME's version: the C ABI's compatibility level, raised with any change that breaks
/// a program built against an earlier library.
const SONAME_MAJOR: u32 = 0;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsessionstore.so.{SONAME_MAJOR}");
    }
    store_group_cfgs();
    #[cfg(feature = "capi")]
    header::generate();
}

/// Store feature groups, each a `cfg` set when any of its features is on: the code names
/// the group (`#[cfg(sql_store)]`) instead of repeating its list of features.
const STORE_GROUPS: &[(&str, &[&str])] = &[
    (
        "any_store",
        &[
            "memory",
            "filesystem",
            "sqlite",
            "postgres",
            "mysql",
            "mongodb",
            "redis",
            "memcached",
        ],
    ),
    // Every store but the in-memory one: they keep sessions outside the process, take
    // options in their URL and show keys in their errors.
    (
        "external_store",
        &[
            "filesystem",
            "sqlite",
            "postgres",
            "mysql",
            "mongodb",
            "redis",
            "memcached",
        ],
    ),
    // Stores with a connection pool (and a `pool_timeout`).
    (
        "pooled_store",
        &[
            "sqlite",
            "postgres",
            "mysql",
            "mongodb",
            "redis",
            "memcached",
        ],
    ),
    // Stores that connect to a server.
    (
        "server_store",
        &["postgres", "mysql", "mongodb", "redis", "memcached"],
    ),
    ("sql_store", &["sqlite", "postgres", "mysql"]),
];

/// Declares the [`STORE_GROUPS`] cfgs and sets those with an enabled feature.
fn store_group_cfgs() {
    for (group, features) in STORE_GROUPS {
        println!("cargo:rustc-check-cfg=cfg({group})");
        let enabled = features.iter().any(|feature| {
            std::env::var_os(format!("CARGO_FEATURE_{}", feature.to_uppercase())).is_some()
        });
        if enabled {
            println!("cargo:rustc-cfg={group}");
        }
    }
}

#[cfg(feature = "capi")]
mod header {
    use std::path::PathBuf;

    /// The C ABI's root module: cbindgen reads it, then follows its `mod` declarations, in
    /// their order, into every other file of `src/ffi/`.
    const SOURCE: &str = "src/ffi/mod.rs";
    const SOURCE_DIR: &str = "src/ffi";
    const CONFIG: &str = "cbindgen.toml";

    pub fn generate() {
        println!("cargo:rerun-if-changed={SOURCE_DIR}");
        println!("cargo:rerun-if-changed={CONFIG}");
        let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
        let version = std::env::var("CARGO_PKG_VERSION").expect("set by cargo");
        let mut config = cbindgen::Config::from_file(root.join(CONFIG))
            .unwrap_or_else(|error| panic!("{CONFIG}: {error}"));
        config.after_includes = Some(version_macros(&version));
        let bindings = cbindgen::Builder::new()
            .with_config(config)
            .with_src(root.join(SOURCE))
            .generate()
            .unwrap_or_else(|error| panic!("cbindgen could not read {SOURCE_DIR}/: {error}"));
        let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
        bindings.write_to_file(out_dir.join("sessionstore.h"));
    }

    /// `SESSIONSTORE_VERSION` and its parts, from Cargo.toml's version.
    fn version_macros(version: &str) -> String {
        let core = version.split(['-', '+']).next().unwrap_or(version);
        let mut parts = core.split('.').map(|part| part.parse::<u32>().unwrap_or(0));
        let mut next = || parts.next().unwrap_or(0);
        let (major, minor, patch) = (next(), next(), next());
        format!(
            "\n/** The version this header was generated for (see sessionstore_version()). */\n\
             #define SESSIONSTORE_VERSION \"{version}\"\n\
             /** The major part of SESSIONSTORE_VERSION. */\n\
             #define SESSIONSTORE_VERSION_MAJOR {major}\n\
             /** The minor part of SESSIONSTORE_VERSION. */\n\
             #define SESSIONSTORE_VERSION_MINOR {minor}\n\
             /** The patch part of SESSIONSTORE_VERSION. */\n\
             #define SESSIONSTORE_VERSION_PATCH {patch}"
        )
    }
}
