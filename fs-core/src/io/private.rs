//! [`MapPrivate`]: what fs-core carries in a mapping from `begin` to `end`.

use iomap::IoMap;

/// What fs-core keeps in a write map's `private` (iomap's per-mapping data, Linux's
/// `iomap->private`, handed back untouched to `submit_direct` and `end`): the generation
/// `begin` pinned (see `Core::begin_with_room`) and, for a direct write, what `begin`
/// learnt of the file that its submission and completion need again, so that they need not
/// take the inodes lock for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MapPrivate {
    /// The committed generation pinned from `begin` to `end`.
    pub pinned: u64,
    /// The file is NOCOW (no checksums, nothing logged).
    pub nocow: bool,
    /// Write this direct write with its fsync record (`durability/synced.rs`).
    pub synced: bool,
}

impl MapPrivate {
    const NOCOW: u64 = 1;
    const SYNCED: u64 = 2;
    /// Bits below the generation.
    const SHIFT: u32 = 2;

    /// What `map` carries.
    pub fn of(map: &IoMap) -> MapPrivate {
        let bits = map.private;
        MapPrivate {
            pinned: bits >> Self::SHIFT,
            nocow: bits & Self::NOCOW != 0,
            synced: bits & Self::SYNCED != 0,
        }
    }

    /// As a write map's `private`. Generations count commits: they never reach 2^62.
    pub fn bits(self) -> u64 {
        debug_assert!(self.pinned < 1 << (64 - Self::SHIFT));
        (self.pinned << Self::SHIFT)
            | if self.nocow { Self::NOCOW } else { 0 }
            | if self.synced { Self::SYNCED } else { 0 }
    }
}
