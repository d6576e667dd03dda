//! Under tokio's multi-threaded runtime: many tasks, each with requests in flight, on
//! polling threads that tokio knows nothing about.

use std::sync::Arc;

use bypassfs::asyncio::{AsyncFile, AsyncFs};
use bypassfs::Error;
use testkit::Rng;

use super::{mount, ram_device, read_back, remount_read_back, rw_create};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .expect("tokio runtime")
}

/// Span of each task's file that its writes land in.
const SPAN: u64 = 192 << 10;

/// One task's life: random writes (copied and DMA) each awaited and applied to a model,
/// random reads checked against it, an fsync; returns the model.
async fn task(f: AsyncFile, mut rng: Rng) -> Vec<u8> {
    let mut model = Vec::new();
    for step in 0..24 {
        let pos = rng.below(SPAN);
        let len = 1 + rng.below(20_000) as usize;
        let data = rng.bytes(len);
        let n = if rng.chance(50) {
            f.write(pos, &data).await.expect("write")
        } else {
            let mut buf = f.alloc_buf(len).expect("DMA buffer");
            buf.copy_from_slice(&data);
            let (buf, n) = f.write_dma(pos, buf).await.expect("write_dma");
            assert_eq!(&buf[..], &data[..], "write_dma gave back another buffer");
            n
        };
        assert_eq!(n, len, "step {step}: short write");
        let end = (pos as usize) + len;
        if model.len() < end {
            model.resize(end, 0);
        }
        model[pos as usize..end].copy_from_slice(&data);

        let pos = rng.below(model.len() as u64 + 100);
        let len = 1 + rng.below(30_000) as usize;
        let want = model
            .get(pos as usize..)
            .map_or(&[][..], |rest| &rest[..len.min(rest.len())]);
        let got = if rng.chance(50) {
            f.read(pos, len).await.expect("read")
        } else {
            let buf = f.alloc_buf(len).expect("DMA buffer");
            let (buf, n) = f.read_dma(pos, buf).await.expect("read_dma");
            buf[..n].to_vec()
        };
        assert!(
            got == want,
            "step {step}: read {len} at {pos} differs from the model"
        );
    }
    f.fsync().await.expect("fsync");
    assert_eq!(f.size().expect("size"), model.len() as u64);
    model
}

#[test]
fn many_tasks_round_trip_and_survive_a_remount() {
    let seed = testkit::seed!();
    let dev = ram_device();
    let fs = mount(&dev);
    let afs = AsyncFs::start(&fs, 2).expect("start the async handle");
    drop(fs);
    let rt = runtime();
    let tasks = 32;
    let (paths, models) = rt.block_on(async {
        let mut handles = Vec::new();
        for i in 0..tasks {
            let afs = afs.clone();
            let rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x9e37_79b9));
            handles.push(tokio::spawn(async move {
                let path = format!("/task-{i}");
                let f = afs.open(&path, rw_create(), 0o644).await.expect("create");
                (path, task(f, rng).await)
            }));
        }
        let mut out = (Vec::new(), Vec::new());
        for h in handles {
            let (p, m) = h.await.expect("task");
            out.0.push(p);
            out.1.push(m);
        }
        afs.unmount().await.expect("unmount");
        out
    });
    drop(afs);
    let back = remount_read_back(&dev, &paths);
    for ((p, m), b) in paths.iter().zip(&models).zip(&back) {
        assert!(m == b, "{p}: after remount differs from the model");
    }
}

#[test]
fn one_file_with_a_deep_queue() {
    let dev = ram_device();
    let fs = mount(&dev);
    let afs = AsyncFs::start(&fs, 2).expect("start");
    let rt = runtime();
    let blocks = 256u64;
    rt.block_on(async {
        let f = Arc::new(afs.open("/deep", rw_create(), 0o644).await.expect("create"));
        // Every write in flight at once: each fills its own 4 KiB block with its number.
        let writes: Vec<_> = (0..blocks)
            .map(|b| {
                let mut buf = f.alloc_buf(4096).expect("DMA buffer");
                buf.fill(b as u8);
                tokio::spawn(f.write_dma(b * 4096, buf))
            })
            .collect();
        for w in writes {
            assert_eq!(w.await.expect("task").expect("write").1, 4096);
        }
        let reads: Vec<_> = (0..blocks)
            .map(|b| {
                let f = Arc::clone(&f);
                tokio::spawn(async move { (b, f.read(b * 4096, 4096).await) })
            })
            .collect();
        for r in reads {
            let (b, data) = r.await.expect("task");
            let data = data.expect("read");
            assert!(
                data.len() == 4096 && data.iter().all(|&x| x == b as u8),
                "block {b} read back wrong"
            );
        }
        f.fsync().await.expect("fsync");
    });
    drop(afs);
    assert_eq!(read_back(&fs, "/deep").len() as u64, blocks * 4096);
}

/// Futures dropped unpolled, and a file dropped with its requests in flight: every write
/// still lands, because a request owns its buffer and is sent when the call is made.
#[test]
fn dropped_futures_do_not_lose_writes() {
    let dev = ram_device();
    let fs = mount(&dev);
    let afs = AsyncFs::start(&fs, 2).expect("start");
    let rt = runtime();
    rt.block_on(async {
        let f = afs
            .open("/dropped", rw_create(), 0o644)
            .await
            .expect("create");
        for b in 0..64u64 {
            drop(f.write(b * 4096, &[b as u8 + 1; 4096]));
            let buf = f.alloc_buf(4096).expect("DMA buffer");
            // A read whose buffer is freed on the polling thread, with no one to hand it to.
            drop(f.read_dma(b * 4096, buf));
        }
        drop(f);
    });
    // The last handle's drop waits for every request sent.
    drop(afs);
    let data = read_back(&fs, "/dropped");
    assert_eq!(data.len(), 64 * 4096);
    for (b, block) in data.chunks(4096).enumerate() {
        assert!(
            block.iter().all(|&x| x == b as u8 + 1),
            "block {b} lost its write"
        );
    }
}

#[test]
fn errors_reach_tokio_tasks() {
    let dev = ram_device();
    let fs = mount(&dev);
    let afs = AsyncFs::start(&fs, 1).expect("start");
    let rt = runtime();
    rt.block_on(async {
        let r = afs
            .open("/missing", bypassfs::OpenFlags::read_only(), 0)
            .await;
        assert!(matches!(r, Err(Error::NotFound(_))), "{:?}", r.err());
        afs.mkdir("/d", 0o755).await.expect("mkdir");
        let r = tokio::spawn(afs.mkdir("/d", 0o755)).await.expect("task");
        assert!(matches!(r, Err(Error::Exists(_))), "{r:?}");
        let r = afs.open("/d", rw_create(), 0o644).await;
        assert!(matches!(r, Err(Error::IsDir(_))), "{:?}", r.err());
    });
}

#[test]
fn zero_threads_is_refused() {
    let fs = mount(&ram_device());
    let r = AsyncFs::start(&fs, 0);
    assert!(matches!(r, Err(Error::Invalid(_))), "{:?}", r.err());
}
