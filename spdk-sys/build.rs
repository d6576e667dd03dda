//! Without the `spdk` feature: nothing. With it: find SPDK with pkg-config (or under
//! `SPDK_DIR`), refuse an SPDK older than the bindings need, generate bindings for the
//! allowlist below, and link everything pkg-config reports.
//!
//! Linking: every library, library file and search path that pkg-config names for the
//! packages below, as SPDK's `make install` (or its build tree) leaves them; the `.pc` files
//! are read as they are. SPDK's bdev/accel/sock/keyring modules, its subsystems and RPC
//! methods, and DPDK's mempool and bus drivers register themselves from constructors that
//! nothing references by symbol: a normal static link would leave them out, and shared
//! libraries would be dropped by the `--as-needed` that rustc passes (`-Wl,--no-as-needed`
//! cannot be given to a dependent's link from here on stable Rust). So every `spdk_*` and
//! `rte_*` library is linked statically with `+whole-archive` (their `.a` files must be
//! installed, as `make install` does). The rest is linked as pkg-config names it: `-lfoo`
//! as a system library (liburing, libaio, ISA-L, OpenSSL, libnuma, libuuid …), and a path
//! to a library file as that very file. SPDK names its in-tree ISA-L that way when it is
//! built without `--with-shared` (`spdk_syslibs.pc`: `…/isa-l/.libs/libisal.a`).

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

    /// The oldest SPDK the bindings build against: 24.09 added `spdk_env_opts.opts_size`
    /// (which `spdk_env_opts_init` now requires the caller to set) and
    /// `SPDK_ENV_NUMA_ID_ANY` (which replaced `SPDK_ENV_SOCKET_ID_ANY`).
    const MIN_VERSION: (u32, u32) = (24, 9);

    pub(super) fn build() {
        for var in ["SPDK_DIR", "PKG_CONFIG_PATH"] {
            println!("cargo:rerun-if-env-changed={var}");
        }
        println!("cargo:rerun-if-changed=wrapper.h");
        if let Some(dir) = env::var_os("SPDK_DIR") {
            add_spdk_dir_to_pkg_config_path(Path::new(&dir));
        }

        let mut found = Found::default();
        for package in PACKAGES {
            let lib = pkg_config::Config::new()
                .cargo_metadata(false)
                .env_metadata(true)
                .probe(package)
                .unwrap_or_else(|e| {
                    panic!(
                        "spdk-sys: SPDK not found ({package}): {e}\n\
                         Install SPDK {}.{:02} or later (its `make install` puts pkg-config \
                         files in <prefix>/lib/pkgconfig; add that to PKG_CONFIG_PATH if it \
                         is not a default), or set SPDK_DIR to a built SPDK source tree. Or \
                         build without the `spdk` feature.",
                        MIN_VERSION.0, MIN_VERSION.1
                    )
                });
            found.add(lib);
        }
        check_version(&found.include_paths);
        found.link();
        if let Some(dir) = found.link_paths.first() {
            println!("cargo:libdir={}", dir.display());
        }
        if let Some(dir) = found.include_paths.first() {
            println!("cargo:include={}", dir.display());
        }

        generate(&found.include_paths);
    }

    /// What pkg-config reported for all the packages, in its order, without repeats.
    #[derive(Default)]
    struct Found {
        include_paths: Vec<PathBuf>,
        link_paths: Vec<PathBuf>,
        /// `-lfoo` names.
        libs: Vec<String>,
        /// Library files named by path (`/…/libisal.a`).
        link_files: Vec<PathBuf>,
        /// `-Wl,…` options, which a library crate cannot pass on to the final link.
        ld_args: Vec<Vec<String>>,
    }

    impl Found {
        fn add(&mut self, lib: pkg_config::Library) {
            push_unique(&mut self.include_paths, lib.include_paths);
            push_unique(&mut self.link_paths, lib.link_paths);
            push_unique(&mut self.libs, lib.libs);
            push_unique(&mut self.link_files, lib.link_files);
            push_unique(&mut self.ld_args, lib.ld_args);
        }

        /// Tells cargo to link all of it (see the top of this file for how and why).
        fn link(&self) {
            // A library file's directory is searched first, so that the file itself is
            // what its verbatim name finds, not a namesake in a prefix (an ISA-L that SPDK's
            // `make install` also copied to <prefix>/lib, say).
            let file_dirs = self.link_files.iter().filter_map(|f| f.parent());
            let mut search: Vec<&Path> = Vec::new();
            for dir in file_dirs.chain(self.link_paths.iter().map(PathBuf::as_path)) {
                if !search.contains(&dir) {
                    search.push(dir);
                }
            }
            for dir in &search {
                println!("cargo:rustc-link-search=native={}", dir.display());
            }
            // SPDK and DPDK first: the archives and system libraries after them resolve
            // what they leave undefined.
            let (spdk, system): (Vec<&String>, Vec<&String>) =
                self.libs.iter().partition(|l| registers_itself(l));
            for lib in spdk {
                let archive = format!("lib{lib}.a");
                if !self.link_paths.iter().any(|p| p.join(&archive).exists()) {
                    panic!(
                        "spdk-sys: {archive} not found in {:?}: SPDK and DPDK are linked \
                         statically (whole archive, so that their modules register \
                         themselves), and this installation has no static libraries. SPDK's \
                         `make install` installs them; so does a build tree named by SPDK_DIR.",
                        self.link_paths
                    );
                }
                println!("cargo:rustc-link-lib=static:+whole-archive,-bundle={lib}");
            }
            for file in &self.link_files {
                println!("cargo:rerun-if-changed={}", file.display());
                println!("cargo:rustc-link-lib={}", link_file_directive(file));
            }
            for lib in system {
                println!("cargo:rustc-link-lib={lib}");
            }
            if !self.ld_args.is_empty() {
                println!(
                    "cargo:warning=spdk-sys: pkg-config asks for linker options {:?}, which a \
                     library crate cannot pass on; give them with RUSTFLAGS=\"-C \
                     link-arg=-Wl,…\" if the link fails",
                    self.ld_args
                );
            }
        }
    }

    /// Whether a library's constructors register what it provides (SPDK's modules and
    /// subsystems, DPDK's drivers): then it is linked whole.
    fn registers_itself(lib: &str) -> bool {
        lib.starts_with("spdk_") || lib.starts_with("rte_")
    }

    /// The `rustc-link-lib` value for a library named by path: that file by its exact name
    /// (`+verbatim`, found in its own directory, searched first), static or shared as its
    /// name says, and whole if it is SPDK's or DPDK's.
    fn link_file_directive(file: &Path) -> String {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_else(|| panic!("spdk-sys: library file {file:?} has no UTF-8 name"));
        if name.ends_with(".a") {
            let stem = name.trim_start_matches("lib").trim_end_matches(".a");
            let whole = if registers_itself(stem) {
                "+whole-archive,"
            } else {
                ""
            };
            format!("static:{whole}-bundle,+verbatim={name}")
        } else {
            format!("dylib:+verbatim={name}")
        }
    }

    /// Reads the release from SPDK's `spdk/version.h` and refuses one older than
    /// `MIN_VERSION`, before bindgen would fail on it with less helpful errors.
    fn check_version(include_paths: &[PathBuf]) {
        // pkg-config leaves out the default include directories.
        let defaults = [
            PathBuf::from("/usr/local/include"),
            PathBuf::from("/usr/include"),
        ];
        let header = include_paths
            .iter()
            .chain(&defaults)
            .map(|dir| dir.join("spdk/version.h"))
            .find(|h| h.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "spdk-sys: spdk/version.h not found in {include_paths:?} or {defaults:?}: \
                     is SPDK's include directory installed (`make install`)?"
                )
            });
        println!("cargo:rerun-if-changed={}", header.display());
        let text = std::fs::read_to_string(&header)
            .unwrap_or_else(|e| panic!("spdk-sys: cannot read {}: {e}", header.display()));
        let define = |name: &str| {
            text.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("#define") && words.next() == Some(name))
                    .then(|| words.next().unwrap_or("").trim_matches('"').to_owned())
            })
        };
        let number = |name: &str| define(name).and_then(|v| v.parse::<u32>().ok());
        let (Some(major), Some(minor)) =
            (number("SPDK_VERSION_MAJOR"), number("SPDK_VERSION_MINOR"))
        else {
            panic!(
                "spdk-sys: {} defines no numeric SPDK_VERSION_MAJOR and SPDK_VERSION_MINOR",
                header.display()
            );
        };
        let suffix = define("SPDK_VERSION_SUFFIX").unwrap_or_default();
        if (major, minor) < MIN_VERSION {
            panic!(
                "spdk-sys: SPDK {major}.{minor:02}{suffix} found ({}), but the bindings need \
                 SPDK {}.{:02} or later (for spdk_env_opts.opts_size and \
                 SPDK_ENV_NUMA_ID_ANY). Install a newer SPDK (see README.md, \"Using SPDK\"), \
                 point PKG_CONFIG_PATH or SPDK_DIR at one, or build without the `spdk` feature.",
                header.display(),
                MIN_VERSION.0,
                MIN_VERSION.1
            );
        }
        println!("cargo:version={major}.{minor:02}{suffix}");
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
