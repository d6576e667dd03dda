//! Mappings: what a filesystem says about a byte range of a file.
//!
//! An [`IoMap`] describes `[offset, offset + length)` of a file: a hole, delayed allocation,
//! data at a device byte address, allocated-but-unwritten space, or bytes stored inline in
//! the metadata. The filesystem fills `kind`, `addr` and `flags`; the core alone sets
//! `core_flags` (whatever the filesystem put there is cleared), so the two never mix.

use std::sync::Arc;

/// Defines a small bit-set type with named flags.
macro_rules! flag_set {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $flag:ident = $bit:expr,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct $name(u16);

        impl $name {
            $($(#[$fm])* pub const $flag: $name = $name(1 << $bit);)*
            /// No flag set.
            pub const EMPTY: $name = $name(0);

            /// Whether every flag of `other` is set.
            pub fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether any flag of `other` is set.
            pub fn intersects(self, other: $name) -> bool {
                self.0 & other.0 != 0
            }

            /// Sets the flags of `other`.
            pub fn insert(&mut self, other: $name) {
                self.0 |= other.0;
            }
        }

        impl std::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, rhs: $name) -> $name {
                $name(self.0 | rhs.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut set = f.debug_set();
                $(if self.contains($name::$flag) { set.entry(&stringify!($flag)); })*
                set.finish()
            }
        }
    };
}

/// What a mapping's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapKind {
    /// No space: reads return zeroes.
    Hole,
    /// Space reserved but not yet allocated; the data lives only in the page cache.
    Delalloc,
    /// Data at `addr` on the device.
    Mapped,
    /// Space allocated at `addr` but never written: reads return zeroes.
    Unwritten,
    /// Bytes held in the filesystem's metadata ([`IoMap::inline_data`]).
    Inline,
}

flag_set! {
    /// Flags the filesystem reports about a mapping.
    MapFlags {
        /// `begin` allocated or reserved this space just now: old contents are meaningless.
        NEW = 0,
        /// Other files share the space (a reflink or snapshot).
        SHARED = 1,
        /// The mapping's metadata is not yet durable (fdatasync must commit it).
        DIRTY = 2,
        /// The mapping was merged from several on-disk extents.
        MERGED = 3,
    }
}

flag_set! {
    /// Flags only the core sets on a mapping, for the filesystem's `end`.
    CoreFlags {
        /// The operation moved the file size.
        SIZE_CHANGED = 0,
        /// The core used less than the write map because the source map was shorter.
        CLIPPED = 1,
    }
}

flag_set! {
    /// What an iteration is for; passed to `begin` and `end`.
    IterFlags {
        /// The range is being written.
        WRITE = 0,
        /// The range is being zeroed.
        ZERO = 1,
        /// Reporting only (seek, fiemap): no data moves.
        REPORT = 2,
        /// Direct I/O: the data bypasses the page cache.
        DIRECT = 3,
        /// Do not wait: fail with `WouldBlock` instead of waiting for I/O or locks.
        NOWAIT = 4,
        /// Writeback of dirty cached data: allocate its final place.
        WRITEBACK = 5,
        /// Unshare shared extents of the range.
        UNSHARE = 6,
    }
}

impl IterFlags {
    /// Whether the iteration puts data into the file (write, zero, writeback, unshare).
    pub fn is_write(self) -> bool {
        self.intersects(
            IterFlags::WRITE | IterFlags::ZERO | IterFlags::WRITEBACK | IterFlags::UNSHARE,
        )
    }
}

/// One mapping of a file range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoMap {
    /// File byte offset of the start of the mapping.
    pub offset: u64,
    /// Length in bytes (positive).
    pub length: u64,
    /// What the bytes are.
    pub kind: MapKind,
    /// Device byte address of `offset` for `Mapped` and `Unwritten`; [`IoMap::NULL_ADDR`]
    /// otherwise.
    pub addr: u64,
    /// What the filesystem reports.
    pub flags: MapFlags,
    /// What the core reports back to `end`; cleared when `begin` returns.
    pub core_flags: CoreFlags,
    /// The bytes of an `Inline` mapping, starting at `offset`.
    pub inline_data: Option<Arc<[u8]>>,
    /// The checksum of a one-block `Mapped` mapping's block, when the filesystem keeps it
    /// with the mapping (the map comes back to `IomapOps::verify_read`, which then needs
    /// no lookup). Opaque to the core.
    pub block_csum: Option<u32>,
    /// The filesystem's own data about this mapping, as Linux's `iomap->private`: set by
    /// `begin`, handed back untouched with the map to `end`, `complete` and
    /// `submit_direct`, never read by the core. 0 unless the filesystem sets it.
    pub private: u64,
}

impl IoMap {
    /// The address of a mapping with no device space.
    pub const NULL_ADDR: u64 = u64::MAX;

    /// A hole over `[offset, offset + length)`.
    pub fn hole(offset: u64, length: u64) -> IoMap {
        IoMap::new(offset, length, MapKind::Hole, IoMap::NULL_ADDR)
    }

    /// Delayed allocation over `[offset, offset + length)`.
    pub fn delalloc(offset: u64, length: u64) -> IoMap {
        IoMap::new(offset, length, MapKind::Delalloc, IoMap::NULL_ADDR)
    }

    /// Written data of `[offset, offset + length)` at device byte `addr`.
    pub fn mapped(offset: u64, length: u64, addr: u64) -> IoMap {
        IoMap::new(offset, length, MapKind::Mapped, addr)
    }

    /// Allocated, unwritten space of `[offset, offset + length)` at device byte `addr`.
    pub fn unwritten(offset: u64, length: u64, addr: u64) -> IoMap {
        IoMap::new(offset, length, MapKind::Unwritten, addr)
    }

    /// Inline bytes of `[offset, offset + length)`; `data` holds at most `length` bytes,
    /// the rest reads as zeroes.
    pub fn inline(offset: u64, length: u64, data: Arc<[u8]>) -> IoMap {
        let mut m = IoMap::new(offset, length, MapKind::Inline, IoMap::NULL_ADDR);
        m.inline_data = Some(data);
        m
    }

    fn new(offset: u64, length: u64, kind: MapKind, addr: u64) -> IoMap {
        IoMap {
            offset,
            length,
            kind,
            addr,
            flags: MapFlags::EMPTY,
            core_flags: CoreFlags::EMPTY,
            inline_data: None,
            block_csum: None,
            private: 0,
        }
    }

    /// The same mapping with `flags` added.
    pub fn with_flags(mut self, flags: MapFlags) -> IoMap {
        self.flags.insert(flags);
        self
    }

    /// One past the last byte (saturating, so a broken map cannot overflow the checks).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.length)
    }

    /// Whether the mapping covers file byte `pos`.
    pub fn covers(&self, pos: u64) -> bool {
        self.offset <= pos && pos < self.end()
    }

    /// Device byte address of file byte `pos` (inside the mapping, with device space).
    pub fn device_addr(&self, pos: u64) -> u64 {
        self.addr + (pos - self.offset)
    }

    /// Whether the bytes read as zeroes with no I/O (hole, unwritten; delalloc outside the
    /// cache).
    pub fn reads_as_zeroes(&self) -> bool {
        matches!(
            self.kind,
            MapKind::Hole | MapKind::Unwritten | MapKind::Delalloc
        )
    }

    /// Copies the inline bytes of `[pos, pos + dst.len())` into `dst`, zeroes past the data.
    pub fn copy_inline(&self, pos: u64, dst: &mut [u8]) {
        let data = self.inline_data.as_deref().unwrap_or(&[]);
        let from = ((pos - self.offset) as usize).min(data.len());
        let n = (data.len() - from).min(dst.len());
        dst[..n].copy_from_slice(&data[from..from + n]);
        dst[n..].fill(0);
    }
}
