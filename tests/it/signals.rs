//! Processes and signals (SPEC §4): forwarding to the child's process group, the stop sequence,
//! suspension, the child's signal state, cleanup of what a child leaves behind, the subreaper,
//! reaping, parent death, and PID 1.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::libc;

use crate::common::{
    alive, helper, proc_field, proc_state, ready_fields, unshare_refused, wait_until, zombies_of,
    Env, Running, BIN,
};

/// restartd running `print_signals.py --grandchild CHILD_ARGS`: returns the handle, the child's
/// pid and the pid of the second member of its process group.
pub fn print_signals(
    env: &Env,
    name: &str,
    extra: &[&str],
    child_args: &[&str],
) -> (Running, i32, i32) {
    let helper = helper("print_signals.py");
    let mut args: Vec<&str> = vec!["-n", name];
    args.extend(extra);
    args.extend(["--", "python3", &helper, "--grandchild"]);
    args.extend(child_args);
    let mut r = env.start(&args);
    let forked = ready_fields(&r.wait_stdout("forked pid="));
    let member: i32 = forked["pid"].parse().unwrap();
    r.also_kill(member);
    let ready = ready_fields(&r.wait_stdout("ready pid="));
    let child: i32 = ready["pid"].parse().unwrap();
    r.also_kill(child);
    assert_eq!(forked["pgid"], ready["pid"], "one process group");
    (r, child, member)
}

/// The stop signals, each in every log mode (which must not change behaviour), reach every
/// member of the child's group.
#[test]
fn stop_signals_reach_the_child_group_and_end_restartd_with_0() {
    let env = Env::new();
    let modes: [&[&str]; 4] = [&["-q"], &[], &["-v"], &["--log-format", "json"]];
    for (sig, name) in [
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
    ] {
        for (i, mode) in modes.iter().enumerate() {
            let inst = format!("stop-{name}-{i}");
            let (mut r, child, member) = print_signals(&env, &inst, mode, &[]);
            r.signal(sig);
            r.wait_line_eq(name);
            r.wait_line_eq(&format!("forked {name}"));
            assert_eq!(r.wait_exit(), Some(0), "{name} {mode:?}: {}", r.stderr());
            assert!(!alive(child));
            assert!(wait_until("group gone", || !alive(member)));
            let state = env.state(&inst);
            assert_eq!(state["status"], "stopped", "{name} {mode:?}");
            assert!(state["child_pid"].is_null());
            assert_eq!(state["restarts"], 0);
            assert!(
                env.records(&inst).is_empty(),
                "a requested stop is no crash"
            );
        }
    }
}

#[test]
fn a_child_that_ignores_the_stop_signal_is_killed_after_the_timeout() {
    let env = Env::new();
    let (mut r, child, member) = print_signals(
        &env,
        "stubborn",
        &["--stop-timeout", "200ms"],
        &["--ignore-term"],
    );
    let asked = Instant::now();
    r.signal(libc::SIGTERM);
    r.wait_line_eq("SIGTERM");
    assert_eq!(r.wait_exit(), Some(137));
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(!alive(child));
    assert!(
        wait_until("the whole group killed", || !alive(member)),
        "SIGKILL goes to the group"
    );
    assert_eq!(env.state("stubborn")["status"], "stopped");
}

#[test]
fn a_second_stop_request_kills_at_once() {
    let env = Env::new();
    let (mut r, child, member) = print_signals(
        &env,
        "twice",
        &["--stop-timeout", "60s"],
        &["--ignore-term"],
    );
    r.signal(libc::SIGTERM);
    r.wait_line_eq("SIGTERM");
    let asked = Instant::now();
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(137));
    assert!(asked.elapsed() < Duration::from_secs(5));
    assert!(!alive(child));
    assert!(wait_until("group gone", || !alive(member)));
}

/// A signal that arrives while restartd waits is sent on by its handler (src/process/signals.rs), one
/// that arrives while it works by the loop: either way each reaches the group exactly once.
#[test]
fn every_signal_reaches_the_group_exactly_once() {
    let env = Env::new();
    let (mut r, child, member) = print_signals(
        &env,
        "once",
        &["--stop-timeout", "500ms"],
        &["--ignore-term"],
    );
    let count = |out: &str, line: &str| out.lines().filter(|l| *l == line).count();
    for round in 1..=3 {
        // One signal while restartd waits, then three at once while it may be working.
        r.signal(libc::SIGHUP);
        assert!(wait_until("SIGHUP", || count(&r.stdout(), "forked SIGHUP") >= round));
        for sig in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH] {
            r.signal(sig);
        }
        assert!(wait_until("each of the four", || {
            let out = r.stdout();
            let arrived = |name: &&str| {
                count(&out, name) >= round && count(&out, &format!("forked {name}")) >= round
            };
            ["SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH"]
                .iter()
                .all(arrived)
        }));
    }
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(137), "the child ignores SIGTERM");
    // The child's output is complete now: a signal sent twice would show here.
    let out = r.stdout();
    for name in ["SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH"] {
        assert_eq!(count(&out, name), 3, "{name}:\n{out}");
        assert_eq!(count(&out, &format!("forked {name}")), 3, "{name}:\n{out}");
    }
    assert_eq!(count(&out, "SIGTERM"), 1, "{out}");
    assert_eq!(count(&out, "forked SIGTERM"), 1, "{out}");
    assert!(!alive(child));
    assert!(wait_until("group gone", || !alive(member)));
}

#[test]
fn hup_usr1_usr2_winch_are_forwarded_to_the_group_and_change_nothing_else() {
    let env = Env::new();
    let (mut r, child, member) = print_signals(&env, "fwd", &[], &[]);
    for (sig, name) in [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGWINCH, "SIGWINCH"),
    ] {
        r.signal(sig);
        r.wait_line_eq(name);
        r.wait_line_eq(&format!("forked {name}"));
    }
    assert!(alive(child) && alive(member));
    let state = env.state("fwd");
    assert_eq!(state["child_pid"], child);
    assert_eq!(state["status"], "running");
    assert_eq!(state["restarts"], 0);
    assert!(alive(r.pid), "restartd keeps running");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn ctrl_z_suspends_the_child_with_restartd_and_sigcont_resumes_both() {
    let env = Env::new();
    let (mut r, child, _) = print_signals(&env, "tstp", &[], &[]);
    r.signal(libc::SIGTSTP);
    assert!(wait_until("both stopped", || proc_state(child)
        .starts_with('T')
        && proc_state(r.pid).starts_with('T')));
    assert_eq!(env.state("tstp")["restarts"], 0, "a suspension is no end");
    r.signal(libc::SIGCONT);
    assert!(wait_until("both running", || !proc_state(child)
        .starts_with('T')
        && !proc_state(r.pid).starts_with('T')));
    // Both work again: restartd forwards, the child answers.
    r.signal(libc::SIGUSR1);
    r.wait_line_eq("SIGUSR1");
    assert_eq!(env.state("tstp")["child_pid"], child);
    r.signal(libc::SIGTERM);
    r.wait_line_eq("SIGTERM");
    assert_eq!(r.wait_exit(), Some(0));
}

/// `SigBlk` and `SigIgn` of a /proc status text, as bit sets.
fn sig_sets(text: &str, prefix: &str) -> (u64, u64) {
    let field = |name: &str| {
        let hex = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{prefix}{name}:")))
            .unwrap_or_else(|| panic!("no {prefix}{name} in {text}"))
            .trim();
        u64::from_str_radix(hex, 16).unwrap()
    };
    (field("SigBlk"), field("SigIgn"))
}

/// TINI's `test/sigconf`: a wrapper sets a known mask and ignore set, prints them, and execs
/// restartd; the child (grep, which changes no signal state) prints its own.
#[test]
fn the_child_gets_exactly_the_signal_state_restartd_inherited() {
    let env = Env::new();
    // Python ignores SIGPIPE and SIGXFSZ: the wrapper sets each to what the round asks for.
    // restartd ignores SIGPIPE itself, yet the child gets the inherited disposition back.
    for pipe in ["SIG_DFL", "SIG_IGN"] {
        child_gets_the_inherited_signal_state(&env, pipe);
    }
}

fn child_gets_the_inherited_signal_state(env: &Env, pipe: &str) {
    let wrapper = format!(
        "import os, signal, sys\n\
        signal.pthread_sigmask(signal.SIG_SETMASK, [signal.SIGUSR1])\n\
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n\
        signal.signal(signal.SIGPIPE, signal.{pipe})\n\
        signal.signal(signal.SIGHUP, signal.SIG_IGN)\n\
        for l in open('/proc/self/status'):\n    \
            if l.startswith(('SigBlk', 'SigIgn')): print('wrapper ' + l.strip(), flush=True)\n\
        os.execv(sys.argv[1], sys.argv[1:])\n"
    );
    let mut cmd = Command::new("python3");
    cmd.args(["-c", &wrapper, BIN, "--state-dir"])
        .arg(env.state_dir())
        .args([
            "-n",
            "mask",
            "--restart",
            "no",
            "--",
            "grep",
            "^Sig",
            "/proc/self/status",
        ]);
    let out = env.run_cmd(cmd);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let (wrapper_blk, wrapper_ign) = sig_sets(&text, "wrapper ");
    let (child_blk, child_ign) = sig_sets(&text, "");
    let bit = |sig: i32| 1u64 << (sig - 1);
    assert_eq!(
        wrapper_blk,
        bit(libc::SIGUSR1),
        "the wrapper's mask: {text}"
    );
    assert_ne!(wrapper_ign & bit(libc::SIGHUP), 0, "{text}");
    assert_eq!(
        wrapper_ign & bit(libc::SIGPIPE) != 0,
        pipe == "SIG_IGN",
        "{text}"
    );
    assert_eq!(
        (child_blk, child_ign),
        (wrapper_blk, wrapper_ign),
        "the child's (SigBlk, SigIgn) equal what restartd inherited ({pipe}): {text}"
    );
}

/// Hooks and health checks are restartd's own helpers, started the way the child is
/// (src/process/child.rs `launch`): they get the inherited mask and ignored signals back too.
/// Started through std's `Command`, they had lost the inherited SIG_IGN of SIGHUP and SIGPIPE
/// (restartd handles the one and ignores the other itself; exec left them at their default).
#[test]
fn hooks_and_health_checks_get_the_signal_state_restartd_inherited() {
    let env = Env::new();
    let check = env.state_dir().join("check.sig");
    let hook = env.state_dir().join("hook.sig");
    let wrapper = "import os, signal, sys\n\
        signal.pthread_sigmask(signal.SIG_SETMASK, [signal.SIGUSR1])\n\
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n\
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)\n\
        signal.signal(signal.SIGHUP, signal.SIG_IGN)\n\
        for l in open('/proc/self/status'):\n    \
            if l.startswith(('SigBlk', 'SigIgn')): print('wrapper ' + l.strip(), flush=True)\n\
        os.execv(sys.argv[1], sys.argv[1:])\n";
    // `exec`: grep is the process restartd started, so it shows that process's signal state.
    let write_to =
        |path: &std::path::Path| format!("exec grep ^Sig /proc/self/status > {}", path.display());
    // The child ends once a check has run; its crash runs the hook, which restartd waits for.
    let child = format!(
        "while ! grep -qs SigIgn {}; do sleep 0.05; done; exit 3",
        check.display()
    );
    let mut cmd = Command::new("python3");
    cmd.args(["-c", wrapper, BIN, "--state-dir"])
        .arg(env.state_dir())
        .args([
            "-n",
            "helpers",
            "--restart",
            "no",
            "--health-cmd",
            &write_to(&check),
            "--health-interval",
            "50ms",
            "--on-crash",
            &write_to(&hook),
            "--",
            "sh",
            "-c",
            &child,
        ]);
    let out = env.run_cmd(cmd);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    let wrapper_sets = sig_sets(&text, "wrapper ");
    let bit = |sig: i32| 1u64 << (sig - 1);
    assert_eq!(wrapper_sets.0, bit(libc::SIGUSR1), "{text}");
    for (what, path) in [("health check", &check), ("hook", &hook)] {
        let status = fs::read_to_string(path).unwrap();
        assert_eq!(
            sig_sets(&status, ""),
            wrapper_sets,
            "the {what}'s (SigBlk, SigIgn) equal what restartd inherited: {status}\n{text}"
        );
    }
}

fn daemon_pid(env: &Env, r: &mut Running) -> i32 {
    let line = r.wait_stdout("daemon pid=");
    let pid: i32 = ready_fields(&line)["pid"].parse().unwrap();
    r.also_kill(pid);
    assert!(env.state_dir().join("daemon-port").exists());
    pid
}

/// A child that double-forks a daemon (new session) listening on a port, then crashes; the
/// restarted child must be able to bind the same port.
#[test]
fn a_daemonized_grandchild_holding_a_port_is_gone_before_the_restart() {
    let env = Env::new();
    let dir = env.state_dir().to_str().unwrap();
    let mut r = env.start(&[
        "-n",
        "port",
        "--delay",
        "0",
        "--stop-timeout",
        "2s",
        "--",
        "python3",
        &helper("daemonize.py"),
        dir,
    ]);
    let daemon = daemon_pid(&env, &mut r);
    r.wait_stdout("bound again");
    assert!(
        !alive(daemon),
        "the daemon was cleaned up before the restart"
    );
    let state = env.state("port");
    assert_eq!(state["restarts"], 1);
    assert_eq!(state["last_exit"]["code"], 1);
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

/// restartd is a child subreaper: a daemon that left its session is reparented to restartd,
/// not to init, and does not outlive a stop.
#[test]
fn a_daemon_is_reparented_to_restartd_and_does_not_outlive_it() {
    let env = Env::new();
    let dir = env.state_dir().to_str().unwrap();
    let mut r = env.start(&[
        "-n",
        "reaper",
        "--stop-timeout",
        "2s",
        "--",
        "python3",
        &helper("daemonize.py"),
        dir,
        "--stay",
    ]);
    let daemon = daemon_pid(&env, &mut r);
    let restartd = r.pid.to_string();
    assert!(
        wait_until("reparented", || proc_field(daemon, "PPid").as_deref()
            == Some(restartd.as_str())),
        "PPid of the daemon: {:?}",
        proc_field(daemon, "PPid")
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
    assert!(
        wait_until("daemon gone", || !alive(daemon)),
        "the daemon outlived restartd"
    );
}

#[test]
fn orphans_are_reaped_and_no_zombie_remains() {
    let env = Env::new();
    // The child leaves ten orphans that exit at once, then keeps running. Only restartd, the
    // subreaper, can reap them: each must vanish from /proc, not linger as a zombie.
    let pids = env.state_dir().join("orphans");
    let script = format!(
        "for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.05 & echo $! >> {p}); done; echo forked; exec sleep 300",
        p = pids.display()
    );
    let mut r = env.start(&["-n", "zombies", "--", "sh", "-c", &script]);
    r.wait_stdout("forked");
    let orphans: Vec<i32> = fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(orphans.len(), 10);
    for &pid in &orphans {
        r.also_kill(pid);
    }
    let gone = |pid: i32| !std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(
        wait_until("every orphan reaped", || orphans.iter().all(|&p| gone(p))),
        "left: {:?}; zombies of restartd: {:?}",
        orphans.iter().filter(|&&p| !gone(p)).collect::<Vec<_>>(),
        zombies_of(r.pid)
    );
    assert_eq!(zombies_of(r.pid), Vec::<i32>::new());
    assert_eq!(
        env.state("zombies")["restarts"],
        0,
        "orphans are not the child"
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0));
}

#[test]
fn killing_restartd_takes_the_child_down() {
    let env = Env::new();
    let (mut r, child, _) = print_signals(&env, "orphaned", &[], &[]);
    // The child is in its own group: only the parent-death signal can reach it.
    r.signal(libc::SIGKILL);
    assert_eq!(r.wait_exit(), None);
    r.wait_line_eq("SIGTERM");
    assert!(wait_until("child gone", || !alive(child)));
}

#[test]
fn as_pid_1_in_a_pid_namespace_it_reaps_orphans() {
    if let Some(why) = unshare_refused() {
        println!("skipped: unshare --pid is not permitted here: {why}");
        return;
    }
    let env = Env::new();
    // An orphan reparents to PID 1 (restartd); the child waits until it has vanished from
    // /proc, i.e. was reaped, then reports who PID 1 is.
    let script = format!(
        "sh -c 'sleep 0.05 & echo $! > {f}'; o=$(cat {f}); \
         while [ -e /proc/$o ]; do sleep 0.01; done; echo reaped $o; echo pid1 $(cat /proc/1/comm)",
        f = env.state_dir().join("orphan.pid").display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        BIN,
        "--state-dir",
    ])
    .arg(env.state_dir())
    .args(["-n", "init", "--restart", "no", "--", "sh", "-c", &script]);
    let out = env.run_cmd(cmd);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("reaped "), "{text}");
    assert!(text.contains("pid1 restartd"), "restartd is PID 1: {text}");
}
