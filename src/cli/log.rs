//! Warnings of every crate (no hugepages, …) to stderr, prefixed with the program name.

struct StderrLogger;

static LOGGER: StderrLogger = StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, meta: &log::Metadata) -> bool {
        meta.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) && !is_second_unmount(record) {
            let level = record.level().as_str().to_lowercase();
            eprintln!("bypassfs: {level}: {}", record.args());
        }
    }
    fn flush(&self) {}
}

/// fuser's session unmounts on its way out even when its end came from the filesystem being
/// unmounted already (`umount`, `fusermount3 -u`): its "is it still mounted?" poll of
/// /dev/fuse can run before the kernel has torn the connection down, and umount(2) of the
/// mountpoint, no longer a mount, fails with EINVAL, which fuser (0.18, `session.rs`,
/// `UmountOnDrop`) logs as a warning at every ordinary unmount. That EINVAL only says the
/// mount is gone; other unmount failures (EBUSY, EPERM) still show.
fn is_second_unmount(record: &log::Record) -> bool {
    record.target().starts_with("fuser")
        && record
            .args()
            .to_string()
            .starts_with("Failed to umount filesystem")
        && record.args().to_string().contains("(os error 22)")
}

/// Installs the logger (once; a second call changes nothing).
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}
