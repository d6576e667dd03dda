//! The process-wide SPDK environment: started once, from one JSON config, and kept until the
//! process exits (SPDK and DPDK cannot be initialised twice in one process).

use std::ffi::CString;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::ThreadId;

use serde_json::Value;
use spdk_sys as sys;

use super::app::{self, Request};
use super::config;
use super::options::SpdkEnvOptions;
use crate::error::BdevError;

/// SPDK running in this process: its environment, thread library and subsystems, set up from
/// a JSON config. Obtain it with [`SpdkEnv::start`]; open bdevs with
/// [`SpdkDevice::open`](super::SpdkDevice::open).
pub struct SpdkEnv {
    config: Value,
    opts: SpdkEnvOptions,
    nvme_flush_enabled: bool,
    requests: mpsc::Sender<Request>,
    app_thread: ThreadId,
}

/// The environment of this process, or why it failed to start (it cannot be retried).
static STARTED: Mutex<Option<Result<Arc<SpdkEnv>, String>>> = Mutex::new(None);

impl SpdkEnv {
    /// Starts SPDK in this process with the SPDK JSON config `config_json` (the format of
    /// `bdevperf --json` and `spdk_tgt -c`: every method of the bdev, accel, iobuf, sock,
    /// vmd and keyring subsystems), and returns it once every bdev of the config exists.
    ///
    /// SPDK starts once per process. A second call with the same config and options
    /// returns the running environment; with others it is an error, and so is every call
    /// after a failed start.
    pub fn start(config_json: &str, opts: SpdkEnvOptions) -> Result<Arc<SpdkEnv>, BdevError> {
        let config = config::check(config_json)?;
        let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
        match &*started {
            Some(Ok(env)) if env.config == config && env.opts == opts => {
                return Ok(Arc::clone(env))
            }
            Some(Ok(_)) => {
                return Err(BdevError::Config(
                    "SPDK is already running in this process with another config or other \
                     options; it starts once per process (use SpdkEnv::running to share it)"
                        .into(),
                ))
            }
            Some(Err(why)) => {
                return Err(BdevError::Config(format!(
                    "SPDK failed to start earlier in this process ({why}); it cannot be \
                     started again in the same process"
                )))
            }
            None => {}
        }
        let nvme_flush_enabled = config::nvme_flush_enabled(&config);
        let result = app::spawn(config_json.as_bytes().to_vec(), opts.clone()).map(|app| {
            Arc::new(SpdkEnv {
                config,
                opts,
                nvme_flush_enabled,
                requests: app.requests,
                app_thread: app.thread,
            })
        });
        *started = Some(result.clone());
        result.map_err(|why| BdevError::Config(format!("starting SPDK: {why}")))
    }

    /// The environment started in this process, if any.
    pub fn running() -> Option<Arc<SpdkEnv>> {
        let started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
        started.as_ref().and_then(|r| r.as_ref().ok()).cloned()
    }

    /// The options SPDK was started with.
    pub fn options(&self) -> &SpdkEnvOptions {
        &self.opts
    }

    /// Whether the config sets `enable_flush` in `bdev_nvme_set_options` (without it SPDK's
    /// NVMe bdev completes flushes without sending them).
    pub fn nvme_flush_enabled(&self) -> bool {
        self.nvme_flush_enabled
    }

    /// The names of the bdevs no other bdev has claimed (the ones jobs run on, as in
    /// bdevperf), in SPDK's registration order.
    pub fn bdev_names(&self) -> Vec<String> {
        self.on_app(|| {
            let mut names = Vec::new();
            // SAFETY: on the app thread the bdev list is stable between these calls; each
            // returned bdev is valid and its name a NUL-terminated string it owns.
            unsafe {
                let mut bdev = sys::spdk_bdev_first_leaf();
                while !bdev.is_null() {
                    names.push(app::c_str(sys::spdk_bdev_get_name(bdev)));
                    bdev = sys::spdk_bdev_next_leaf(bdev);
                }
            }
            names
        })
    }

    /// Starts unregistering bdev `name`, as its module's delete RPC does
    /// (`bdev_malloc_delete` …): open descriptors receive a hot-remove event (their queues
    /// then fail new requests with [`IoError::Removed`](crate::IoError::Removed)); SPDK
    /// finishes once every [`SpdkDevice`](super::SpdkDevice) and queue on it is dropped.
    pub fn unregister_bdev(&self, name: &str) -> Result<(), BdevError> {
        let c_name = CString::new(name)
            .map_err(|_| BdevError::Config(format!("bdev name {name:?} contains a NUL")))?;
        let rc = self.on_app(move || {
            // SAFETY: on the app thread, as spdk_bdev_unregister_by_name requires; the name
            // is NUL-terminated and outlives the calls; the module pointer comes from SPDK's
            // own list. The completion callback takes no argument.
            unsafe {
                let bdev = sys::spdk_bdev_get_by_name(c_name.as_ptr());
                if bdev.is_null() {
                    return -libc::ENODEV;
                }
                let module = sys::spdk_bdev_module_list_find(sys::spdk_bdev_get_module_name(bdev));
                sys::spdk_bdev_unregister_by_name(
                    c_name.as_ptr(),
                    module,
                    Some(app::unregistered),
                    std::ptr::null_mut(),
                )
            }
        });
        match rc {
            0 => Ok(()),
            e => Err(BdevError::os(
                format!("unregistering bdev {name}"),
                std::io::Error::from_raw_os_error(-e),
            )),
        }
    }

    /// Runs `f` on SPDK's app thread (the management thread) and returns its result.
    pub(super) fn on_app<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        if std::thread::current().id() == self.app_thread {
            return f();
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let request: Request = Box::new(move || {
            let _ = tx.send(f());
        });
        self.requests
            .send(request)
            .expect("the SPDK management thread lives as long as the process");
        rx.recv()
            .expect("a request to the SPDK management thread panicked")
    }
}

impl std::fmt::Debug for SpdkEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpdkEnv")
            .field("opts", &self.opts)
            .field("nvme_flush_enabled", &self.nvme_flush_enabled)
            .finish_non_exhaustive()
    }
}
