//! Standard output that ends the command quietly when the reader goes away (`| head`), as
//! coreutils do: Rust ignores SIGPIPE, so a write to a closed pipe fails with EPIPE, and
//! `println!` would panic on it. Every subcommand prints through [`out!`] or [`Stdout`].

use std::io::{self, Write};

/// `println!` to stdout through [`line`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}
pub(crate) use out;

/// Writes one line to stdout; see the module comment for EPIPE.
pub fn line(args: std::fmt::Arguments<'_>) {
    let r = writeln!(io::stdout().lock(), "{args}");
    if let Err(e) = r {
        failed(&e);
    }
}

/// Stdout as a `Write` (for copies): EPIPE ends the process as [`line`] does.
pub struct Stdout(io::StdoutLock<'static>);

impl Stdout {
    pub fn lock() -> Stdout {
        Stdout(io::stdout().lock())
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).inspect_err(failed)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().inspect_err(failed)
    }
}

/// A closed pipe ends the process as SIGPIPE would have (the shell sees 128 + 13, what
/// `set -o pipefail` expects of a producer cut short); other write errors return.
fn failed(e: &io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        let _ = signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGPIPE);
        std::process::exit(128 + signal_hook::consts::SIGPIPE);
    }
}
