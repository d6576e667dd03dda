//! bfsperf end to end: the binary on small RAM bdevs. Every run is short (≤ 0.5 s).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A config with one small malloc bdev per `(name, num_blocks, block_size)`.
fn config(dir: &Path, bdevs: &[(&str, u64, u32)]) -> PathBuf {
    let entries: Vec<Value> = bdevs
        .iter()
        .map(|(name, blocks, bs)| {
            serde_json::json!({"method": "bdev_malloc_create",
                               "params": {"name": name, "num_blocks": blocks, "block_size": bs}})
        })
        .collect();
    let doc = serde_json::json!({"subsystems": [{"subsystem": "bdev", "config": entries}]});
    let path = dir.join("bdevs.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

fn bfsperf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bfsperf"))
        .args(args)
        .output()
        .expect("bfsperf runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a workload on a 16 MiB bdev; returns stdout and the JSON results.
fn run_ok(extra: &[&str]) -> (String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("Malloc0", 4096, 4096)]);
    let json = dir.path().join("out.json");
    let mut args = vec![
        "-c",
        cfg.to_str().unwrap(),
        "-q",
        "16",
        "-o",
        "4k",
        "-t",
        "0.3",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--output-json", json.to_str().unwrap()]);
    let out = bfsperf(&args);
    assert!(
        out.status.success(),
        "bfsperf {args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (text(&out.stdout), doc)
}

#[test]
fn randread_reports_iops_and_json() {
    let (stdout, doc) = run_ok(&["-w", "randread", "--prefill"]);
    assert!(
        stdout.contains("Running I/O for 0.3 seconds..."),
        "{stdout}"
    );
    assert!(stdout
        .contains("Job: Malloc0 (Core Mask 0x1, workload: randread, depth: 16, IO size: 4096)"));
    assert!(
        stdout.contains(" Total                       :"),
        "{stdout}"
    );
    let job = &doc["results"][0];
    for key in [
        "name",
        "workload",
        "queue_depth",
        "io_size",
        "runtime_s",
        "iops",
        "mibps",
        "io_failed",
        "io_timeout",
        "avg_latency_us",
        "min_latency_us",
        "max_latency_us",
    ] {
        assert!(!job[key].is_null(), "results[0].{key} missing in {doc}");
    }
    assert_eq!(
        (job["name"].as_str(), job["workload"].as_str()),
        (Some("Malloc0"), Some("randread"))
    );
    assert_eq!(
        (job["queue_depth"].as_u64(), job["io_size"].as_u64()),
        (Some(16), Some(4096))
    );
    assert!(job["iops"].as_f64().unwrap() > 0.0);
    assert_eq!(job["io_failed"].as_u64(), Some(0));
    assert!(job["runtime_s"].as_f64().unwrap() >= 0.3);
    assert_eq!(doc["total"]["iops"], job["iops"]);
}

#[test]
fn every_workload_runs_without_failures() {
    let workloads: [&[&str]; 9] = [
        &["-w", "read"],
        &["-w", "write"],
        &["-w", "randwrite"],
        &["-w", "rw", "-M", "70"],
        &["-w", "randrw", "-M", "30"],
        &["-w", "verify"],
        &["-w", "flush"],
        &["-w", "unmap"],
        &["-w", "write_zeroes"],
    ];
    for args in workloads {
        let (_, doc) = run_ok(args);
        let job = &doc["results"][0];
        assert!(job["iops"].as_f64().unwrap() > 0.0, "{args:?}: {doc}");
        assert_eq!(job["io_failed"].as_u64(), Some(0), "{args:?}: {doc}");
    }
}

#[test]
fn one_job_per_bdev_and_target_picks_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("A", 1024, 4096), ("B", 2048, 512)]);
    let cfg = cfg.to_str().unwrap();
    let out = bfsperf(&[
        "-c", cfg, "-q", "4", "-o", "4096", "-w", "randread", "-t", "0.2",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("Job: A (") && stdout.contains("Job: B ("),
        "{stdout}"
    );
    let out = bfsperf(&[
        "-c", cfg, "-q", "4", "-o", "4096", "-w", "randread", "-t", "0.2", "-T", "B",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Job: B (") && !stdout.contains("Job: A ("),
        "{stdout}"
    );
}

/// Runs with a bad command line; returns stderr after checking the run failed.
fn run_err(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("Malloc0", 256, 4096)]);
    let mut args = vec!["-c", cfg.to_str().unwrap(), "-q", "8", "-t", "0.2"];
    args.extend_from_slice(extra);
    let out = bfsperf(&args);
    assert!(!out.status.success(), "bfsperf {args:?} should fail");
    assert!(
        out.stdout.is_empty() || !text(&out.stdout).contains("Total"),
        "no results expected"
    );
    text(&out.stderr)
}

#[test]
fn bad_values_get_clear_errors() {
    let e = run_err(&["-o", "1000", "-w", "randread"]);
    assert!(
        e.contains("-o 1000") && e.contains("multiple of Malloc0's block size (4096 bytes)"),
        "{e}"
    );
    let e = run_err(&["-o", "2M", "-w", "randread"]);
    assert!(e.contains("larger than Malloc0"), "{e}");
    let e = run_err(&["-o", "4k", "-w", "randread", "-T", "Nope"]);
    assert!(e.contains("-T Nope") && e.contains("Malloc0"), "{e}");
    let e = run_err(&["-o", "4k", "-w", "sequential"]);
    assert!(
        e.contains("invalid value 'sequential'") && e.contains("randread"),
        "{e}"
    );
    let e = run_err(&["-o", "4k", "-w", "rw"]);
    assert!(
        e.contains("-M/--rwmixread PERCENT is required for the rw workload"),
        "{e}"
    );
    let e = run_err(&["-o", "4k", "-w", "randrw", "-M", "150"]);
    assert!(e.contains("-M 150"), "{e}");
    let e = run_err(&["-o", "4x", "-w", "read"]);
    assert!(e.contains("is not a size"), "{e}");
}

#[test]
fn missing_config_file_is_named() {
    let out = bfsperf(&[
        "-c",
        "/nonexistent/bdevs.json",
        "-q",
        "1",
        "-o",
        "4096",
        "-w",
        "read",
        "-t",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("/nonexistent/bdevs.json"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn memcpy_limit_reports_a_rate() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("m.json");
    let out = bfsperf(&[
        "--memcpy-limit",
        "-t",
        "0.2",
        "--output-json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("memcpy 4096"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(doc["memcpy_limit"]["iops"].as_f64().unwrap() > 0.0, "{doc}");
}

/// `--spdk` runs the config through SPDK; in a build without the `spdk` feature it is a
/// clear error saying how to get one.
#[test]
fn spdk_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("Malloc0", 4096, 4096)]);
    let args = [
        "-c",
        cfg.to_str().unwrap(),
        "-q",
        "8",
        "-o",
        "4k",
        "-w",
        "randread",
        "-t",
        "0.3",
        "--spdk",
        "--no-huge",
        "-s",
        "512",
    ];
    let out = bfsperf(&args);
    if cfg!(feature = "spdk") {
        assert!(
            out.status.success(),
            "bfsperf --spdk failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("Malloc0"));
    } else {
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains("built without SPDK support") && err.contains("--features spdk"),
            "{err}"
        );
    }
}

#[test]
fn fs_runs_a_file_workload_on_a_fresh_bypassfs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("Malloc0", 8192, 4096)]);
    let json = dir.path().join("out.json");
    for extra in [
        &["-w", "randwrite"][..],
        &["-w", "randread"][..],
        &["-w", "write", "--buffered", "--fdatasync-every", "4"][..],
    ] {
        let mut args = vec![
            "-c",
            cfg.to_str().unwrap(),
            "--fs",
            "--file-size",
            "2M",
            "-q",
            "8",
            "-o",
            "4k",
            "-t",
            "0.2",
            "--output-json",
            json.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = bfsperf(&args);
        assert!(
            out.status.success(),
            "bfsperf {args:?} failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("Formatting Malloc0"));
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let r = &doc["results"][0];
        assert!(r["iops"].as_f64().unwrap() > 0.0, "{args:?}: {r}");
        assert_eq!(r["io_failed"], 0, "{args:?}: {r}");
    }
}

#[test]
fn fs_end_fsync_is_reported_and_counted_in_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("Malloc0", 8192, 4096)]);
    let json = dir.path().join("out.json");
    let out = bfsperf(&[
        "-c",
        cfg.to_str().unwrap(),
        "--fs",
        "--file-size",
        "4M",
        "--buffered",
        "--end-fsync",
        "-q",
        "1",
        "-o",
        "1M",
        "-w",
        "write",
        "-t",
        "0.2",
        "--output-json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("End fsync: "))
        .unwrap_or_else(|| panic!("no end fsync line in:\n{stdout}"));
    let ms: f64 = line["End fsync: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let r = &doc["results"][0];
    assert_eq!(r["io_failed"], 0, "{r}");
    // The I/O runs at least -t seconds; the fsync comes on top.
    assert!(
        r["runtime_s"].as_f64().unwrap() >= 0.2 + ms / 1e3 - 1e-6,
        "{line}: {r}"
    );
}

#[test]
fn fs_argument_errors_say_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("A", 4096, 4096), ("B", 4096, 4096)]);
    let c = cfg.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "-c",
                c,
                "-q",
                "1",
                "-o",
                "4k",
                "-w",
                "write",
                "-t",
                "1",
                "--buffered",
            ],
            "--fs",
        ),
        (
            &[
                "-c", c, "--fs", "-q", "1", "-o", "4k", "-w", "unmap", "-t", "1",
            ],
            "randwrite",
        ),
        (
            &[
                "-c", c, "--fs", "-q", "1", "-o", "4k", "-w", "write", "-t", "1",
            ],
            "-T",
        ),
        (
            &[
                "-c", c, "--fs", "-T", "A", "-q", "1", "-o", "1000", "-w", "write", "-t", "1",
            ],
            "--buffered",
        ),
    ];
    for (args, want) in cases {
        let out = bfsperf(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// `-m` pins the job thread (bdev and --fs runs) and the report names the mask; a CPU the
/// thread may not use is an error naming it.
#[test]
fn cpumask_pins_the_job_thread_and_is_reported() {
    let cpu = *bdev::affinity::current_thread_cpus().last().unwrap();
    let mask = format!("[{cpu}]");
    let shown = bench::args::mask_text(&[cpu]);
    let (stdout, doc) = run_ok(&["-w", "randwrite", "-m", &mask]);
    assert!(
        stdout.contains(&format!("(Core Mask {shown}, workload: randwrite")),
        "{stdout}"
    );
    assert_eq!(doc["results"][0]["core_mask"], shown.as_str());
    let (stdout, doc) = run_ok(&["--fs", "--file-size", "1M", "-w", "randwrite", "-m", &mask]);
    assert!(stdout.contains(&format!("Core Mask {shown}")), "{stdout}");
    assert_eq!(doc["results"][0]["core_mask"], shown.as_str());
    // The filesystem's threads run on the mask unless told otherwise, and the run says so
    // and what CPU it took.
    assert!(
        stdout.contains(&format!(
            "Filesystem threads (folder, timed commit): on the CPUs of -m ({shown})"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("us per I/O"), "{stdout}");
    assert!(doc["cpu"]["ns_per_io"].as_f64().unwrap() > 0.0, "{doc}");
    let fs_anywhere = [
        "--fs",
        "--file-size",
        "1M",
        "-w",
        "randwrite",
        "--fs-threads",
    ];
    let (stdout, _) = run_ok(&[&fs_anywhere[..], &["anywhere", "-m", &mask]].concat());
    assert!(
        stdout.contains("anywhere (--fs-threads anywhere)"),
        "{stdout}"
    );
    let e = run_err(&[&fs_anywhere[..], &["anywhere"]].concat());
    assert!(e.contains("--fs-threads") && e.contains("--cpumask"), "{e}");
    let e = run_err(&["-o", "4k", "-w", "read", "-m", "[1000]"]);
    assert!(e.contains("pinning the thread to CPUs [1000]"), "{e}");
}

/// The CPUs this test may use, at most two, as a `-m` list.
fn two_cpus() -> (Vec<usize>, String) {
    let cpus: Vec<usize> = bdev::affinity::current_thread_cpus()
        .into_iter()
        .take(2)
        .collect();
    let list: Vec<String> = cpus.iter().map(ToString::to_string).collect();
    let mask = format!("[{}]", list.join(","));
    (cpus, mask)
}

/// Runs with `-m` over `cpus`; checks one job per core, each row named after the bdev with
/// its core's mask, no failed I/O, and a Total that sums the rows.
fn one_job_per_core(cpus: &[usize], args: &[&str]) {
    let (stdout, doc) = run_ok(args);
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), cpus.len(), "{args:?}: {stdout}");
    for (r, &cpu) in results.iter().zip(cpus) {
        let shown = bench::args::mask_text(&[cpu]);
        assert_eq!(r["core_mask"], shown.as_str(), "{args:?}: {r}");
        assert!(
            stdout.contains(&format!("Job: Malloc0 (Core Mask {shown}, workload: ")),
            "{args:?}: {stdout}"
        );
        assert!(r["iops"].as_f64().unwrap() > 0.0, "{args:?}: {r}");
        assert_eq!(r["io_failed"], 0, "{args:?}: {r}");
    }
    let sum: f64 = results.iter().map(|r| r["iops"].as_f64().unwrap()).sum();
    let total = doc["total"]["iops"].as_f64().unwrap();
    assert!((total - sum).abs() <= 1e-9 * sum, "{total} != {sum}");
    assert_eq!(doc["core_count"], cpus.len(), "{doc}");
    assert_eq!(stdout.matches(" Total  ").count(), 1, "{stdout}");
}

/// `-m` runs a job per core of the mask, each on its own pinned thread (`bench::cores`), on a
/// bdev and with --fs (a file per job).
#[test]
fn cpumask_runs_one_job_per_core() {
    let (cpus, mask) = two_cpus();
    one_job_per_core(&cpus, &["-w", "randrw", "-M", "50", "-m", &mask]);
    one_job_per_core(&cpus, &["-w", "verify", "-m", &mask]);
    one_job_per_core(&cpus, &["--fs", "-w", "randwrite", "-m", &mask]);
}

/// The same through SPDK itself.
#[cfg(feature = "spdk")]
#[test]
fn cpumask_runs_one_job_per_core_on_spdk() {
    let (cpus, mask) = two_cpus();
    let spdk = ["--spdk", "--no-huge", "-s", "512", "-m", &mask];
    one_job_per_core(&cpus, &[&["-w", "randread"][..], &spdk].concat());
    one_job_per_core(
        &cpus,
        &[&["--fs", "-w", "randrw", "-M", "50"][..], &spdk].concat(),
    );
}
