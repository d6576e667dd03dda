//! SPDK JSON configs → devices: every understood method, and clear errors for the rest.

use bdev::config::open_from_json;
use bdev::{wait, BlockDevice, IoError, Lba};

fn config(entries: &str) -> String {
    format!(
        r#"{{"subsystems":[{{"subsystem":"accel","config":[]}},{{"subsystem":"bdev","config":[{entries}]}}]}}"#
    )
}

fn err(entries: &str) -> String {
    match open_from_json(&config(entries)) {
        Ok(devs) => panic!(
            "accepted: {:?}",
            devs.iter().map(|d| &d.0).collect::<Vec<_>>()
        ),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malloc_create() {
    let devs = open_from_json(&config(
        r#"{"method":"bdev_malloc_create","params":{"name":"Malloc0","num_blocks":256,"block_size":512}},
           {"method":"bdev_malloc_create","params":{"name":"Malloc1","num_blocks":64,"block_size":4096,"uuid":"x"}}"#,
    ))
    .unwrap();
    let names: Vec<&str> = devs.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(names, ["Malloc0", "Malloc1"]);
    let geo = devs[0].1.geometry();
    assert_eq!((geo.block_size, geo.block_count), (512, 256));
    assert_eq!(devs[1].1.name(), "Malloc1");
}

#[test]
fn uring_and_aio_create_open_files() {
    let dir = tempfile::tempdir().unwrap();
    // Two files: two read-write bdevs on one file are two writers, refused (uring/lock.rs).
    let (path, other) = (dir.path().join("img"), dir.path().join("img2"));
    std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
    std::fs::write(&other, vec![0u8; 1 << 20]).unwrap();
    let (p, q) = (path.display(), other.display());
    let devs = open_from_json(&config(&format!(
        r#"{{"method":"bdev_uring_create","params":{{"name":"Uring0","filename":"{p}","block_size":4096}}}},
           {{"method":"bdev_aio_create","params":{{"name":"Aio0","filename":"{q}"}}}}"#
    )))
    .unwrap();
    assert_eq!(devs.len(), 2);
    for (name, dev) in &devs {
        assert_eq!(dev.geometry().block_count, 256, "{name}");
    }
    drop(devs);
    let err = open_from_json(&config(&format!(
        r#"{{"method":"bdev_uring_create","params":{{"name":"Uring0","filename":"{p}"}}}},
           {{"method":"bdev_aio_create","params":{{"name":"Aio0","filename":"{p}"}}}}"#
    )))
    .err()
    .expect("one file, two writers");
    assert!(err.to_string().contains("is in use"), "{err}");
}

#[test]
fn error_bdev_claims_its_base_and_injects() {
    let devs = open_from_json(&config(
        r#"{"method":"bdev_malloc_create","params":{"name":"Malloc0","num_blocks":64,"block_size":4096}},
           {"method":"bdev_error_create","params":{"base_name":"Malloc0"}},
           {"method":"bdev_error_inject_error","params":{"name":"EE_Malloc0","io_type":"read","error_type":"failure","num":2}}"#,
    ))
    .unwrap();
    assert_eq!(devs.len(), 1, "the base is claimed by the error bdev");
    let (name, dev) = &devs[0];
    assert_eq!(name, "EE_Malloc0");
    let mut q = dev.queue(4).unwrap();
    let mut results = Vec::new();
    for _ in 0..3 {
        let r = wait::read(&mut *q, Lba(0), dev.alloc_buf(4096).unwrap());
        results.push(r.map(|_| ()).map_err(|(_, e)| e));
    }
    assert!(
        matches!(results[0], Err(IoError::Media { .. })),
        "{results:?}"
    );
    assert!(
        matches!(results[1], Err(IoError::Media { .. })),
        "{results:?}"
    );
    assert!(results[2].is_ok(), "only `num` reads fail: {results:?}");
    wait::write(&mut *q, Lba(0), dev.alloc_buf(4096).unwrap(), false).unwrap();
}

#[test]
fn delay_bdev_wraps_its_base() {
    let devs = open_from_json(&config(
        r#"{"method":"bdev_malloc_create","params":{"name":"Malloc0","num_blocks":64,"block_size":4096}},
           {"method":"bdev_delay_create","params":{"base_bdev_name":"Malloc0","name":"Delay0",
             "avg_read_latency":2000,"p99_read_latency":2000,"avg_write_latency":10,"p99_write_latency":20}}"#,
    ))
    .unwrap();
    assert_eq!(devs.len(), 1);
    let dev = &devs[0].1;
    let mut q = dev.queue(1).unwrap();
    let start = std::time::Instant::now();
    wait::read(&mut *q, Lba(1), dev.alloc_buf(4096).unwrap()).unwrap();
    assert!(
        start.elapsed() >= std::time::Duration::from_micros(2000),
        "read latency not applied"
    );
}

#[test]
fn clear_errors() {
    let cases = [
        (
            r#"{"method":"bdev_nope_create","params":{}}"#,
            "bdev_nope_create",
        ),
        (
            r#"{"method":"bdev_malloc_create","params":{"name":"M","num_blocks":8,"block_size":4096,"colour":1}}"#,
            "colour",
        ),
        (
            r#"{"method":"bdev_malloc_create","params":{"name":"M","block_size":4096}}"#,
            "num_blocks",
        ),
        (
            r#"{"method":"bdev_malloc_create","params":{"name":"M","num_blocks":"8","block_size":4096}}"#,
            "num_blocks",
        ),
        (
            r#"{"method":"bdev_malloc_create","params":{"name":"M","num_blocks":8,"block_size":1000}}"#,
            "block size",
        ),
        (
            r#"{"method":"bdev_malloc_create","params":{"name":"M","num_blocks":8,"block_size":4096,"md_size":8}}"#,
            "md_size",
        ),
        (
            r#"{"method":"bdev_malloc_create","params":{"name":"M","num_blocks":8,"block_size":4096}},
               {"method":"bdev_malloc_create","params":{"name":"M","num_blocks":8,"block_size":4096}}"#,
            "defined twice",
        ),
        (
            r#"{"method":"bdev_error_create","params":{"base_name":"Missing"}}"#,
            "Missing",
        ),
        (
            r#"{"method":"bdev_uring_create","params":{"name":"U","filename":"/nonexistent/dir/img"}}"#,
            "/nonexistent",
        ),
        (
            r#"{"method":"bdev_malloc_create","params":{"name":"M","num_blocks":8,"block_size":4096}},
               {"method":"bdev_error_create","params":{"base_name":"M"}},
               {"method":"bdev_error_inject_error","params":{"name":"EE_M","io_type":"sideways","error_type":"failure"}}"#,
            "sideways",
        ),
        ("", "no bdev"),
    ];
    for (entries, needle) in cases {
        let msg = err(entries);
        assert!(
            msg.contains(needle),
            "error for {entries} should name {needle:?}: {msg}"
        );
    }
    assert!(open_from_json("{")
        .err()
        .unwrap()
        .to_string()
        .contains("JSON"));
    assert!(open_from_json("{}")
        .err()
        .unwrap()
        .to_string()
        .contains("subsystems"));
}
