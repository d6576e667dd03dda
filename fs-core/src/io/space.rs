//! Space that is only waiting: ENOSPC is reported only when a commit cannot free enough.
//!
//! Copy-on-write overwrites allocate fresh extents; the extents they replace (and logged
//! extents replaced again before a fold) are freed only by the commit that folds the fsync
//! log's overlay, and become allocatable only once no reader or pinned mapping of an older
//! generation remains. Like btrfs's "flush space" stages, a write that finds no room first
//! lets in-flight I/O of older generations finish (while freed space is pinned, a commit
//! would only spend node space), then commits (folding the overlay), and retries; only if
//! nothing is left waiting does it fail. To keep writers off that slow path, a completion
//! asks the mount's folder thread for a fold once the overlay's new extents plus the node
//! space its fold needs (`Core::fold_need`, which data never takes, in whole nodes for
//! direct writes) pass a quarter of the free space, or the overlay maps `FOLD_PIECES`
//! pieces, or takes a quarter of its memory budget (`Core::overlay_budget`); writers that
//! outrun the folder are slowed (`Core::throttle`), and stopped when the live overlay holds
//! half the budget (the frozen one being folded holds at most the other half). They are
//! slowed as well while the room left for data runs out during a fold (`Core::space_fill`),
//! so that none of them finds no room and waits for the whole fold.
//!
//! Invariant: no cow transaction and no lock is held across the waits (`yield_now`, the
//! naps of a write waiting for space, the throttle's sleeps, waits for a running fold).

use bdev::exec::{yield_now, Context};
use iomap::{IoMap, IterArgs, Maps};

use crate::durability::fold_beside_writes;
use crate::error::{Error, Result};
use crate::io::private::MapPrivate;
use crate::state::Core;

/// How long a write that finds no room keeps waiting for space that is only pinned or
/// being handed back before it reports ENOSPC anyway: a safety net, since such space comes
/// back as readers end and folds commit. Waits are counted in time, not in retries: a
/// count of retries, each a yield, ran out in a few milliseconds when the threads freeing
/// the space were off the CPU (`enospc` tests under load).
const NOSPACE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Retries that only yield (so in-flight I/O of this thread can end and unpin) before each
/// retry also sleeps for `NOSPACE_NAP`, so the threads freeing the space get a CPU even if
/// this thread's is contended.
const SPIN_RETRIES: usize = 256;

/// See `SPIN_RETRIES`.
const NOSPACE_NAP: std::time::Duration = std::time::Duration::from_micros(100);

/// Retries between two looks at whether space is only pinned (`Flushed::Pinned`) while it
/// is: the look sums every pinned extent under cow's free-space lock, which the other
/// writers' reservations and the fold's commit need, and the retry's own reservation
/// already takes back what no pin holds any more. (Two writers at `-m 0x3` looking on
/// every retry spent 3.4 % of their CPU in it, holding that lock meanwhile.)
const PINNED_RECHECK: usize = 16;

/// What `Core::flush_space` did about a write that found no room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Freed space is pinned by I/O of older generations: it comes back as that ends.
    Pinned,
    /// A fold ended, or a commit ran: what they freed may be allocatable now.
    Committed,
    /// Nothing waits to be freed: the filesystem is full.
    Nothing,
}

/// Folds the overlay once it maps this many pieces, so that a fold's work stays bounded
/// (its memory is bounded by the budget, `Core::overlay_budget`).
const FOLD_PIECES: usize = 1 << 16;

/// A completion that finds this many pieces in the live overlay while the background fold
/// still runs waits for that fold to end: the overlay's memory stays bounded if the folder
/// cannot keep up with the writers.
const WAIT_FOLD_PIECES: usize = 2 * FOLD_PIECES;

/// How full the live overlay is, in 1/`FULL`ths: of `WAIT_FOLD_PIECES` pieces or of half
/// the memory budget, whichever it is closer to. At `FULL` writers wait.
const FULL: u64 = 1024;

/// The fill during a fold past which completions start to pause (see `throttle`): 3/4,
/// that is `FOLD_PIECES * 3 / 2` pieces or 3/8 of the budget.
const THROTTLE_FILL: u64 = FULL * 3 / 4;

/// How often a completion pauses while the writers outrun the folder (see `throttle`).
const THROTTLE_EVERY: u64 = 64;

/// How often once the room for data is all but gone during a fold (`Core::space_fill` at
/// `FULL`): the brake that keeps writers from finding none.
const THROTTLE_EVERY_SPACE_FULL: u64 = 8;

/// The longest of those pauses.
const THROTTLE_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// The live overlay's size, as a completion left it (`Core::fold_if_large`). Plain data: a
/// snapshot taken under the log's lock, read after it is released.
pub(crate) struct OverlaySize {
    /// Pieces mapped.
    pub pieces: usize,
    /// Its memory (`LogState::mem_bytes`).
    pub mem_bytes: u64,
    /// Bytes of its new extents.
    pub bytes: u64,
    /// Whether a background fold runs.
    pub folding: bool,
}

impl Core {
    /// Maps for `begin`, retrying after freeing waiting space when the write finds none, with
    /// the committed generation pinned: extents freed later are not reused while the data
    /// I/O of the mapping may still read them. The pin rides in the write map's `private`
    /// (iomap's per-mapping data, Linux's `iomap->private`) to `end`, which releases exactly
    /// that generation ([`Core::end_pin`]).
    pub(crate) async fn begin_with_room(&self, _: &Context, args: IterArgs) -> Result<Maps> {
        let IterArgs {
            ino,
            pos,
            len,
            flags,
        } = args;
        let mut tries = 0;
        let mut since = None;
        // What `flush_space` said after the last failure.
        let mut last = Flushed::Committed;
        loop {
            let pinned = self.vol().pin();
            let e = match self.begin_map(ino.0, pos, len, flags, pinned) {
                Ok(mut maps) => {
                    let p = MapPrivate {
                        pinned,
                        ..MapPrivate::of(&maps.write)
                    };
                    maps.write.private = p.bits();
                    return Ok(maps);
                }
                Err(e) => e,
            };
            // No `end` follows a failed `begin`.
            self.vol().unpin(pinned);
            match e {
                Error::NoSpace(why) if flags.is_write() => {
                    let waited = since.get_or_insert_with(std::time::Instant::now).elapsed();
                    if waited > NOSPACE_WAIT {
                        return Err(Error::NoSpace(why));
                    }
                    let still_pinned = last == Flushed::Pinned && tries % PINNED_RECHECK != 0;
                    if !still_pinned {
                        let now = self.flush_space()?;
                        if now == Flushed::Nothing {
                            // The failure may predate what `flush_space` saw (a fold that
                            // ended meanwhile, whose overlay no longer needs node room
                            // kept): ENOSPC only if a try after it fails too.
                            if last == Flushed::Nothing {
                                return Err(Error::NoSpace(why));
                            }
                            last = now;
                            continue;
                        }
                        last = now;
                    }
                    tries += 1;
                    if tries > SPIN_RETRIES {
                        std::thread::sleep(NOSPACE_NAP);
                    }
                    yield_now().await;
                }
                e => return Err(e),
            }
        }
    }

    /// Ends the pin `begin_with_room` took for `write_map`: the generation in its `private`
    /// ([`MapPrivate`]).
    /// Each mapping releases its own pin as soon as it ends, so old generations go while
    /// other I/O keeps running and the space they freed comes back. (A pin released by key
    /// rather than exactly, the newest of a set shared by the whole filesystem, kept the
    /// oldest alive for as long as any I/O was in flight, so freed extents never came back:
    /// ENOSPC under steady overwrites, `tests/enospc.rs`.)
    pub(crate) fn end_pin(&self, write_map: &IoMap) {
        self.vol().unpin(MapPrivate::of(write_map).pinned);
    }

    /// Makes waiting space allocatable if it can. Space that older readers pin comes back
    /// as they end, so while there is any the caller only waits: a commit now would take
    /// node space and free nothing usable yet (under many writers each retrying, such
    /// commits used up the metadata room and a commit then failed). Otherwise it folds what
    /// the overlay holds (the commit frees the extents it replaced), beside the writes like
    /// the folder when the mount has one, or commits the pending namespace changes
    /// (unlinked files free their space). Says which, or that nothing can come back (the
    /// filesystem is really full).
    pub(crate) fn flush_space(&self) -> Result<Flushed> {
        if self.vol().pinned_bytes() > 0 {
            return Ok(Flushed::Pinned);
        }
        if self.log().folding() {
            // A background fold about to commit frees what its overlay replaced: wait for
            // it, then let the caller try again (what it freed may stay pinned a while by
            // I/O in flight, and committing the newer overlay meanwhile would only spend
            // node space).
            drop(self.log_idle());
            return Ok(Flushed::Committed);
        }
        if self.folder().running() && !self.log().is_clean() {
            // Folded as the folder folds, the overlay frozen: a commit here held the log's
            // lock for its whole length, and every other write's completion waited for it.
            fold_beside_writes(self, false)?;
            return Ok(Flushed::Committed);
        }
        // Files unlinked since the last commit give their space back at the next.
        if !self.log().is_clean() || self.pending().frees_space() {
            self.commit_pending()?;
            return Ok(Flushed::Committed);
        }
        Ok(Flushed::Nothing)
    }

    /// Slows the writers down while they outrun the folder: past `THROTTLE_FILL` during a
    /// fold, every `THROTTLE_EVERY`th completion sleeps for a time that grows with the
    /// excess up to `THROTTLE_PAUSE`, so the folder (and the device's kernel workers) get
    /// the core in small slices; at `FULL` of the overlay's budget (`budget_fill`) a
    /// completion waits for the fold to end, which bounds the overlay's memory. (Waiting at
    /// once for the whole fold made the worst write latency a fold's length, 0.1-0.5 s.)
    /// Space running out (`space_fill`) only slows: a write that finds no room at all waits
    /// for the fold in `begin_with_room`.
    fn throttle(&self, budget_fill: u64, space_fill: u64) {
        if budget_fill >= FULL {
            drop(self.log_idle());
            return;
        }
        let fill = budget_fill.max(space_fill).min(FULL);
        let Some(over) = fill.checked_sub(THROTTLE_FILL) else {
            return;
        };
        let every = if space_fill >= FULL {
            THROTTLE_EVERY_SPACE_FULL
        } else {
            THROTTLE_EVERY
        };
        let tick = self.space().throttle_tick();
        if tick % every == 0 {
            let span = (FULL - THROTTLE_FILL) as u32;
            std::thread::sleep(THROTTLE_PAUSE * over as u32 / span);
        }
    }

    /// [`space_fill`] of the writes logged during a fold (`live_bytes` of new extents).
    /// The room is the free space less what commits keep (`slack`, `fold_need`), read
    /// without locks (`Volume::free_bytes_hint`; delalloc promises are left out, which only
    /// delays the slowing where buffered writes hold some).
    fn space_fill(&self, live_bytes: u64) -> u64 {
        let room = self
            .vol()
            .free_bytes_hint()
            .saturating_sub(self.space().slack(self.vol()))
            .saturating_sub(self.fold_need(0));
        space_fill(live_bytes, room)
    }

    /// How full the live overlay is (see `FULL`): `share` is its half of the budget.
    fn fill(pieces: usize, mem_bytes: u64, share: u64) -> u64 {
        let by_pieces = pieces as u64 * FULL / WAIT_FOLD_PIECES as u64;
        let by_memory = u64::try_from(u128::from(mem_bytes) * u128::from(FULL) / u128::from(share))
            .unwrap_or(u64::MAX);
        by_pieces.max(by_memory)
    }

    /// Folds when the overlay has grown large: many pieces (a fold's work), a quarter of its
    /// memory budget, or new extents worth a quarter of the free space (each may pin the
    /// extent it replaced until the fold), so steady overwrites rarely reach
    /// `begin_with_room`'s slow path. The mount's folder thread does it
    /// (`durability/background.rs`); this thread commits itself only when there is no
    /// folder, or when the live overlay holds half the budget and no fold runs (the folder
    /// did not get the core yet, or its fold failed): the budget holds either way.
    pub(crate) fn fold_if_large(&self, overlay: OverlaySize) -> Result<()> {
        let OverlaySize {
            pieces,
            mem_bytes,
            bytes,
            folding,
        } = overlay;
        // The live overlay's half of the budget; the frozen one has the other half.
        let share = (self.overlay_budget() / 2).max(1);
        if pieces < FOLD_PIECES
            && mem_bytes < share / 2
            && bytes + self.fold_need(0) <= self.vol().free_bytes_hint() / 4
        {
            return Ok(());
        }
        let fill = Self::fill(pieces, mem_bytes, share);
        if self.folder().running() {
            if folding {
                self.throttle(fill, self.space_fill(bytes));
            }
            self.folder().request();
            if folding || mem_bytes < share {
                return Ok(());
            }
        }
        match self.commit_pending() {
            // The write that got here has done its part (its extent is in the overlay,
            // which an aborted commit leaves as it was). Space short for the fold's nodes,
            // typically while freed extents are still pinned by writes in flight, is no
            // error of this write: a later fold retries, and a write that finds no room
            // waits for the pins before committing.
            Err(Error::NoSpace(why)) => {
                log::debug!("fs-core: fold deferred, no room for its nodes yet: {why}");
                Ok(())
            }
            r => r,
        }
    }
}

/// How close writes that took `live_bytes` during a fold are to taking the `room` left for
/// data, in 1/`FULL`ths: `FULL` once an eighth of what they took is all that is left (the
/// margin the hardest brake, `THROTTLE_EVERY_SPACE_FULL`, needs), `THROTTLE_FILL` (where
/// writers start to slow) when about four fifths of it are left. A fold frees what its
/// overlay replaced only when it commits: at two cores the writers used the free space up
/// before that (the RAM backend's 1 GiB, a quarter of it in files), and each write that
/// found no room waited for the rest of the fold (0.1-0.4 s).
fn space_fill(live_bytes: u64, room: u64) -> u64 {
    let beyond_margin = room.saturating_sub(live_bytes / 8);
    let all = live_bytes.saturating_add(beyond_margin / 2).max(1);
    u64::try_from(u128::from(live_bytes) * u128::from(FULL) / u128::from(all)).unwrap_or(FULL)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writers are not slowed while the room left is large against what they took, start
    /// to be before it is as small, and brake hardest with a margin still left.
    #[test]
    fn the_space_fill_reaches_full_before_the_room_is_gone() {
        const MIB: u64 = 1 << 20;
        assert_eq!(space_fill(0, 100 * MIB), 0, "nothing written yet");
        assert!(space_fill(100 * MIB, 300 * MIB) < THROTTLE_FILL);
        assert!(space_fill(100 * MIB, 100 * MIB) < THROTTLE_FILL);
        assert!(space_fill(100 * MIB, 70 * MIB) >= THROTTLE_FILL);
        assert!(space_fill(100 * MIB, 20 * MIB) < FULL);
        assert_eq!(space_fill(100 * MIB, 12 * MIB), FULL);
        assert_eq!(space_fill(100 * MIB, 0), FULL);
        assert!(space_fill(u64::MAX, u64::MAX) <= FULL, "no overflow");
        // It only grows as the room shrinks.
        let fills: Vec<u64> = (0..=100)
            .rev()
            .map(|r| space_fill(100 * MIB, r * MIB))
            .collect();
        assert!(fills.windows(2).all(|w| w[0] <= w[1]), "{fills:?}");
    }
}
