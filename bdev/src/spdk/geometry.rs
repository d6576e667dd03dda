//! What an SPDK bdev promises, told truthfully.
//!
//! SPDK's answers cannot be taken as they are:
//! - `io_type_supported(FLUSH)` is false for the uring, null and lvol bdevs: nothing the
//!   caller does can make their writes durable, yet their `has_write_cache` is false (the
//!   uring bdev even opens non-disk files without `O_DIRECT`, i.e. through the page cache).
//!   So a bdev that cannot flush is reported as having a volatile write cache that is not
//!   flushed: [`Geometry::durability_unknowable`] is then true.
//! - The NVMe bdev says it supports flush, but completes a flush without sending it to the
//!   device unless `bdev_nvme_set_options` sets `enable_flush` (SPDK's
//!   `module/bdev/nvme/bdev_nvme.c`, FLUSH case of the submit path). Its write cache is the
//!   controller's volatile write cache (VWC). Bdevs stacked on an NVMe bdev (passthru,
//!   delay, error, split, raid, gpt …) pass flushes down to it, and SPDK's public API does not
//!   say what a bdev is stacked on; so while an NVMe bdev exists and `enable_flush` is off,
//!   only bdevs of modules that carry out flushes themselves (malloc, aio) are trusted.
//! - SPDK's bdev API has no FUA. The queue emulates a FUA write as the write followed by a
//!   flush, so a FUA write is durable on completion exactly when flush is honoured (or there
//!   is no volatile cache to empty). Where it cannot be, the queue refuses FUA requests with
//!   [`IoError::Unsupported`](crate::IoError::Unsupported) rather than complete them.
//!
//! The filesystem refuses to mount read-write a device whose geometry says
//! `durability_unknowable` unless its user explicitly accepts the risk.

use crate::types::Geometry;

/// SPDK module names (`spdk_bdev_get_module_name`) of leaf bdevs that carry out a flush
/// themselves: malloc (RAM: nothing to do) and aio (`fsync`).
const FLUSHING_LEAF_MODULES: &[&str] = &["malloc", "aio"];

/// The least buffer alignment reported: a sector, so that byte-aligned buffers are refused
/// as on every other backend.
const MIN_BUF_ALIGN: usize = 512;

/// The module name of SPDK's NVMe bdev.
pub const NVME_MODULE: &str = "nvme";

/// What SPDK says about a bdev.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BdevFacts {
    /// `spdk_bdev_get_module_name`.
    pub module: String,
    /// `spdk_bdev_get_block_size`.
    pub block_size: u32,
    /// `spdk_bdev_get_num_blocks`.
    pub num_blocks: u64,
    /// `spdk_bdev_get_buf_align`.
    pub buf_align: usize,
    /// `spdk_bdev_get_optimal_io_boundary`.
    pub optimal_io_boundary: u32,
    /// `spdk_bdev_has_write_cache`.
    pub write_cache: bool,
    /// `io_type_supported(FLUSH)`.
    pub flush: bool,
}

/// What else decides whether flushes reach the media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushContext {
    /// `bdev_nvme_set_options` sets `enable_flush` in the config.
    pub nvme_flush_enabled: bool,
    /// Some NVMe bdev is registered in this process.
    pub nvme_bdev_present: bool,
}

/// Whether a flush sent to this bdev may be completed without reaching the media.
fn flush_may_be_dropped(facts: &BdevFacts, ctx: FlushContext) -> bool {
    if !facts.write_cache || ctx.nvme_flush_enabled {
        return false;
    }
    facts.module == NVME_MODULE
        || (ctx.nvme_bdev_present && !FLUSHING_LEAF_MODULES.contains(&facts.module.as_str()))
}

/// What a refused flush or FUA write is called in its error when [`nvme_drops_flushes`]:
/// the one refusal the user can lift, so the message says how.
pub const NVME_FLUSH_OFF: &str = "flush (SPDK's NVMe bdev skips flushes unless the SPDK \
     config's \"bdev_nvme_set_options\" sets \"enable_flush\": true; add it to the config)";

/// Whether the bdev can flush but would have its flushes completed unsent because the
/// config leaves SPDK's NVMe `enable_flush` off: unlike a bdev that cannot flush at all,
/// a line of config fixes it.
pub fn nvme_drops_flushes(facts: &BdevFacts, ctx: FlushContext) -> bool {
    facts.flush && flush_may_be_dropped(facts, ctx)
}

/// The geometry of a bdev with these facts.
pub fn geometry(facts: &BdevFacts, ctx: FlushContext) -> Geometry {
    let flush_honoured = facts.flush && !flush_may_be_dropped(facts, ctx);
    let volatile_write_cache = facts.write_cache || !facts.flush;
    Geometry {
        block_size: facts.block_size,
        block_count: facts.num_blocks,
        // What the bdev requires (SPDK bounce-copies less aligned buffers), at least a
        // sector. Not a page: DPDK's allocator puts a 64-byte header before each block, so
        // page-aligned 4 KiB buffers would take 8 KiB each, and at QD 128 the doubled
        // footprint measured ~4 % fewer IOPS.
        buf_align: facts.buf_align.max(MIN_BUF_ALIGN).next_power_of_two(),
        optimal_io_boundary_blocks: facts.optimal_io_boundary,
        volatile_write_cache,
        flush_honoured,
        fua_honoured: !volatile_write_cache || flush_honoured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(module: &str, write_cache: bool, flush: bool) -> BdevFacts {
        BdevFacts {
            module: module.into(),
            block_size: 4096,
            num_blocks: 1024,
            buf_align: 1,
            optimal_io_boundary: 0,
            write_cache,
            flush,
        }
    }

    const PLAIN: FlushContext = FlushContext {
        nvme_flush_enabled: false,
        nvme_bdev_present: false,
    };

    #[test]
    fn bdevs_that_cannot_flush_are_unknowable() {
        for module in ["uring", "null", "lvol"] {
            let g = geometry(&facts(module, false, false), PLAIN);
            assert!(g.volatile_write_cache && !g.flush_honoured && !g.fua_honoured);
            assert!(g.durability_unknowable(), "{module}");
        }
    }

    #[test]
    fn malloc_and_aio_flush() {
        for module in ["malloc", "aio"] {
            let ctx = FlushContext {
                nvme_flush_enabled: false,
                nvme_bdev_present: true,
            };
            let g = geometry(&facts(module, true, true), ctx);
            assert!(g.flush_honoured && g.fua_honoured && !g.durability_unknowable());
        }
    }

    #[test]
    fn nvme_with_a_write_cache_needs_enable_flush() {
        let nvme = facts(NVME_MODULE, true, true);
        let g = geometry(&nvme, PLAIN);
        assert!(g.volatile_write_cache && !g.flush_honoured && g.durability_unknowable());
        let enabled = FlushContext {
            nvme_flush_enabled: true,
            nvme_bdev_present: true,
        };
        assert!(nvme_drops_flushes(&nvme, PLAIN));
        let g = geometry(&nvme, enabled);
        assert!(g.flush_honoured && g.fua_honoured && !g.durability_unknowable());
        assert!(!nvme_drops_flushes(&nvme, enabled));
        // A bdev that cannot flush at all is not something enable_flush fixes.
        assert!(!nvme_drops_flushes(&facts("uring", false, false), PLAIN));
        // Without a volatile cache nothing needs flushing: SPDK skipping it is harmless.
        let g = geometry(&facts(NVME_MODULE, false, true), PLAIN);
        assert!(!g.volatile_write_cache && g.flush_honoured && !g.durability_unknowable());
    }

    #[test]
    fn stacked_bdevs_are_suspect_while_nvme_drops_flushes() {
        let passthru = facts("passthru", true, true);
        let with_nvme = FlushContext {
            nvme_flush_enabled: false,
            nvme_bdev_present: true,
        };
        assert!(geometry(&passthru, with_nvme).durability_unknowable());
        assert!(!geometry(&passthru, PLAIN).durability_unknowable());
    }

    #[test]
    fn alignment_is_what_the_bdev_needs_but_at_least_a_sector() {
        let mut f = facts("malloc", true, true);
        assert_eq!(geometry(&f, PLAIN).buf_align, 512);
        f.block_size = 512;
        assert_eq!(geometry(&f, PLAIN).buf_align, 512);
        f.buf_align = 4096;
        assert_eq!(geometry(&f, PLAIN).buf_align, 4096);
    }
}
