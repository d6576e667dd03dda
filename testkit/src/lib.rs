//! Test support shared by the crates of the bypassfs workspace (a dev-dependency only).
//!
//! - [`seed!`]: the seed of a randomized test. One variable for the whole workspace,
//!   [`SEED_VAR`] (`BFS_SEED`), sets it; otherwise a fresh one is picked. Either way it is
//!   printed with the command that reruns the test on the same seed.
//! - [`Rng`]: a small, fast generator whose stream is fixed forever (splitmix64), so a seed
//!   reproduces a run on every platform and Rust version.
//! - `modcycles` (a binary of this crate, run by `ci/run`): the module-cycle check.

use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable that fixes the seed of every randomized test.
pub const SEED_VAR: &str = "BFS_SEED";

/// The per-crate variables `SEED_VAR` replaced. Still read, with a warning, for one release.
pub const OLD_SEED_VARS: [&str; 4] = ["BDEV_TEST_SEED", "COW_SEED", "FS_SEED", "IOMAP_SEED"];

/// The seed of the calling test: `BFS_SEED` if set, else a fresh one; printed (on stderr,
/// which the test harness shows for a failing test) with the command that reproduces the
/// test. A macro so that the command names the calling package and test target.
#[macro_export]
macro_rules! seed {
    () => {
        $crate::seed_for(env!("CARGO_PKG_NAME"), env!("CARGO_CRATE_NAME"))
    };
}

/// [`seed!`] for the test target `target` (a crate name: the library's, or an integration
/// test's) of package `package`.
///
/// # Panics
/// If `BFS_SEED` (or an old variable) is set but is not a number: a typo must not quietly
/// turn a replay into a fresh run.
pub fn seed_for(package: &str, target: &str) -> u64 {
    let seed = match from_env() {
        Some(s) => s,
        None => fresh(),
    };
    eprintln!(
        "seed {seed}; rerun: {}",
        rerun_command(seed, package, target)
    );
    seed
}

/// The seed the environment sets, if any.
fn from_env() -> Option<u64> {
    let (var, value) = std::iter::once(SEED_VAR)
        .chain(OLD_SEED_VARS)
        .find_map(|v| std::env::var(v).ok().map(|x| (v, x)))?;
    if var != SEED_VAR {
        eprintln!("note: {var} is deprecated; set {SEED_VAR} instead");
    }
    match value.trim().parse() {
        Ok(s) => Some(s),
        Err(_) => panic!("{var}={value:?} is not a seed (an unsigned 64-bit number)"),
    }
}

/// A seed no earlier run is likely to have had: the clock and the process id, mixed.
fn fresh() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Rng::new(nanos ^ (u64::from(std::process::id()) << 32)).next_u64()
}

/// `BFS_SEED=… cargo test -p PACKAGE --lib|--test TARGET [TEST -- --exact]`. The test's
/// name is the name of the thread the harness runs it on.
fn rerun_command(seed: u64, package: &str, target: &str) -> String {
    let mut cmd = format!("{SEED_VAR}={seed} cargo test -p {package}");
    if target == package.replace('-', "_") {
        cmd.push_str(" --lib");
    } else {
        cmd.push_str(&format!(" --test {target}"));
    }
    match std::thread::current().name() {
        Some(test) if test != "main" => cmd.push_str(&format!(" {test} -- --exact")),
        _ => {}
    }
    cmd
}

/// splitmix64 (Steele, Lea and Flood, 2014): one word of state, every seed is good, and
/// consecutive seeds give unrelated streams. Not cryptographic.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// The generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0). By remainder: the bias, below n / 2^64, does
    /// not matter to a test, and the streams of seeds recorded before stay the same.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// `true` in about `percent` out of 100 calls.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_splitmix64() {
        // The first outputs for seed 1234567 of the reference C code.
        let mut r = Rng::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    #[test]
    fn below_chance_and_bytes_stay_in_range() {
        let mut r = Rng::new(7);
        assert!((0..1000).all(|_| r.below(10) < 10));
        assert_eq!(r.below(0), 0);
        assert!((0..1000).all(|_| !r.chance(0) && r.chance(100)));
        let hits = (0..10_000).filter(|_| r.chance(25)).count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
        assert_eq!(r.bytes(5).len(), 5);
    }

    #[test]
    fn the_rerun_command_names_the_target_and_the_test() {
        let cmd = rerun_command(42, "fs-core", "fs_core");
        assert!(
            cmd.starts_with("BFS_SEED=42 cargo test -p fs-core --lib"),
            "{cmd}"
        );
        assert!(cmd.ends_with("the_rerun_command_names_the_target_and_the_test -- --exact"));
        let cmd = rerun_command(7, "cow", "crash");
        assert!(cmd.contains("cargo test -p cow --test crash "), "{cmd}");
    }
}
