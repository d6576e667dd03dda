//! The management thread: SPDK start-up, then SPDK's app thread for as long as the process
//! lives.
//!
//! Why a thread of its own: SPDK's app thread must be polled by one OS thread at a time, and
//! it has work of its own (descriptor events, module pollers, JSON-RPC during start-up) that
//! must not wait for an I/O thread to come by. Polling it from the I/O queues would need a
//! lock on their hot path. So one OS thread polls it (and any SPDK thread a module creates,
//! e.g. raid's or FTL's), runs the closures `SpdkEnv::on_app` sends, and sleeps when there is
//! nothing to do: until the next timed poller is due, at most 10 ms, or a request arrives.
//! This is the shape of SPDK's own fio plugin.
//!
//! At process exit the thread stops polling before the C libraries' destructors run (an
//! `atexit` handler waits for it): DPDK unmaps its memory then, SPDK's rings with it.

use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr, CString};
use std::panic::AssertUnwindSafe;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use spdk_sys as sys;

use super::options::SpdkEnvOptions;

/// A closure to run on the app thread.
pub(super) type Request = Box<dyn FnOnce() + Send>;

/// The longest the management thread sleeps with nothing due.
const IDLE_WAIT_MAX: Duration = Duration::from_millis(10);
/// How long it sleeps when a poller wants to run at every iteration or a module's own SPDK
/// thread exists: short, but never a busy loop on a core the I/O threads may need.
const BUSY_WAIT: Duration = Duration::from_micros(100);

pub(super) struct Started {
    pub(super) requests: mpsc::Sender<Request>,
    pub(super) thread: ThreadId,
}

thread_local! {
    /// Set while this crate creates an SPDK thread it polls itself (the app thread, a
    /// queue's thread), so that the scheduling callback leaves it alone.
    static CREATING_OWN: Cell<bool> = const { Cell::new(false) };
}

/// An SPDK thread some module created; the management thread polls it.
struct Foreign(NonNull<sys::spdk_thread>);

// SAFETY: an SPDK thread may be polled from any OS thread, one at a time. These are only
// polled, exited-checked and destroyed by the management thread; other threads only push
// them onto the list.
unsafe impl Send for Foreign {}

static FOREIGN: Mutex<Vec<Foreign>> = Mutex::new(Vec::new());

/// Set by the exit handler: the management thread stops touching SPDK.
static EXITING: AtomicBool = AtomicBool::new(false);
/// Set by the management thread once it has stopped.
static STOPPED: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Runs at `exit`, before the destructors of SPDK and DPDK (registered later than theirs,
/// so earlier in the reverse order): waits, a second at most, for the management thread to
/// stop polling.
extern "C" fn stop_at_exit() {
    EXITING.store(true, Ordering::SeqCst);
    let (lock, cv) = &STOPPED;
    let stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
    let _ = cv.wait_timeout_while(stopped, Duration::from_secs(1), |s| !*s);
}

/// Parks the management thread for good once the process exits.
fn stop_if_exiting() {
    if !EXITING.load(Ordering::SeqCst) {
        return;
    }
    let (lock, cv) = &STOPPED;
    *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
    cv.notify_all();
    loop {
        std::thread::park();
    }
}

/// SPDK's "schedule this new thread" hook (`spdk_thread_lib_init`).
unsafe extern "C" fn schedule_thread(thread: *mut sys::spdk_thread) -> c_int {
    if CREATING_OWN.with(Cell::get) {
        return 0;
    }
    if let Some(thread) = NonNull::new(thread) {
        FOREIGN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Foreign(thread));
    }
    0
}

/// SPDK's app thread: created at start-up by the management thread, polled only by it, and
/// never destroyed (`!Send`: it holds a raw pointer).
struct AppThread(NonNull<sys::spdk_thread>);

impl AppThread {
    /// Runs its messages and pollers once; returns whether there was work.
    fn poll(&self) -> bool {
        // SAFETY: a live thread (never destroyed), polled only by this OS thread.
        unsafe { sys::spdk_thread_poll(self.0.as_ptr(), 0, 0) > 0 }
    }

    /// Whether a poller wants to run at every iteration, and when the next timed one is due
    /// (in ticks; 0: none).
    fn pollers(&self) -> (bool, u64) {
        // SAFETY: queries of a live thread, on the OS thread that polls it.
        unsafe {
            (
                sys::spdk_thread_has_active_pollers(self.0.as_ptr()) != 0,
                sys::spdk_thread_next_poller_expiration(self.0.as_ptr()),
            )
        }
    }
}

/// Creates an SPDK thread that the calling code will poll itself.
pub(super) fn create_own_thread(name: &str) -> Option<NonNull<sys::spdk_thread>> {
    let name = CString::new(name).ok()?;
    CREATING_OWN.with(|c| c.set(true));
    // SAFETY: the thread library is initialised (an SpdkEnv exists, or we are starting it
    // after spdk_thread_lib_init); the name is NUL-terminated and copied by SPDK; a null
    // cpumask means any core.
    let thread = unsafe { sys::spdk_thread_create(name.as_ptr(), std::ptr::null()) };
    CREATING_OWN.with(|c| c.set(false));
    NonNull::new(thread)
}

/// A string SPDK owns, copied.
///
/// # Safety
/// `ptr` must be null or point to a NUL-terminated string valid for the call.
pub(super) unsafe fn c_str(ptr: *const std::ffi::c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: the caller's contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// Completion of `spdk_bdev_unregister_by_name`: only worth a log line when it failed.
pub(super) unsafe extern "C" fn unregistered(_arg: *mut c_void, rc: c_int) {
    if rc != 0 {
        log::warn!(
            "bdev spdk: unregistering a bdev failed: {}",
            std::io::Error::from_raw_os_error(-rc)
        );
    }
}

/// Starts the management thread, which starts SPDK; returns once the config is loaded.
pub(super) fn spawn(config: Vec<u8>, opts: SpdkEnvOptions) -> Result<Started, String> {
    let (requests, rx) = mpsc::channel::<Request>();
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), String>>(1);
    let handle = std::thread::Builder::new()
        .name("spdk-app".into())
        .spawn(move || match start(&config, &opts) {
            Ok(app) => {
                let _ = ready_tx.send(Ok(()));
                serve(app, &rx);
            }
            Err(why) => {
                let _ = ready_tx.send(Err(why));
            }
        })
        .map_err(|e| format!("cannot spawn the SPDK management thread: {e}"))?;
    let thread = handle.thread().id();
    ready_rx
        .recv()
        .map_err(|_| "the SPDK management thread panicked during start-up".to_owned())??;
    // SAFETY: registers a plain function with no arguments; it only touches statics.
    if unsafe { libc::atexit(stop_at_exit) } != 0 {
        log::warn!("bdev spdk: cannot register the exit handler; exit may crash");
    }
    Ok(Started { requests, thread })
}

/// Environment, thread library, app thread, subsystems and config, in SPDK's order (that of
/// its fio plugin): STARTUP-time methods, `spdk_subsystem_init`, then RUNTIME methods.
fn start(config: &[u8], opts: &SpdkEnvOptions) -> Result<AppThread, String> {
    init_env(opts)?;
    // SAFETY: the environment is up; the hook is a plain function; no per-thread context.
    if unsafe { sys::spdk_thread_lib_init(Some(schedule_thread), 0) } != 0 {
        return Err("spdk_thread_lib_init failed".into());
    }
    let app =
        AppThread(create_own_thread("bypassfs_app").ok_or("cannot create SPDK's app thread")?);
    // SAFETY: `app` is a live thread; making it current on this OS thread is how SPDK's
    // app-thread-only functions below find it.
    unsafe { sys::spdk_set_thread(app.0.as_ptr()) };
    let json = config.as_ptr().cast_mut().cast::<c_void>();
    let len = config.len() as isize;
    run_phase(&app, "loading the config's start-up methods", |cb, arg| {
        // SAFETY: on the app thread; SPDK copies the `len` bytes at `json` before returning
        // (and `config` outlives this phase anyway); `cb(arg)` runs once, while we poll.
        unsafe { sys::spdk_subsystem_load_config(json, len, cb, arg, true) }
    })?;
    run_phase(&app, "initialising SPDK's subsystems", |cb, arg| {
        // SAFETY: on the app thread; `cb(arg)` runs once, while we poll.
        unsafe { sys::spdk_subsystem_init(cb, arg) }
    })?;
    // SAFETY: a plain state change, on the app thread.
    unsafe { sys::spdk_rpc_set_state(sys::SPDK_RPC_RUNTIME) };
    run_phase(&app, "loading the config", |cb, arg| {
        // SAFETY: as for the first phase.
        unsafe { sys::spdk_subsystem_load_config(json, len, cb, arg, true) }
    })?;
    // Let examine callbacks and other deferred work settle before bdevs are listed.
    while app.poll() {}
    Ok(app)
}

fn init_env(opts: &SpdkEnvOptions) -> Result<(), String> {
    let mut env_opts = sys::spdk_env_opts {
        opts_size: std::mem::size_of::<sys::spdk_env_opts>(),
        ..Default::default()
    };
    // SAFETY: `env_opts` is a valid, writable struct with `opts_size` set, as required.
    unsafe { sys::spdk_env_opts_init(&mut env_opts) };
    // The strings are leaked on purpose: SPDK may keep pointers to them, and this happens
    // once per process.
    let leak = |s: &str| CString::new(s).map(|c| c.into_raw().cast_const());
    env_opts.name = leak(&opts.name).map_err(|_| "the process name contains a NUL")?;
    if let Some(mask) = &opts.core_mask {
        env_opts.core_mask = leak(mask).map_err(|_| "the core mask contains a NUL")?;
    }
    env_opts.no_huge = opts.no_huge;
    if let Some(mb) = opts.mem_size_mb {
        env_opts.mem_size = c_int::try_from(mb).map_err(|_| "mem_size_mb is too large")?;
    }
    // SAFETY: `env_opts` was initialised by spdk_env_opts_init and its strings live forever.
    if unsafe { sys::spdk_env_init(&env_opts) } < 0 {
        return Err(if opts.no_huge {
            "spdk_env_init failed (see DPDK's messages above)".into()
        } else {
            "spdk_env_init failed (see DPDK's messages above). With hugepages: are they \
             configured and free (`grep Huge /proc/meminfo`; `echo 1024 > \
             /proc/sys/vm/nr_hugepages`; hugetlbfs mounted at /dev/hugepages)? Without: \
             SpdkEnvOptions { no_huge: true, mem_size_mb: Some(…) }"
                .into()
        });
    }
    // SAFETY: no arguments; EAL pinned this thread to the main core, which the management
    // thread has no need of.
    unsafe { sys::spdk_unaffinitize_thread() };
    let level = if opts.verbose {
        sys::SPDK_LOG_NOTICE
    } else {
        sys::SPDK_LOG_WARN
    };
    // SAFETY: sets a global log level.
    unsafe { sys::spdk_log_set_print_level(level) };
    Ok(())
}

/// Starts an asynchronous SPDK step whose completion is `cb(rc, arg)` and polls until it
/// completes.
fn run_phase(
    app: &AppThread,
    what: &str,
    begin: impl FnOnce(sys::spdk_subsystem_init_fn, *mut c_void),
) -> Result<(), String> {
    let rc: Cell<Option<c_int>> = Cell::new(None);
    begin(Some(phase_done), (&raw const rc).cast_mut().cast());
    while rc.get().is_none() {
        app.poll();
        poll_foreign();
    }
    match rc.get() {
        Some(0) => Ok(()),
        Some(e) => Err(format!(
            "{what} failed: {} (SPDK's messages above say why; out of memory: give it more with mem_size_mb)",
            std::io::Error::from_raw_os_error(e.abs())
        )),
        None => unreachable!("the loop ends when the phase has reported"),
    }
}

unsafe extern "C" fn phase_done(rc: c_int, arg: *mut c_void) {
    // SAFETY: `arg` is the `Cell` of `run_phase`, which polls (so stays in its frame) until
    // this has run; one thread.
    let slot = unsafe { &*arg.cast::<Cell<Option<c_int>>>() };
    slot.set(Some(rc));
}

/// Polls the SPDK threads modules created; destroys the ones that exited. Returns whether
/// any did work.
fn poll_foreign() -> bool {
    // Taken out of the lock: polling may create threads, whose hook takes it.
    let mut threads = std::mem::take(&mut *FOREIGN.lock().unwrap_or_else(|e| e.into_inner()));
    if threads.is_empty() {
        return false;
    }
    let mut busy = false;
    threads.retain(|t| {
        // SAFETY: a live SPDK thread nobody else polls (see `Foreign`); an exited one is
        // destroyed exactly once, here, and then forgotten.
        unsafe {
            if sys::spdk_thread_is_exited(t.0.as_ptr()) {
                sys::spdk_thread_destroy(t.0.as_ptr());
                return false;
            }
            busy |= sys::spdk_thread_poll(t.0.as_ptr(), 0, 0) > 0;
        }
        true
    });
    let mut list = FOREIGN.lock().unwrap_or_else(|e| e.into_inner());
    threads.append(&mut list);
    *list = threads;
    busy
}

/// The management loop: poll, run requests, sleep when idle. Never returns while the
/// environment exists (it is process-wide and never dropped).
fn serve(app: AppThread, requests: &mpsc::Receiver<Request>) {
    let run = |request: Request| {
        if std::panic::catch_unwind(AssertUnwindSafe(request)).is_err() {
            log::error!("bdev spdk: a request on the SPDK app thread panicked");
        }
    };
    loop {
        stop_if_exiting();
        let mut busy = app.poll();
        busy |= poll_foreign();
        loop {
            match requests.try_recv() {
                Ok(request) => {
                    run(request);
                    busy = true;
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
        if busy {
            continue;
        }
        match requests.recv_timeout(idle_wait(&app)) {
            Ok(request) => run(request),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// How long the idle management thread may sleep.
fn idle_wait(app: &AppThread) -> Duration {
    let foreign = !FOREIGN.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
    let (active, next) = app.pollers();
    if active || foreign {
        return BUSY_WAIT;
    }
    if next == 0 {
        return IDLE_WAIT_MAX;
    }
    // SAFETY: plain reads of the tick counter and its rate.
    let (now, hz) = unsafe { (sys::spdk_get_ticks(), sys::spdk_get_ticks_hz()) };
    let ticks = next.saturating_sub(now);
    let micros = u128::from(ticks) * 1_000_000 / u128::from(hz.max(1));
    Duration::from_micros(micros.min(IDLE_WAIT_MAX.as_micros()) as u64)
}
