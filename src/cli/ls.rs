//! `bypassfs ls`: list a directory (or show one file), `-l` with attributes.

use fs_core::{FileType, Filesystem, Stat};

use crate::cli::device::DeviceArgs;
use crate::cli::error::{exit, Context, Result};
use crate::cli::output::out;
use crate::cli::stat::{mode_string, utc};

/// `ls DEVICE [PATH] [-l]`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub device: DeviceArgs,

    /// Absolute path inside the filesystem.
    #[arg(value_name = "PATH", default_value = "/")]
    pub path: String,

    /// Long listing: mode, links, owner, size, modification time.
    #[arg(short = 'l')]
    pub long: bool,
}

pub fn run(a: &Args) -> Result<u8> {
    let (fs, _ctx) = a.device.mount(true)?;
    let st = fs.stat(&a.path).context(|| format!("ls {}", a.path))?;
    if st.file_type != FileType::Dir {
        print_entry(&a.path, &st, a.long);
        return Ok(exit::OK);
    }
    for (name, ino) in entries(&fs, &a.path)? {
        let st = fs
            .stat_ino(ino)
            .context(|| format!("stat {}/{name}", a.path))?;
        print_entry(&name, &st, a.long);
    }
    Ok(exit::OK)
}

/// Every entry of the directory `path`, in the filesystem's order.
fn entries(fs: &Filesystem, path: &str) -> Result<Vec<(String, u64)>> {
    const PAGE: usize = 256;
    let mut out = Vec::new();
    let mut cookie = 0;
    loop {
        let page = fs
            .readdir(path, cookie, PAGE)
            .context(|| format!("reading directory {path}"))?;
        let n = page.len();
        for e in page {
            cookie = e.next_cookie;
            out.push((e.name_lossy().into_owned(), e.ino));
        }
        if n < PAGE {
            return Ok(out);
        }
    }
}

fn print_entry(name: &str, st: &Stat, long: bool) {
    let suffix = if st.file_type == FileType::Dir {
        "/"
    } else {
        ""
    };
    if long {
        out!(
            "{} {:>3} {:>5} {:>5} {:>12} {} {name}{suffix}",
            mode_string(st.mode),
            st.nlink,
            st.uid,
            st.gid,
            st.size,
            utc(st.mtime_ns)
        );
    } else {
        out!("{name}{suffix}");
    }
}
