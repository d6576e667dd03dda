//! Open file handles (`fh`) of a mount: each names an fs-core [`File`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fs_core::File;

/// An open file: the handle it was opened with, and for `O_DIRECT` a buffered twin that
/// serves requests not aligned for the direct path (the kernel passes the caller's
/// offsets through unchanged).
pub(crate) struct Open {
    pub file: File,
    pub buffered: Option<File>,
    /// Written through since its last close or fsync (what a close with `sync_on_close`
    /// makes durable).
    pub wrote: AtomicBool,
}

impl Open {
    pub fn new(file: File, buffered: Option<File>) -> Open {
        Open {
            file,
            buffered,
            wrote: AtomicBool::new(false),
        }
    }
}

#[derive(Default)]
pub(crate) struct Handles {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Open>>>,
}

impl Handles {
    pub fn insert(&self, o: Open) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.lock().insert(fh, Arc::new(o));
        fh
    }

    pub fn get(&self, fh: u64) -> Option<Arc<Open>> {
        self.lock().get(&fh).cloned()
    }

    pub fn remove(&self, fh: u64) -> Option<Arc<Open>> {
        self.lock().remove(&fh)
    }

    /// Closes every handle (at unmount, so the last sync sees no open file).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Open>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}
