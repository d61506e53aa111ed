//! `LogFile` over its life: timestamps, rotation with compression, age, a restart.

use super::*;
use std::io::Read;

fn cfg(dir: &Path) -> LogFileConfig {
    LogFileConfig {
        path: dir.join("app.log"),
        max_size: 1 << 20,
        keep: 3,
        ..Default::default()
    }
}

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_000_000_000 + ms)
}

#[test]
fn each_line_gets_the_time_of_its_first_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = LogFile::new(LogFileConfig {
        timestamps: true,
        ..cfg(dir.path())
    });
    l.write_at(b"one\ntw", at(1));
    l.write_at(b"o\nthree\n\nfour", at(2500));
    l.write_at(b"\n", at(9999));
    let text = fs::read_to_string(dir.path().join("app.log")).unwrap();
    assert_eq!(
        text,
        "2026-11-30T00:53:20.001Z one\n\
         2026-11-30T00:53:20.001Z two\n\
         2026-11-30T00:53:22.500Z three\n\
         2026-11-30T00:53:22.500Z \n\
         2026-11-30T00:53:22.500Z four\n"
    );
}

#[test]
fn stamped_lines_rotate_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = LogFile::new(LogFileConfig {
        timestamps: true,
        max_size: 100,
        ..cfg(dir.path())
    });
    for i in 0..20 {
        l.write_at(format!("line {i}\n").as_bytes(), at(i));
    }
    for p in [
        dir.path().join("app.log"),
        numbered(&dir.path().join("app.log"), 1),
    ] {
        let text = fs::read_to_string(p).unwrap();
        assert!(text.len() <= 100);
        for line in text.lines() {
            assert_eq!(
                line.len(),
                STAMP_LEN + "line N".len() + (line.len() > 31) as usize
            );
            assert!(line.starts_with("2026-11-30T00:53:20.0"), "{line}");
        }
    }
}

/// Every line written is in the live file or a rotated one, compressed or not, once.
#[test]
fn no_line_lost_across_compressed_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut l = LogFile::new(LogFileConfig {
        max_size: 4096,
        keep: 1000,
        compress: true,
        ..cfg(dir.path())
    });
    let mut turns = 0;
    for i in 0..20_000 {
        l.write(format!("line {i:05}\n").as_bytes());
        // The loop gives compression one step a turn.
        if i % 7 == 0 {
            turns += 1;
            assert_eq!(l.work(), None);
        }
    }
    while l.busy() {
        assert_eq!(l.work(), None);
    }
    assert!(turns > 0);
    let mut all = String::new();
    let files = rotated(&path).unwrap();
    assert!(files.len() > 20 && files.iter().all(|r| r.gz), "{files:?}");
    for r in files.iter().rev() {
        flate2::read::GzDecoder::new(File::open(&r.path).unwrap())
            .read_to_string(&mut all)
            .unwrap();
    }
    all.push_str(&fs::read_to_string(&path).unwrap());
    let want: String = (0..20_000).map(|i| format!("line {i:05}\n")).collect();
    assert!(all == want, "lines lost or repeated");
}

/// A sustained flood: each loop turn brings several reads (256 KiB), and the turn's
/// compression must keep pace with them, so no rotated file falls off `--log-keep`
/// uncompressed (its partial work lost) and none is left behind plain.
#[test]
fn compression_keeps_up_with_a_flood() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut l = LogFile::new(LogFileConfig {
        max_size: 128 * 1024,
        keep: 3,
        compress: true,
        ..cfg(dir.path())
    });
    let line = |i: usize| format!("line {i:07} {}\n", "x".repeat(i % 50));
    let mut i = 0;
    let mut all = String::new();
    for _turn in 0..200 {
        let mut chunk = String::new();
        while chunk.len() < 256 * 1024 {
            chunk.push_str(&line(i));
            i += 1;
        }
        all.push_str(&chunk);
        // One turn: the reads, written as they came (64 KiB each), then the turn's work.
        for piece in chunk.as_bytes().chunks(64 * 1024) {
            assert_eq!(l.write(piece), None);
        }
        assert_eq!(l.work(), None);
        let plain: Vec<_> = rotated(&path)
            .unwrap()
            .into_iter()
            .filter(|r| !r.gz)
            .collect();
        assert!(plain.len() <= 1, "compression fell behind: {plain:?}");
    }
    // At exit the queue gets its grace (`Output::finish`); then the kept files, oldest
    // first, hold exactly the end of what was written.
    while l.busy() {
        assert_eq!(l.work(), None);
    }
    let mut kept = String::new();
    for r in rotated(&path).unwrap().iter().rev() {
        assert!(r.gz, "{r:?} left plain");
        flate2::read::GzDecoder::new(File::open(&r.path).unwrap())
            .read_to_string(&mut kept)
            .unwrap();
    }
    kept.push_str(&fs::read_to_string(&path).unwrap());
    assert!(kept.len() > 3 * 100 * 1024 && all.ends_with(&kept));
}

#[test]
fn old_rotated_files_go_at_start_and_at_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let old = SystemTime::now() - Duration::from_secs(3600);
    for n in 1..=2 {
        fs::write(numbered(&path, n), b"old\n").unwrap();
        File::options()
            .write(true)
            .open(numbered(&path, n))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    fs::write(gz(&numbered(&path, 3)), b"").unwrap();
    let mut l = LogFile::new(LogFileConfig {
        max_age: Some(Duration::from_secs(60)),
        max_size: 10,
        ..cfg(dir.path())
    });
    let names = |dir: &Path| {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(dir.path()), ["app.log", "app.log.3.gz"], "at start");
    l.write(b"0123456\n");
    l.write(b"789\n");
    // The rotated file is new: kept. Rotation moved .3.gz past --log-keep 3.
    assert_eq!(names(dir.path()), ["app.log", "app.log.1"]);
    let t = SystemTime::now() + Duration::from_secs(120);
    l.write_at(b"0123456\n", t);
    // Two minutes on, every rotated file was last written more than 60 s ago.
    assert_eq!(names(dir.path()), ["app.log"]);
    assert_eq!(fs::read(&path).unwrap(), b"0123456\n");
}

#[test]
fn a_start_compresses_what_a_previous_run_left_plain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    fs::write(numbered(&path, 1), b"left\n").unwrap();
    fs::write(numbered(&path, 2), b"done\n").unwrap();
    fs::write(gz(&numbered(&path, 2)), b"complete gz").unwrap();
    let mut l = LogFile::new(LogFileConfig {
        compress: true,
        ..cfg(dir.path())
    });
    assert!(!numbered(&path, 2).exists());
    while l.busy() {
        assert_eq!(l.work(), None);
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(File::open(gz(&numbered(&path, 1))).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "left\n");
    let found: Vec<_> = rotated(&path)
        .unwrap()
        .into_iter()
        .map(|r| (r.n, r.gz))
        .collect();
    assert_eq!(found, [(1, true), (2, true)]);
}
