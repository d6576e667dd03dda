//! The lock order of a mount's state, enforced where locks are taken.
//!
//! Every lock of [`Core`](super::Core) has a [`Level`]; a thread takes them only in
//! increasing level order (the fsync log, then space reservations, then the namespace's
//! pending changes, then the inode table),
//! never two of one level. Debug builds check it at every acquisition: a thread-local
//! stack of the levels held, and a panic naming both locks on a wrong order. Release builds
//! compile the check away.
//!
//! Why this order: an fsync reads the inodes' sizes under the log's lock (a size read
//! before it could be overtaken by a larger one another fsync logs first); a space check
//! runs under `reserved` and reads the overlay's size from an atomic, never the log, so
//! it cannot wait behind a fold; a read of the trees (`Core::read`, under the log's lock
//! in an fsync) takes the pending namespace changes, and a namespace operation holding them
//! asks the inode table whether a file is open; `inodes` is the innermost and is never held
//! across a cow call.

use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A lock's place in the order (lower first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// The fsync log and its overlay (`Core::log`).
    Log = 1,
    /// Delalloc reservations (`Space::reserved`).
    Reserved = 2,
    /// The namespace changes not yet committed (`Pending`).
    Pending = 3,
    /// The in-memory inode table (`InodeTable`).
    Inodes = 4,
    /// The name and attribute caches (`Lookups`): a leaf, taken last.
    Lookups = 5,
}

#[cfg(debug_assertions)]
thread_local! {
    static HELD: std::cell::RefCell<Vec<Level>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(debug_assertions)]
fn acquire(level: Level) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(&top) = h.iter().max() {
            assert!(
                top < level,
                "lock order: taking {level:?} while holding {top:?} (order: Log, Reserved, Pending, Inodes, Lookups)"
            );
        }
        h.push(level);
    });
}

#[cfg(debug_assertions)]
fn release(level: Level) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(i) = h.iter().rposition(|&l| l == level) {
            h.remove(i);
        }
    });
}

#[cfg(not(debug_assertions))]
fn acquire(_: Level) {}

#[cfg(not(debug_assertions))]
fn release(_: Level) {}

/// What an [`Ordered`] lock publishes of its state each time a holder releases it.
pub(crate) type OnRelease<T> = Box<dyn Fn(&T) + Send + Sync>;

/// A mutex with a place in the lock order; poisoning is ignored (the state stays usable:
/// every critical section leaves it consistent before anything that can panic).
pub(crate) struct Ordered<T> {
    level: Level,
    m: Mutex<T>,
    /// Run on the state by every guard as it is released (still holding the lock), so
    /// that a summary outside the lock is never older than the last critical section.
    on_release: Option<OnRelease<T>>,
}

/// The guard of an [`Ordered`] lock.
pub(crate) struct Guard<'a, T> {
    level: Level,
    g: Option<MutexGuard<'a, T>>,
    on_release: Option<&'a (dyn Fn(&T) + Send + Sync)>,
}

impl<T> Ordered<T> {
    pub fn new(level: Level, value: T) -> Ordered<T> {
        Ordered {
            level,
            m: Mutex::new(value),
            on_release: None,
        }
    }

    /// [`Ordered::new`] whose guards run `on_release` on the state as they release it.
    pub fn with_release(level: Level, value: T, on_release: OnRelease<T>) -> Ordered<T> {
        Ordered {
            on_release: Some(on_release),
            ..Ordered::new(level, value)
        }
    }

    pub fn lock(&self) -> Guard<'_, T> {
        acquire(self.level);
        let g = self.m.lock().unwrap_or_else(|e| e.into_inner());
        Guard {
            level: self.level,
            g: Some(g),
            on_release: self.on_release.as_deref(),
        }
    }

    /// Locks, then waits on `cv` while `cond` holds (the lock is released while waiting).
    pub fn lock_when(&self, cv: &Condvar, cond: impl FnMut(&mut T) -> bool) -> Guard<'_, T> {
        let mut guard = self.lock();
        let g = guard.g.take().expect("a live guard");
        guard.g = Some(cv.wait_while(g, cond).unwrap_or_else(|e| e.into_inner()));
        guard
    }
}

/// A readers-writer lock with a place in the lock order (a thread never holds two of one
/// level, readers included: a nested read could wait behind a queued writer).
pub(crate) struct OrderedRw<T> {
    level: Level,
    m: RwLock<T>,
}

/// A shared guard of an [`OrderedRw`] lock.
pub(crate) struct ReadGuard<'a, T> {
    level: Level,
    g: RwLockReadGuard<'a, T>,
}

/// The exclusive guard of an [`OrderedRw`] lock.
pub(crate) struct WriteGuard<'a, T> {
    level: Level,
    g: RwLockWriteGuard<'a, T>,
}

impl<T> OrderedRw<T> {
    pub fn new(level: Level, value: T) -> OrderedRw<T> {
        OrderedRw {
            level,
            m: RwLock::new(value),
        }
    }

    pub fn read(&self) -> ReadGuard<'_, T> {
        acquire(self.level);
        let g = self.m.read().unwrap_or_else(|e| e.into_inner());
        ReadGuard {
            level: self.level,
            g,
        }
    }

    pub fn write(&self) -> WriteGuard<'_, T> {
        acquire(self.level);
        let g = self.m.write().unwrap_or_else(|e| e.into_inner());
        WriteGuard {
            level: self.level,
            g,
        }
    }
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.g
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        release(self.level);
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.g
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.g
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        release(self.level);
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.g.as_ref().expect("a live guard")
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.g.as_mut().expect("a live guard")
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        if let (Some(g), Some(f)) = (&self.g, self.on_release) {
            f(g);
        }
        self.g = None;
        release(self.level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_holds_and_locks_come_back() {
        let log = Ordered::new(Level::Log, 1);
        let inodes = Ordered::new(Level::Inodes, 2);
        let a = log.lock();
        let b = inodes.lock();
        assert_eq!(*a + *b, 3);
        drop(b);
        drop(a);
        // Released: the inner lock alone, then the outer one again.
        drop(inodes.lock());
        drop(log.lock());
    }

    #[test]
    fn every_release_publishes_the_state() {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::Arc;
        let seen = Arc::new(AtomicU32::new(0));
        let s = Arc::clone(&seen);
        let m = Ordered::with_release(
            Level::Log,
            0u32,
            Box::new(move |v: &u32| s.store(*v, Ordering::Relaxed)),
        );
        *m.lock() = 7;
        assert_eq!(seen.load(Ordering::Relaxed), 7);
        let cv = Condvar::new();
        let mut g = m.lock_when(&cv, |v| *v == 0);
        *g = 9;
        drop(g);
        assert_eq!(seen.load(Ordering::Relaxed), 9);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "lock order: taking Log while holding Inodes")]
    fn a_wrong_order_panics_in_debug_builds() {
        let log = Ordered::new(Level::Log, ());
        let inodes = Ordered::new(Level::Inodes, ());
        let _i = inodes.lock();
        let _l = log.lock();
    }
}
