//! One I/O engine per thread and mount: the `bdev::exec::Context` the thread's data I/O
//! runs on also carries its metadata I/O (cow's B-tree reads and commits, fsync records),
//! through a synchronous view of the same device queue (`bdev::exec::ExecQueue`).
//!
//! A thread that made an fs-core `Context` for the mount registers its executor here
//! (`Core::adopt_engine`), so B-tree reads inside a write's `begin`, the record of its
//! fsync and its commits go through the queue its data uses, one set of requests in flight
//! and one poll loop. A thread with no `Context` (the folder thread, a namespace call from a
//! thread that does no data I/O) gets an executor of its own on first use.
//!
//! Invariants:
//! - the registry holds one engine per live mount on this thread; engines of unmounted
//!   filesystems are dropped the next time this thread registers one;
//! - a view is taken out of the registry while in use, so a nested use (a metadata read
//!   inside another's callback) makes a second view of the same executor, never a second
//!   borrow of the first.

use std::cell::RefCell;
use std::rc::Rc;

use bdev::exec::{Context as Exec, DevId, ExecQueue};
use bdev::BlockDevice;
use cow::LeafCache;

use crate::error::{Error, Result};

/// The device's queue in every executor of a filesystem (attached first).
pub(crate) const DEV: DevId = DevId(0);

/// Queue depth of a data queue (an fs-core `Context`'s).
pub(crate) const DATA_DEPTH: usize = 256;

/// Requests one metadata view keeps in flight (cow issues a commit's node writes at once).
const META_DEPTH: usize = 128;

struct Engine {
    mount: u64,
    exec: Exec,
    /// The metadata view, when not in use.
    view: Option<ExecQueue>,
    /// Leaves this thread's lookups found in the last snapshot it read (cow checks the
    /// generation on every use, so a nested use may share it).
    leaves: Rc<RefCell<LeafCache>>,
}

thread_local! {
    static ENGINES: RefCell<Vec<Engine>> = const { RefCell::new(Vec::new()) };
}

/// A fresh executor with `dev` attached as [`DEV`].
pub(crate) fn new_exec(dev: &dyn BlockDevice) -> Result<Exec> {
    let exec = Exec::new();
    let id = exec.attach(dev, DATA_DEPTH)?;
    if id != DEV {
        return Err(Error::Invalid(
            "a fresh context attached the device twice".into(),
        ));
    }
    Ok(exec)
}

/// Makes `exec` this thread's engine for `mount` (replacing an earlier one); drops the
/// engines of mounts `live` no longer has.
pub(crate) fn adopt(mount: u64, exec: &Exec, live: impl Fn(u64) -> bool) {
    ENGINES.with(|e| {
        let mut e = e.borrow_mut();
        e.retain(|g| g.mount != mount && live(g.mount));
        e.push(Engine {
            mount,
            exec: exec.clone(),
            view: None,
            leaves: Rc::default(),
        });
    });
}

/// Runs `f` with a metadata view of this thread's engine for `mount`, made (with an
/// executor of its own, on `dev`) if the thread has none, and the thread's leaf cache for
/// the mount.
pub(crate) fn with_view<T>(
    mount: u64,
    dev: &dyn BlockDevice,
    live: impl Fn(u64) -> bool,
    f: impl FnOnce(&mut ExecQueue, &RefCell<LeafCache>) -> Result<T>,
) -> Result<T> {
    let found = ENGINES.with(|e| {
        let mut e = e.borrow_mut();
        e.iter_mut()
            .find(|g| g.mount == mount)
            .map(|g| (g.exec.clone(), g.view.take(), Rc::clone(&g.leaves)))
    });
    let (exec, view, leaves) = match found {
        Some(found) => found,
        None => {
            let exec = new_exec(dev)?;
            adopt(mount, &exec, live);
            (exec, None, Rc::default())
        }
    };
    let mut view = match view {
        Some(v) => v,
        None => exec.queue(DEV, META_DEPTH)?,
    };
    let r = f(&mut view, &leaves);
    ENGINES.with(|e| {
        let mut e = e.borrow_mut();
        if let Some(g) = e.iter_mut().find(|g| g.mount == mount) {
            // A nested call put its own view back first: keep one.
            if g.view.is_none() && g.exec.same_as(view.context()) {
                g.view = Some(view);
            }
        }
    });
    r
}

/// Forgets this thread's engine for `mount` (at unmount).
pub(crate) fn forget(mount: u64) {
    ENGINES.with(|e| e.borrow_mut().retain(|g| g.mount != mount));
}
