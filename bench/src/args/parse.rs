//! The value parsers of bfsperf's command line: sizes, SPDK core masks, `--tree`.

/// `--tree DIRSxFILES`: both at least 1.
pub(super) fn parse_tree(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("{s:?}: want DIRSxFILES, such as 100x200");
    let (d, f) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let d: u64 = d.trim().parse().map_err(|_| bad())?;
    let f: u64 = f.trim().parse().map_err(|_| bad())?;
    if d == 0 || f == 0 {
        return Err(bad());
    }
    Ok((d, f))
}

/// Parses a core mask as SPDK does: hex with or without `0x` (`0x5`, `5`), or a list of
/// CPUs and ranges in brackets (`[0,2-3]`). Returns the CPUs, ascending.
pub fn parse_core_mask(text: &str) -> Result<Vec<usize>, String> {
    let t = text.trim();
    let bad = |why: &str| format!("-m {text:?}: {why} (give a hex mask such as 0x3, or [0,2-3])");
    let mut cpus = Vec::new();
    if let Some(list) = t.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
        for part in list.split(',').map(str::trim) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let num = |s: &str| s.trim().parse::<usize>().map_err(|_| bad("not a CPU list"));
            let (a, b) = (num(a)?, num(b)?);
            if a > b || b >= 1 << 16 {
                return Err(bad("a range runs backwards or past CPU 65535"));
            }
            cpus.extend(a..=b);
        }
    } else {
        let hex = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("not a hex mask"));
        }
        for (i, c) in hex.chars().rev().enumerate() {
            let nibble = c.to_digit(16).expect("checked hex digit") as usize;
            cpus.extend((0..4).filter(|b| nibble >> b & 1 == 1).map(|b| 4 * i + b));
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    if cpus.is_empty() {
        return Err(bad("names no CPU"));
    }
    Ok(cpus)
}

/// A set of CPUs as the hex mask bdevperf prints.
pub fn mask_text(cpus: &[usize]) -> String {
    let top = cpus.iter().max().copied().unwrap_or(0);
    let mut nibbles = vec![0u8; top / 4 + 1];
    for &c in cpus {
        nibbles[c / 4] |= 1 << (c % 4);
    }
    let digits: String = nibbles.iter().rev().map(|n| format!("{n:x}")).collect();
    format!("0x{}", digits.trim_start_matches('0'))
}

/// Parses a byte count: `4096`, `4k`, `4K`, `4KiB`, `1M`, `1g` (binary multiples, as
/// SPDK's `spdk_parse_capacity`).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits);
    let bad =
        || format!("{text:?} is not a size (bytes, or with a k, m or g suffix: 4096, 4k, 1M)");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(bad()),
    };
    let bytes = n
        .checked_mul(1 << shift)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes == 0 {
        return Err(format!("{text:?}: the I/O size must be positive"));
    }
    Ok(bytes)
}
