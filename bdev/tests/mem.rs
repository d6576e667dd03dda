//! The `mem` backend: the conformance suite plus what is particular to RAM devices.

mod common;

use std::sync::Arc;

use bdev::mem::MemDevice;
use bdev::{wait, BlockDevice, Lba};

#[test]
fn conformance_4k() {
    common::run_all(&MemDevice::new("Malloc0", 4096, 512).unwrap());
}

#[test]
fn conformance_512() {
    common::run_all(&MemDevice::new("Malloc1", 512, 1024).unwrap());
}

#[test]
fn bad_geometry_is_a_config_error() {
    for (bs, n) in [
        (0, 10),
        (1000, 10),
        (4096, 0),
        (131072, 1),
        (4096, u64::MAX),
    ] {
        let err = MemDevice::new("bad", bs, n)
            .err()
            .unwrap_or_else(|| panic!("{bs}x{n} accepted"));
        assert!(err.to_string().contains("bad"), "{err}");
    }
}

#[test]
fn image_round_trip_and_byte_access() {
    let image: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    let dev = MemDevice::from_image("img", 4096, &image).unwrap();
    assert_eq!(dev.snapshot(), image);
    dev.write_bytes(5, &[1, 2, 3]).unwrap();
    let mut got = [0u8; 3];
    dev.read_bytes(5, &mut got).unwrap();
    assert_eq!(got, [1, 2, 3]);
    assert!(dev.read_bytes(8190, &mut [0u8; 4]).is_err());
    assert!(MemDevice::from_image("img", 4096, &image[..100]).is_err());
}

#[test]
fn queues_on_many_threads_see_each_other() {
    let dev = Arc::new(MemDevice::new("shared", 4096, 256).unwrap());
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let dev = Arc::clone(&dev);
            std::thread::spawn(move || {
                let mut q = dev.queue(8).unwrap();
                for i in 0..32 {
                    let mut b = dev.alloc_buf(4096).unwrap();
                    b.fill((t * 32 + i) as u8);
                    wait::write(&mut *q, Lba(t * 32 + i), b, false).unwrap();
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    let mut q = dev.queue(1).unwrap();
    for lba in 0..128u64 {
        let b = wait::read(&mut *q, Lba(lba), dev.alloc_buf(4096).unwrap()).unwrap();
        assert!(b.iter().all(|&x| x == lba as u8), "block {lba}");
    }
}
