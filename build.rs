//! With the `capi` feature, generates the C header `include/sessionstore.h` from `src/ffi.rs`
//! with cbindgen (settings in `cbindgen.toml`).
//!
//! The header is committed. It is rewritten only when its content changes, so an unchanged
//! header keeps its timestamp; a fresh copy always goes to `$OUT_DIR/sessionstore.h`, which
//! `scripts/check-header.sh` compares with the committed one.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
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

    const SOURCE: &str = "src/ffi.rs";
    const CONFIG: &str = "cbindgen.toml";
    const HEADER: &str = "include/sessionstore.h";

    pub fn generate() {
        println!("cargo:rerun-if-changed={SOURCE}");
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
            .unwrap_or_else(|error| panic!("cbindgen could not read {SOURCE}: {error}"));
        let mut text = Vec::new();
        bindings.write(&mut text);

        let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
        std::fs::write(out_dir.join("sessionstore.h"), &text).expect("write to OUT_DIR");
        let header = root.join(HEADER);
        if std::fs::read(&header).ok().as_deref() != Some(&text[..]) {
            std::fs::create_dir_all(header.parent().expect("include/"))
                .and_then(|()| std::fs::write(&header, &text))
                .unwrap_or_else(|error| panic!("cannot write {HEADER}: {error}"));
        }
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
