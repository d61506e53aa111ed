//! Soak (issue 6): a child that exits at once, restarted with zero delay N times. restartd's
//! open fds and RSS stay flat, no zombie is left, every crash has exactly one record and
//! `state.json` counts every restart. 1,000 restarts in CI; 10,000 by hand:
//! `cargo test --release -- --ignored soak`.

use std::fs;
use std::time::{Duration, Instant};

use crate::common::{proc_field, zombies_of, Env};

/// What restartd holds at one moment: open fds and resident memory.
#[derive(Debug, Clone, Copy)]
struct Sample {
    restarts: u64,
    fds: usize,
    rss_kib: u64,
}

fn sample(pid: i32, restarts: u64) -> Sample {
    // Taken while restartd waits in poll(2): right after state.json shows the new child,
    // restartd may still hold the directory it fsyncs after the rename.
    let count = || fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let asleep = || crate::common::proc_state(pid).starts_with('S');
    let mut fds = count();
    crate::common::wait_until("restartd to wait in poll", || {
        let before = count();
        let settled = asleep() && before == count() && asleep();
        fds = before;
        settled
    });
    let rss = proc_field(pid, "VmRSS").unwrap();
    let rss_kib = rss.trim_end_matches(" kB").trim().parse().unwrap();
    Sample {
        restarts,
        fds,
        rss_kib,
    }
}

/// Waits (up to `limit`) until the child with restart number `n` runs; returns its pid.
fn wait_for_restart(env: &Env, n: u64, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        let s = env.state("soak");
        if s["restarts"] == n && s["status"] == "running" && s["child_pid"].is_i64() {
            let pid = s["child_pid"].as_i64().unwrap() as i32;
            env.also_kill(pid);
            return pid;
        }
        assert!(
            start.elapsed() < limit,
            "restart {n} not reached in {limit:?}; state.json: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every crash record, oldest first, including a rotated `crashes.jsonl.1`.
fn records(env: &Env) -> Vec<serde_json::Value> {
    let dir = env.instance("soak");
    let mut text = fs::read_to_string(dir.join("crashes.jsonl.1")).unwrap_or_default();
    text.push_str(&fs::read_to_string(dir.join("crashes.jsonl")).unwrap_or_default());
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn soak(total: u64) {
    const EARLY: u64 = 100;
    let env = Env::new();
    // Exits 1 at once, except restart EARLY (held for the first sample, then killed) and the
    // last one (held for the final checks).
    let script =
        format!("case $RESTARTD_RESTARTS in {EARLY}|{total}) exec sleep 300;; esac; exit 1");
    let mut r = env.start(&[
        "-n",
        "soak",
        "--restart",
        "always",
        "--max-restarts",
        "unlimited",
        "--delay",
        "0",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let began = Instant::now();
    let held = wait_for_restart(&env, EARLY, Duration::from_secs(120));
    let early = sample(r.pid, EARLY);
    crate::common::signal(held, nix::libc::SIGKILL);
    let child = wait_for_restart(&env, total, Duration::from_secs(1800));
    let took = began.elapsed();
    let last = sample(r.pid, total);
    let zombies = zombies_of(r.pid);
    let records = records(&env);
    let state = env.state("soak");
    println!(
        "soak: {total} restarts in {:.1} s ({:.0}/s); after {}: {} fds, {} KiB RSS; after {}: {} fds, {} KiB RSS; zombies {}; records {}",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        early.restarts,
        early.fds,
        early.rss_kib,
        last.restarts,
        last.fds,
        last.rss_kib,
        zombies.len(),
        records.len(),
    );
    assert_eq!(last.fds, early.fds, "open fds grew: {early:?} → {last:?}");
    assert!(
        last.rss_kib * 10 <= early.rss_kib * 11,
        "RSS grew more than 10 %: {early:?} → {last:?}"
    );
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    assert_eq!(state["restarts"], total, "{state:#}");
    assert_eq!(state["child_pid"], child);
    // One record per crash: runs 0..total all ended (the one killed at EARLY too), in order.
    assert_eq!(records.len() as u64, total, "one record per crash");
    let ids: std::collections::HashSet<&str> =
        records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), records.len(), "crash ids are unique");
    for (i, rec) in records.iter().enumerate() {
        let killed = i as u64 == EARLY;
        assert_eq!(rec["signal"].is_null(), !killed, "record {i}: {rec}");
        assert_eq!(rec["restarts"], i as u64, "record {i}: {rec}");
    }
    assert!(r.try_exit().is_none(), "restartd still runs");
    r.signal(nix::libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn soak_1000_restarts_leak_nothing() {
    soak(1000);
}

#[test]
#[ignore = "10,000 restarts: run by hand with `cargo test --release -- --ignored soak`"]
fn soak_10000_restarts_leak_nothing() {
    soak(10_000);
}
