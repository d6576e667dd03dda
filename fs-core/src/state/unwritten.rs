//! What the overlay holds that no durable record has yet: the entries the next record must
//! carry, while they fit one record; past that, only the fact that some were dropped.

use super::record::{encoded_len, Entry, HEADER};

/// Entries applied to the overlay but not yet in a durable record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unwritten {
    /// The entries, in the order they were applied, and the bytes they take in a record body
    /// (they fit one record).
    Entries { list: Vec<Entry>, bytes: usize },
    /// More was applied than one record holds: the list is dropped and the next fsync
    /// commits (it would have to anyway), so a stream of writes without fsync keeps no list.
    Spilled,
}

impl Default for Unwritten {
    fn default() -> Unwritten {
        Unwritten::Entries {
            list: Vec::new(),
            bytes: 0,
        }
    }
}

impl Unwritten {
    /// Whether everything applied is in a durable record (or committed).
    pub fn is_empty(&self) -> bool {
        matches!(self, Unwritten::Entries { list, .. } if list.is_empty())
    }

    /// The entries, unless spilled.
    pub fn entries(&self) -> Option<&[Entry]> {
        match self {
            Unwritten::Entries { list, .. } => Some(list),
            Unwritten::Spilled => None,
        }
    }

    /// Notes an entry for the next record of a `bs`-byte block; `e` is made only if it will
    /// be kept.
    pub fn note_with(&mut self, e: impl FnOnce() -> Entry, bs: u64) {
        let Unwritten::Entries { list, bytes } = self else {
            return;
        };
        let e = e();
        *bytes += encoded_len(&e);
        if HEADER + *bytes > bs as usize {
            *self = Unwritten::Spilled;
            return;
        }
        list.push(e);
    }

    /// Notes an entry for the next record of a `bs`-byte block.
    pub fn note(&mut self, e: Entry, bs: u64) {
        self.note_with(|| e, bs);
    }

    /// Everything is durable (a record with it is on the device, or a commit restarted).
    pub fn written(&mut self) {
        *self = Unwritten::default();
    }

    /// The first `carried` entries are in a durable record now, with the record's other
    /// entries `own`; those noted since stay unwritten, unless one is an extent overlapping
    /// an extent of `own` (replay would put it under that one, memory has it over): then
    /// everything spills, and the next fsync commits what memory holds.
    pub fn carried_written(&mut self, carried: usize, own: &[Entry], bs: u64) {
        let Unwritten::Entries { list, .. } = self else {
            // Dropped meanwhile: the next fsync commits anyway.
            return;
        };
        let rest = list.split_off(carried.min(list.len()));
        let overlaps = rest.iter().any(|e| own.iter().any(|o| overlap(e, o)));
        self.written();
        if overlaps {
            *self = Unwritten::Spilled;
            return;
        }
        for e in rest {
            self.note(e, bs);
        }
    }

    /// Puts the unwritten entries of an older overlay (whose fold failed) before these.
    pub fn put_under(&mut self, older: &Unwritten) {
        match (older, &mut *self) {
            (_, Unwritten::Spilled) => {}
            (Unwritten::Spilled, _) => *self = Unwritten::Spilled,
            (
                Unwritten::Entries {
                    list: old,
                    bytes: old_bytes,
                },
                Unwritten::Entries { list, bytes },
            ) => {
                let newer = std::mem::replace(list, old.clone());
                list.extend(newer);
                *bytes += old_bytes;
            }
        }
    }
}

/// Whether `a` and `b` are extents of one file whose ranges overlap.
fn overlap(a: &Entry, b: &Entry) -> bool {
    match (a, b) {
        (
            Entry::Extent {
                ino: ia,
                file_off: oa,
                len: la,
                ..
            },
            Entry::Extent {
                ino: ib,
                file_off: ob,
                len: lb,
                ..
            },
        ) => ia == ib && oa < &(ob + lb) && ob < &(oa + la),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::encode;
    use super::*;

    const BS: u64 = 4096;

    fn extent(ino: u64, file_off: u64) -> Entry {
        Entry::Extent {
            ino,
            file_off,
            bytenr: 1 << 20,
            len: BS,
            crcs: vec![0],
        }
    }

    fn with(entries: &[Entry]) -> Unwritten {
        let mut u = Unwritten::default();
        for e in entries {
            u.note(e.clone(), BS);
        }
        u
    }

    /// Unwritten entries are kept while one record holds them; past that the list is
    /// dropped (the next fsync commits) until a record or commit starts over.
    #[test]
    fn unwritten_entries_spill_past_one_record() {
        let extent = |i: u64| Entry::Extent {
            ino: 7,
            file_off: i * BS,
            bytenr: 0x10_0000 + i * BS,
            len: BS,
            crcs: vec![i as u32],
        };
        let mut u = Unwritten::default();
        let mut kept = Vec::new();
        let mut i = 0;
        while u != Unwritten::Spilled {
            u.note(extent(i), BS);
            if let Some(list) = u.entries() {
                kept.push(extent(i));
                assert_eq!(list, kept);
                // The bytes counted are the bytes `encode` needs: what it accepts fits.
                assert!(encode(1, 0, list, BS as usize).is_some());
            }
            i += 1;
        }
        assert!(encode(1, 0, &[kept.clone(), vec![extent(i)]].concat(), BS as usize).is_none());
        assert!(u.entries().is_none() && !u.is_empty());
        u.note_with(|| panic!("nothing is made once spilled"), BS);
        assert_eq!(u, Unwritten::Spilled, "nothing is kept once spilled");
        u.written();
        assert!(u.is_empty());
        u.note(extent(0), BS);
        assert_eq!(u.entries(), Some(&[extent(0)][..]));
    }

    #[test]
    fn a_record_makes_written_only_what_it_carried() {
        // Carried: the first; noted during the flight: another file's, and the same file
        // elsewhere.
        let mut u = with(&[extent(5, 0), extent(6, 0), extent(7, 8192)]);
        u.carried_written(1, &[extent(7, 0)], BS);
        assert_eq!(
            u,
            with(&[extent(6, 0), extent(7, 8192)]),
            "entries and bytes"
        );
        // Attributes carried with it overlap nothing.
        let size = Entry::Size { ino: 6, size: 1 };
        u.carried_written(0, &[size], BS);
        assert_eq!(u, with(&[extent(6, 0), extent(7, 8192)]));
    }

    #[test]
    fn an_overlapping_write_noted_during_the_flight_spills_the_log() {
        let mut u = with(&[extent(5, 0), extent(7, 0)]);
        u.carried_written(1, &[extent(7, 0)], BS);
        assert_eq!(
            u,
            Unwritten::Spilled,
            "the next fsync commits what memory holds"
        );
    }

    #[test]
    fn a_log_spilled_during_the_flight_stays_spilled() {
        let mut u = Unwritten::Spilled;
        u.carried_written(1, &[extent(7, 0)], BS);
        assert_eq!(u, Unwritten::Spilled);
    }

    #[test]
    fn older_entries_go_first_and_a_spill_wins() {
        let mut u = with(&[extent(6, 0)]);
        u.put_under(&with(&[extent(5, 0)]));
        assert_eq!(u, with(&[extent(5, 0), extent(6, 0)]));
        u.put_under(&Unwritten::Spilled);
        assert_eq!(u, Unwritten::Spilled);
        let mut spilled = Unwritten::Spilled;
        spilled.put_under(&with(&[extent(5, 0)]));
        assert_eq!(spilled, Unwritten::Spilled);
    }
}
