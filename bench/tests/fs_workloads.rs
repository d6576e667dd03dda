//! `bfsperf --fs` runs every file workload at the default file size without a failed I/O: on
//! the native RAM backend, and (feature `spdk`) on an SPDK malloc bdev through `--spdk`. A
//! default file that leaves copy-on-write no room fails its overwrites (or its prefill) with
//! "no space left". Every run is short (0.3 s) on a 16 MiB bdev.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The file workloads (`bench::args`, `fs_options`), mixes at 50 %.
const WORKLOADS: [&[&str]; 6] = [
    &["-w", "read"],
    &["-w", "write"],
    &["-w", "randread"],
    &["-w", "randwrite"],
    &["-w", "rw", "-M", "50"],
    &["-w", "randrw", "-M", "50"],
];

/// Runs each workload with `extra` on a fresh 16 MiB malloc bdev, with no `--file-size`;
/// checks that it did I/O and failed none.
fn every_workload_at_the_default_size(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bdevs.json");
    let doc = serde_json::json!({"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_malloc_create",
         "params": {"name": "Malloc0", "num_blocks": 4096, "block_size": 4096}}]}]});
    std::fs::write(&cfg, doc.to_string()).unwrap();
    let json = dir.path().join("out.json");
    for workload in WORKLOADS {
        let mut args = vec![
            "-c",
            cfg.to_str().unwrap(),
            "--fs",
            "-q",
            "32",
            "-o",
            "4k",
            "-t",
            "0.3",
            "--output-json",
            json.to_str().unwrap(),
        ];
        args.extend_from_slice(workload);
        args.extend_from_slice(extra);
        let r = run(&args, &json);
        assert!(r["iops"].as_f64().unwrap() > 0.0, "{args:?}: {r}");
        assert_eq!(r["io_failed"], 0, "{args:?}: {r}");
    }
}

/// Runs bfsperf, checks it succeeded, returns its one job's JSON result.
fn run(args: &[&str], json: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_bfsperf"))
        .args(args)
        .output()
        .expect("bfsperf runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bfsperf {args:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Writing /bfsperf.dat ("), "{stdout}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    doc["results"][0].clone()
}

#[test]
fn every_file_workload_runs_at_the_default_size() {
    every_workload_at_the_default_size(&[]);
}

/// The same through SPDK itself, without hugepages so that it runs on any host.
#[cfg(feature = "spdk")]
#[test]
fn every_file_workload_runs_on_spdk() {
    every_workload_at_the_default_size(&["--spdk", "--no-huge", "-s", "512"]);
}
