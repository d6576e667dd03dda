//! One read-write mount per device, also where no lock on this host can see it: the mount
//! claim on the device (`cow::claim`). Here within one process, on one RAM device.

mod common;

use common::*;
use fs_core::{Filesystem, MountOptions};

#[test]
fn a_second_read_write_mount_of_a_mounted_device_is_refused() {
    let dev = mem(16);
    let (fs, ctx) = fresh(dev.clone());
    fs.mkdir("/kept", 0o755).unwrap();
    // Durable before the "crash" below (namespace operations wait for the next commit).
    fs.sync(&ctx).unwrap();
    let e = Filesystem::mount(dev.clone(), mount_opts())
        .err()
        .expect("second mount");
    assert_eq!(e.errno(), 16, "EBUSY: {e}");
    assert!(e.to_string().contains("already mounted read-write"), "{e}");
    let ro = MountOptions {
        read_only: true,
        ..mount_opts()
    };
    let e = Filesystem::mount(dev.clone(), ro.clone())
        .err()
        .expect("read-only beside it");
    assert_eq!(e.errno(), 16, "{e}");

    // A mount dropped without unmount (as a crash leaves it) no longer holds the device.
    drop(fs);
    let (fs, ctx2) = mount(dev.clone());
    assert!(fs.stat("/kept").is_ok());
    fs.unmount(&ctx2).unwrap();
    drop(ctx);

    // After a clean unmount, mounts of either kind go on.
    let fs = Filesystem::mount(dev.clone(), ro).unwrap();
    drop(fs);
    let (fs, ctx) = mount(dev);
    fs.unmount(&ctx).unwrap();
}
