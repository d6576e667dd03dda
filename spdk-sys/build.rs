//! Without the `spdk` feature: nothing. With it: find SPDK with pkg-config (or under
//! `SPDK_DIR`), generate bindings for the allowlist below, and link SPDK and DPDK.
//!
//! Linking: every `spdk_*` and `rte_*` library pkg-config names is linked statically with
//! `+whole-archive` (their `.a` files must be installed, as SPDK's `make install` does). SPDK's bdev/accel/sock/keyring modules, its subsystems and RPC methods,
//! and DPDK's mempool and bus drivers register themselves from constructors that nothing
//! references by symbol; a normal static link would leave them out, and shared libraries
//! would be dropped by the `--as-needed` that rustc passes (`-Wl,--no-as-needed` cannot be
//! given to a dependent's link from here on stable Rust). System libraries (liburing, libaio,
//! ISA-L, OpenSSL, libnuma, libuuid …) are linked as pkg-config says.

fn main() {
    #[cfg(feature = "spdk")]
    spdk::build();
}

#[cfg(feature = "spdk")]
mod spdk {
    use std::env;
    use std::path::{Path, PathBuf};

    /// The pkg-config packages whose closure is everything a library-mode bdev user needs:
    /// the bdev subsystem and its dependencies (accel, iobuf, sock, vmd, keyring), every
    /// bdev/accel/sock/keyring module, the DPDK environment and its RPCs, system libraries.
    const PACKAGES: &[&str] = &[
        "spdk_event_bdev",
        "spdk_bdev_modules",
        "spdk_accel_modules",
        "spdk_sock_modules",
        "spdk_keyring_modules",
        "spdk_env_dpdk",
        "spdk_env_dpdk_rpc",
        "spdk_syslibs",
    ];

    const FUNCTIONS: &[&str] = &[
        // environment and memory
        "spdk_env_opts_init",
        "spdk_env_init",
        "spdk_unaffinitize_thread",
        "spdk_zmalloc",
        "spdk_free",
        "spdk_get_ticks",
        "spdk_get_ticks_hz",
        "spdk_log_set_print_level",
        // threads and channels
        "spdk_thread_lib_init",
        "spdk_thread_create",
        "spdk_thread_get_app_thread",
        "spdk_set_thread",
        "spdk_get_thread",
        "spdk_thread_poll",
        "spdk_thread_exit",
        "spdk_thread_is_exited",
        "spdk_thread_destroy",
        "spdk_thread_next_poller_expiration",
        "spdk_thread_has_active_pollers",
        "spdk_put_io_channel",
        // subsystems and the JSON config
        "spdk_subsystem_init",
        "spdk_subsystem_load_config",
        "spdk_rpc_set_state",
        "spdk_rpc_get_state",
        // bdevs
        "spdk_bdev_open_ext",
        "spdk_bdev_close",
        "spdk_bdev_desc_get_bdev",
        "spdk_bdev_get_io_channel",
        "spdk_bdev_get_by_name",
        "spdk_bdev_first",
        "spdk_bdev_next",
        "spdk_bdev_first_leaf",
        "spdk_bdev_next_leaf",
        "spdk_bdev_get_name",
        "spdk_bdev_get_product_name",
        "spdk_bdev_get_module_name",
        "spdk_bdev_get_block_size",
        "spdk_bdev_get_num_blocks",
        "spdk_bdev_get_buf_align",
        "spdk_bdev_get_optimal_io_boundary",
        "spdk_bdev_get_write_unit_size",
        "spdk_bdev_get_md_size",
        "spdk_bdev_has_write_cache",
        "spdk_bdev_io_type_supported",
        "spdk_bdev_module_list_find",
        "spdk_bdev_unregister_by_name",
        // I/O
        "spdk_bdev_read_blocks",
        "spdk_bdev_write_blocks",
        "spdk_bdev_readv_blocks",
        "spdk_bdev_writev_blocks",
        "spdk_bdev_flush_blocks",
        "spdk_bdev_unmap_blocks",
        "spdk_bdev_write_zeroes_blocks",
        "spdk_bdev_free_io",
    ];

    /// Types, listed one by one: recursion is off, so nothing the functions above do not
    /// name in their signatures is generated.
    const TYPES: &[&str] = &[
        "iovec",
        "spdk_env_opts",
        "spdk_pci_addr",
        "spdk_cpuset",
        "spdk_thread",
        "spdk_io_channel",
        "spdk_bdev_desc",
        "spdk_bdev_event_type",
        "spdk_bdev_io_type",
        "spdk_log_level",
        "spdk_new_thread_fn",
        "spdk_bdev_event_cb_t",
        "spdk_bdev_io_completion_cb",
        "spdk_subsystem_init_fn",
        "spdk_bdev_unregister_cb",
    ];

    const VARS: &[&str] = &[
        "SPDK_ENV_NUMA_ID_ANY",
        "SPDK_MALLOC_DMA",
        "SPDK_RPC_STARTUP",
        "SPDK_RPC_RUNTIME",
    ];

    /// Structures only ever handled through pointers. bdev_module.h defines these in full
    /// (and bindgen would generate their nested types even for an opaque blob), so they are
    /// left out and declared as opaque, unconstructible types instead.
    const OPAQUE: &[&str] = &["spdk_bdev", "spdk_bdev_io", "spdk_bdev_module"];

    pub(super) fn build() {
        for var in ["SPDK_DIR", "PKG_CONFIG_PATH"] {
            println!("cargo:rerun-if-env-changed={var}");
        }
        println!("cargo:rerun-if-changed=wrapper.h");
        if let Some(dir) = env::var_os("SPDK_DIR") {
            add_spdk_dir_to_pkg_config_path(Path::new(&dir));
        }

        let mut include_paths: Vec<PathBuf> = Vec::new();
        let mut link_paths: Vec<PathBuf> = Vec::new();
        let mut libs: Vec<String> = Vec::new();
        for package in PACKAGES {
            let lib = pkg_config::Config::new()
                .cargo_metadata(false)
                .env_metadata(true)
                .probe(package)
                .unwrap_or_else(|e| {
                    panic!(
                        "spdk-sys: SPDK not found ({package}): {e}\n\
                         Install SPDK (its `make install` puts pkg-config files in \
                         <prefix>/lib/pkgconfig; add that to PKG_CONFIG_PATH if it is not a \
                         default), or set SPDK_DIR to a built SPDK source tree. Or build \
                         without the `spdk` feature."
                    )
                });
            push_unique(&mut include_paths, lib.include_paths);
            push_unique(&mut link_paths, lib.link_paths);
            push_unique(&mut libs, lib.libs);
        }

        for path in &link_paths {
            println!("cargo:rustc-link-search=native={}", path.display());
        }
        for lib in &libs {
            if !(lib.starts_with("spdk_") || lib.starts_with("rte_")) {
                println!("cargo:rustc-link-lib={lib}");
                continue;
            }
            let archive = format!("lib{lib}.a");
            if !link_paths.iter().any(|p| p.join(&archive).exists()) {
                panic!(
                    "spdk-sys: {archive} not found in {link_paths:?}: SPDK and DPDK are linked \
                     statically (whole archive, so that their modules register themselves), \
                     and this installation has no static libraries. SPDK's `make install` \
                     installs them; so does a build tree named by SPDK_DIR."
                );
            }
            println!("cargo:rustc-link-lib=static:+whole-archive,-bundle={lib}");
        }
        if let Some(dir) = link_paths.first() {
            println!("cargo:libdir={}", dir.display());
        }
        if let Some(dir) = include_paths.first() {
            println!("cargo:include={}", dir.display());
        }

        generate(&include_paths);
    }

    /// `SPDK_DIR` names a built source tree: its pkg-config files are in `build/lib/pkgconfig`
    /// and DPDK's in `dpdk/build/lib/pkgconfig`.
    fn add_spdk_dir_to_pkg_config_path(dir: &Path) {
        let mut paths = vec![
            dir.join("build/lib/pkgconfig"),
            dir.join("dpdk/build/lib/pkgconfig"),
        ];
        if let Some(old) = env::var_os("PKG_CONFIG_PATH") {
            paths.extend(env::split_paths(&old));
        }
        let joined = env::join_paths(paths).expect("SPDK_DIR is a valid path");
        // A build script is single-threaded: nothing reads the environment meanwhile.
        env::set_var("PKG_CONFIG_PATH", joined);
    }

    fn push_unique<T: PartialEq>(into: &mut Vec<T>, items: Vec<T>) {
        for item in items {
            if !into.contains(&item) {
                into.push(item);
            }
        }
    }

    fn generate(include_paths: &[PathBuf]) {
        let mut builder = bindgen::Builder::default()
            .header("wrapper.h")
            .clang_args(include_paths.iter().map(|p| format!("-I{}", p.display())))
            .allowlist_recursively(false)
            .default_enum_style(bindgen::EnumVariation::Consts)
            .prepend_enum_name(false)
            .derive_default(true)
            .generate_comments(false)
            .layout_tests(false)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
        for f in FUNCTIONS {
            builder = builder.allowlist_function(f);
        }
        for t in TYPES {
            builder = builder.allowlist_type(t);
        }
        for v in VARS {
            builder = builder.allowlist_var(v);
        }
        for o in OPAQUE {
            builder = builder.blocklist_type(o).raw_line(format!(
                "#[repr(C)] pub struct {o} {{ _opaque: [u8; 0], \
                 _marker: ::core::marker::PhantomData<(*mut u8, ::core::marker::PhantomPinned)> }}"
            ));
        }
        let bindings = builder
            .generate()
            .expect("spdk-sys: bindgen failed on SPDK's headers");
        let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
        bindings
            .write_to_file(out.join("bindings.rs"))
            .expect("spdk-sys: cannot write bindings.rs");
    }
}
