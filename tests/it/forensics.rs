//! Crash forensics, second round (issue 18): OOM kills, what a signal death is explained by,
//! fingerprints and first-seen errors across restarts, hooks and `crashes` queries.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{wait_quiet, wait_until, Env};

/// A python3 child that prints `error` as a traceback's last line, raising a `KeyError` from
/// function `func`.
fn py_raise(func: &str, key: &str) -> String {
    format!("import sys\ndef {func}():\n    return {{}}['{key}']\nprint('starting', file=sys.stderr)\n{func}()\n")
}

#[test]
fn a_signal_death_is_not_explained_by_the_last_line_logged() {
    // See: issue 18. `python3 -m http.server` killed by SIGSEGV was recorded with its access
    // log line as the error message.
    let env = Env::new();
    let script = r#"echo 'Serving HTTP on 0.0.0.0 port 8000 ...' >&2
echo '127.0.0.1 - - [05/Dec/2026 07:33:52] "GET / HTTP/1.1" 200 -' >&2
kill -SEGV $$"#;
    let out = env.run(&["-n", "segv", "--restart", "no", "--", "sh", "-c", script]);
    assert_eq!(out.status.code(), Some(128 + 11), "{}", env.report());
    let r = &env.records("segv")[0];
    assert_eq!(r["reason"], "signal");
    assert_eq!(r["signal"], "SIGSEGV");
    for field in ["error_type", "error_message", "stack_trace", "fingerprint"] {
        assert_eq!(r[field], Value::Null, "{field} in {r}");
    }
    assert_eq!(r["first_seen"], false);
    assert!(r["stderr_tail"]
        .as_str()
        .unwrap()
        .contains("GET / HTTP/1.1"));
    // An exit: the last line that is not an access-log or INFO/DEBUG/TRACE line.
    let script = r#"echo 'fatal: cannot open /etc/app.conf' >&2
echo '127.0.0.1 - - [05/Dec/2026 07:33:52] "GET / HTTP/1.1" 200 -' >&2
echo 'INFO: shutting down' >&2
exit 3"#;
    env.run(&["-n", "exit", "--restart", "no", "--", "sh", "-c", script]);
    let r = &env.records("exit")[0];
    assert_eq!(
        r["error_message"], "fatal: cannot open /etc/app.conf",
        "{r}"
    );
    assert_eq!(r["error_type"], Value::Null);
    assert_eq!(r["first_seen"], true);
    assert!(r["fingerprint"].as_str().unwrap().len() == 16, "{r}");
}

#[test]
fn first_seen_holds_across_restarts_of_restartd_rotation_and_reset() {
    let env = Env::new();
    let run = |func: &str, key: &str| {
        let out = env.run(&[
            "-n",
            "fp",
            "--restart",
            "no",
            "--",
            "python3",
            "-c",
            &py_raise(func, key),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", env.report());
        env.records("fp").last().cloned().unwrap()
    };
    let a1 = run("load", "db_url");
    assert_eq!(a1["error_type"], "KeyError");
    assert_eq!(a1["first_seen"], true, "{a1}");
    let fp = a1["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(fp.len(), 16);
    // The same error with another key, in a new restartd: the same fingerprint, not new.
    let a2 = run("load", "port");
    assert_eq!(a2["fingerprint"], fp.as_str());
    assert_eq!(a2["first_seen"], false, "{a2}");
    // Another function: another error.
    let b = run("save", "port");
    assert_ne!(b["fingerprint"], fp.as_str());
    assert_eq!(b["first_seen"], true);
    // The crash files rotated away (as after 20 MiB of records): still known.
    let dir = env.instance("fp");
    fs::remove_file(dir.join("crashes.jsonl")).unwrap();
    let a3 = run("load", "x");
    assert_eq!(
        (a3["fingerprint"].as_str(), &a3["first_seen"]),
        (Some(fp.as_str()), &Value::Bool(false))
    );
    // `reset --crashes`: the history is gone, every error is new again.
    let out = env.sub(&["reset", "fp", "--crashes"]);
    assert!(out.status.success(), "{}", env.report());
    assert!(!dir.join("fingerprints").exists());
    let a4 = run("load", "y");
    assert_eq!(a4["first_seen"], true, "{a4}");
    // An instance from before the fingerprints file: built from its crash files.
    fs::remove_file(dir.join("fingerprints")).unwrap();
    let a5 = run("load", "z");
    assert_eq!(a5["first_seen"], false, "{a5}");
}

#[test]
fn hooks_get_the_fingerprint_and_a_new_error_passes_the_alert_limit() {
    let env = Env::new();
    let seen = env.state_dir().join("seen");
    // Restart 0 and 1 raise the same error, restart 2 another one.
    let script = "import os\nn = int(os.environ['RESTARTD_RESTARTS'])\ndef load(): raise KeyError('a')\ndef save(): raise ValueError('b')\nsave() if n == 2 else load()\n";
    let hook = format!(
        "echo \"$RESTARTD_FINGERPRINT $RESTARTD_FIRST_SEEN $RESTARTD_SUPPRESSED\" >> {}",
        seen.display()
    );
    let out = env.run(&[
        "-n",
        "alerts",
        "--max-restarts",
        "2",
        "--delay",
        "10ms",
        "--alert-limit",
        "1/1h",
        "--on-crash",
        &hook,
        "--",
        "python3",
        "-c",
        script,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", env.report());
    let records = env.records("alerts");
    assert_eq!(records.len(), 3, "{records:?}");
    let fps: Vec<&str> = records
        .iter()
        .map(|r| r["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fps[0], fps[1]);
    assert_ne!(fps[1], fps[2]);
    // The second crash is held back by the limit (1 per hour); the third is a new error and
    // is told anyway, with the count of what was held back.
    let lines = fs::read_to_string(&seen).unwrap();
    assert_eq!(
        lines,
        format!("{} 1 0\n{} 1 1\n", fps[0], fps[2]),
        "{}",
        env.report()
    );
}

#[test]
fn crashes_groups_by_fingerprint_lists_one_and_marks_new_errors() {
    let env = Env::new();
    let script = "import os\nn = int(os.environ['RESTARTD_RESTARTS'])\ndef load(): raise KeyError('k%d' % n)\ndef save(): raise ValueError('b')\nsave() if n == 1 else load()\n";
    let out = env.run(&[
        "-n",
        "grp",
        "--max-restarts",
        "2",
        "--delay",
        "10ms",
        "--",
        "python3",
        "-c",
        script,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", env.report());
    let records = env.records("grp");
    let fp = |i: usize| records[i]["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(fp(0), fp(2));
    let stats = env.sub(&["crashes", "grp", "--stats", "--json"]);
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    let groups = stats["by_fingerprint"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{stats}");
    // Newest first: the KeyError was seen last.
    assert_eq!(groups[0]["fingerprint"], fp(2).as_str());
    assert_eq!(groups[0]["count"], 2);
    assert_eq!(groups[0]["first"], records[0]["time"]);
    assert_eq!(groups[0]["last"], records[2]["time"]);
    assert_eq!(groups[0]["error_type"], "KeyError");
    assert_eq!(groups[0]["error_message"], "'k2'");
    assert_eq!(groups[1]["fingerprint"], fp(1).as_str());
    assert_eq!(groups[1]["count"], 1);
    let human = env.sub(&["crashes", "grp", "--stats"]);
    let human = String::from_utf8_lossy(&human.stdout).into_owned();
    assert!(
        human.contains(&format!("  {}  2  ", fp(0))) && human.contains("KeyError: 'k2'"),
        "{human}"
    );
    // --fingerprint: the records of one error, newest first.
    let one = env.sub(&["crashes", "grp", "--fingerprint", &fp(0), "--json"]);
    let ids: Vec<String> = String::from_utf8_lossy(&one.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        ids,
        [
            records[2]["id"].as_str().unwrap(),
            records[0]["id"].as_str().unwrap()
        ]
    );
    // Upper case is the same fingerprint; an unknown one lists nothing.
    let upper = env.sub(&["crashes", "grp", "--fingerprint", &fp(0).to_uppercase()]);
    assert_eq!(String::from_utf8_lossy(&upper.stdout).lines().count(), 2);
    let none = env.sub(&["crashes", "grp", "--fingerprint", "0000000000000000"]);
    assert!(none.status.success() && none.stdout.is_empty());
    // Human output: `new` on the first record of each error only.
    let list = env.sub(&["crashes", "grp"]);
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    let marked: Vec<bool> = list.lines().map(|l| l.contains("  new  ")).collect();
    assert_eq!(marked, [false, true, true], "{list}");
}

/// A memory cgroup of the test's own, removed (after its processes are gone) when dropped.
struct MemoryCgroup {
    dir: PathBuf,
    procs: PathBuf,
}

impl MemoryCgroup {
    /// A cgroup `tag` of the test process, at the top of the hierarchy, limited to `bytes`
    /// without swap, on cgroup v1 or v2; `Err` says why not.
    fn create(tag: &str, bytes: u64) -> Result<MemoryCgroup, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("not root: cannot create a memory cgroup".into());
        }
        let name = format!("restartd-test-oom-{tag}-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let (dir, limit, swap) = if v1.join("memory.limit_in_bytes").exists() {
            let dir = v1.join(&name);
            (
                dir.clone(),
                dir.join("memory.limit_in_bytes"),
                dir.join("memory.memsw.limit_in_bytes"),
            )
        } else if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            let controllers =
                fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control").unwrap_or_default();
            if !controllers.split_whitespace().any(|c| c == "memory") {
                return Err("cgroup v2 without the memory controller enabled at the root".into());
            }
            let dir = Path::new("/sys/fs/cgroup").join(&name);
            (
                dir.clone(),
                dir.join("memory.max"),
                dir.join("memory.swap.max"),
            )
        } else {
            return Err("no cgroup memory controller mounted at /sys/fs/cgroup".into());
        };
        fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cgroup = MemoryCgroup {
            procs: dir.join("cgroup.procs"),
            dir,
        };
        fs::write(&limit, bytes.to_string())
            .map_err(|e| format!("cannot write {}: {e}", limit.display()))?;
        if swap.exists() {
            let value = if swap.ends_with("memory.swap.max") {
                "0".to_string()
            } else {
                bytes.to_string()
            };
            fs::write(&swap, value).map_err(|e| format!("cannot write {}: {e}", swap.display()))?;
        }
        Ok(cgroup)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // Its last processes may still be exiting: an empty cgroup can be removed.
        let removed = wait_until("the test cgroup is removed", || {
            fs::remove_dir(&self.dir).is_ok() || !self.dir.exists()
        });
        if !removed {
            eprintln!("could not remove {}", self.dir.display());
        }
    }
}

#[test]
fn an_oom_kill_is_named_with_the_kernel_figures() {
    let cgroup = match MemoryCgroup::create("child", 64 << 20) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let env = Env::new();
    let metrics = env.state_dir().join("restartd.prom");
    let alloc = "import sys\nkeep = []\nprint('allocating', file=sys.stderr, flush=True)\nwhile True:\n    keep.append(b'x' * (1 << 20))\n";
    let inner = env.command(&[
        "-n",
        "oom",
        "--restart",
        "no",
        "--metrics-file",
        metrics.to_str().unwrap(),
        "--",
        "python3",
        "-c",
        alloc,
    ]);
    // restartd joins the cgroup before it starts (the child inherits it).
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("echo $$ > \"$0\" && exec \"$@\"")
        .arg(&cgroup.procs)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = env.run_cmd(cmd);
    assert_eq!(out.status.code(), Some(128 + 9), "{}", env.report());
    let records = env.records("oom");
    let r = &records[0];
    // The record as written, for the issue's closing note.
    print!(
        "{}",
        fs::read_to_string(env.instance("oom").join("crashes.jsonl")).unwrap()
    );
    assert_eq!(r["reason"], "oom", "{}", env.report());
    assert_eq!(r["signal"], "SIGKILL");
    let detail = r["detail"].as_str().unwrap();
    let source = format!(
        "killed by the kernel's OOM killer: oom_kill of restartd's cgroup ({}",
        cgroup.dir.display()
    );
    assert!(detail.starts_with(&source), "{detail}");
    assert!(
        detail.contains("rose from 0 to 1, memory limit 64.0 MiB"),
        "{detail}"
    );
    // Where /dev/kmsg is readable, the kernel's own line with its figures.
    if fs::File::open("/dev/kmsg").is_ok() {
        let pid = r["pid"].as_i64().unwrap();
        assert!(
            detail.contains(&format!(
                "; kernel: Killed process {pid} (python3) total-vm:"
            )),
            "{detail}"
        );
    }
    let state = env.state("oom");
    assert_eq!(state["last_exit"]["reason"], "oom");
    let text = fs::read_to_string(&metrics).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("restartd_oom_kills_total{") && l.ends_with(" 1")),
        "{text}"
    );
}

#[test]
fn an_oom_kill_of_a_grandchild_in_another_cgroup_is_named() {
    // See: issue 18. A `sh -c` child whose grandchild the OOM killer ended exits 137; restartd,
    // whose own cgroup counted no kill (the grandchild was in another), looked in /dev/kmsg only
    // for the child's own pid, and only after a SIGKILL: the record said `exit`, code 137.
    let Some(cgroup) = kmsg_and_cgroup("grandchild", 64 << 20) else {
        return;
    };
    let env = Env::new();
    let dir = env.state_dir().to_path_buf();
    let (fork, go) = (dir.join("fork"), dir.join("go"));
    for fifo in [&fork, &go] {
        nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    let pidfile = dir.join("hog.pid");
    // The grandchild: joins the limited cgroup (a sibling of restartd's, so restartd's own count
    // stays flat), says it is there, waits to be let go, then allocates past the limit.
    let hog = dir.join("hog.sh");
    fs::write(
        &hog,
        "echo $$ > \"$1\"\necho $$ > \"$2.new\" && mv \"$2.new\" \"$2\"\necho \"hog $$ ready\" >&2\nread go < \"$3\"\nexec python3 -c \"$4\"\n",
    )
    .unwrap();
    let alloc = "keep = []\nwhile True:\n    keep.append(b'x' * (1 << 20))\n";
    let mut r = env.start(&[
        "-n",
        "grand",
        "--restart",
        "no",
        "--",
        "sh",
        "-c",
        "echo started >&2; read f < \"$5\"; sh \"$0\" \"$1\" \"$2\" \"$3\" \"$4\"; exit $?",
        hog.to_str().unwrap(),
        cgroup.procs.to_str().unwrap(),
        pidfile.to_str().unwrap(),
        go.to_str().unwrap(),
        alloc,
        fork.to_str().unwrap(),
    ]);
    // The grandchild is forked once restartd has settled after the child's start (and its
    // first line, whose turn looks in any case): no look that a start, a first turn or an end
    // brings sees it, only the one its own line brings.
    env.wait_child("grand");
    wait_quiet(r.pid, "after the child's start");
    fs::write(&fork, "fork\n").unwrap();
    assert!(
        wait_until("the grandchild is in its cgroup", || pidfile.exists()),
        "{}",
        env.report()
    );
    let pid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Blocked on the fifo if the test fails before letting it go.
    r.also_kill(pid);
    // Its line woke restartd, which looks at the child's tree within a second, then sleeps:
    // nothing else tells the test that the look happened.
    wait_quiet(r.pid, "after the grandchild's line");
    fs::write(&go, "go\n").unwrap();
    assert_eq!(r.wait_exit(), Some(137), "{}", env.report());
    let records = env.records("grand");
    let rec = &records[0];
    // The record as written, for the issue's closing note.
    print!(
        "{}",
        fs::read_to_string(env.instance("grand").join("crashes.jsonl")).unwrap()
    );
    assert_eq!(rec["reason"], "oom", "{rec}\n{}", env.report());
    assert_eq!(rec["exit_code"], 137);
    let detail = rec["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!(
            "pid {pid} of the child's group (not the child itself) killed by the kernel's OOM killer (/dev/kmsg); kernel: Killed process {pid} (python3) total-vm:"
        )),
        "{detail}"
    );
}

#[test]
fn in_a_pid_namespace_a_host_processs_kill_line_is_not_the_childs() {
    // See: issue 18 (review). restartd in a PID namespace of its own (a container's PID 1)
    // read /dev/kmsg, whose pids are the host's, against the pids of its tree, which are the
    // namespace's: a host process OOM-killed whose pid was also that of a process of the
    // child's tree in the namespace made the child's later exit 1 a record of reason `oom`,
    // `pid N of the child's group`. The README said the line names nothing there.
    if fs::File::open("/dev/kmsg").is_err() {
        eprintln!("skipped: /dev/kmsg is not readable (not root, or kernel.dmesg_restrict)");
        return;
    }
    if let Some(why) = crate::common::unshare_refused() {
        eprintln!("skipped: {why}");
        return;
    }
    let cgroup = match MemoryCgroup::create("host", 32 << 20) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let env = Env::new();
    let dir = env.state_dir().to_path_buf();
    let (go, done) = (dir.join("go"), dir.join("done"));
    for fifo in [&go, &done] {
        nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    // The host's victim: in the limited cgroup, it allocates past the limit once let go.
    let alloc = "keep = []\nwhile True:\n    keep.append(b'x' * (1 << 20))\n";
    let mut victim_cmd = Command::new("sh");
    victim_cmd
        .arg("-c")
        .arg("echo $$ > \"$0\" && read go < \"$1\" && exec python3 -c \"$2\"")
        .arg(&cgroup.procs)
        .arg(&go)
        .arg(alloc);
    let mut victim = crate::common::Running::spawn(victim_cmd);
    let host_pid = victim.pid;
    // In the namespace, the child forks a process that gets the victim's host pid there.
    let script = format!(
        "echo {} > /proc/sys/kernel/ns_last_pid; sleep 30 & echo \"grandchild $!\" >&2; \
         read d < \"$0\"; echo after >&2; sleep 1.2; echo last >&2; exit 1",
        host_pid - 1
    );
    let inner = env.command(&[
        "-n",
        "ns",
        "--restart",
        "no",
        "--",
        "sh",
        "-c",
        &script,
        done.to_str().unwrap(),
    ]);
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc"])
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut r = crate::common::Running::spawn(cmd);
    r.wait_stderr("grandchild ");
    if !r.stderr().contains(&format!("grandchild {host_pid}\n")) {
        eprintln!("skipped: ns_last_pid did not give the grandchild pid {host_pid}");
        return;
    }
    // The look its line brought has seen the grandchild.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    fs::write(&go, "go\n").unwrap();
    assert_eq!(
        victim.wait_exit(),
        None,
        "the host's victim was not OOM-killed"
    );
    fs::write(&done, "done\n").unwrap();
    assert_eq!(r.wait_exit(), Some(1), "{}", r.stderr());
    let records = env.records("ns");
    let rec = &records[0];
    assert_eq!(rec["reason"], "exit", "{rec}");
    assert_eq!(rec["detail"], Value::Null, "{rec}");
}

#[test]
fn a_kill_line_written_to_dev_kmsg_from_user_space_is_not_the_kernels() {
    // See: issue 18 (review). Any line with `Killed process PID` in /dev/kmsg was taken for
    // the OOM killer's, also one a process wrote there (root, or a container with /dev/kmsg
    // writable): the child's exit 1 became a record of reason `oom`. The kernel's own lines
    // have facility 0, which user space cannot give its lines.
    if fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kmsg")
        .is_err()
    {
        eprintln!("skipped: /dev/kmsg is not readable and writable here");
        return;
    }
    let env = Env::new();
    let out = env.run(&[
        "-n",
        "forged",
        "--restart",
        "no",
        "--",
        "sh",
        "-c",
        "sleep 30 & echo \"sleeping $!\" >&2; sleep 1.2; \
         echo \"Out of memory: Killed process $! (sleep) total-vm:1kB\" > /dev/kmsg; \
         echo \"<3>Out of memory: Killed process $! (sleep) total-vm:1kB\" > /dev/kmsg; \
         sleep 1.2; echo last >&2; kill $!; exit 1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", env.report());
    let records = env.records("forged");
    assert_eq!(records[0]["reason"], "exit", "{}", records[0]);
}

#[test]
fn after_a_reload_the_old_childs_oom_kill_is_not_the_new_childs() {
    // See: issue 18 (review). A reload's new child kept the old child's OOM watch: a worker of
    // the old child killed by the OOM killer before the reload made the new child's own exit 1,
    // seconds later, a record of reason `oom`, `pid N of the child's group`, N the old worker.
    let Some(cgroup) = kmsg_and_cgroup("reload", 32 << 20) else {
        return;
    };
    let env = Env::new();
    let dir = env.state_dir().to_path_buf();
    let (go, fail) = (dir.join("go"), dir.join("fail"));
    for fifo in [&go, &fail] {
        nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    let alloc = "keep = []\nwhile True:\n    keep.append(b'x' * (1 << 20))\n";
    // The first child's worker joins the limited cgroup (restartd's own count stays flat) and
    // is OOM-killed; the child lives on. The second child exits 1 when told.
    let script = "n=$(cat \"$0/n\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$0/n\"\n\
        if [ $n = 1 ]; then\n\
          sh -c 'echo \"worker $$\" >&2; read g < \"$0/go\"; echo $$ > \"$1\"; exec python3 -c \"$2\"' \"$0\" \"$1\" \"$2\"\n\
          echo \"worker ended $?\" >&2; exec sleep 30\n\
        fi\n\
        echo second >&2; read f < \"$0/fail\"; exit 1\n";
    let mut r = env.start(&[
        "-n",
        "rl",
        "--restart",
        "no",
        "--socket",
        "tcp://127.0.0.1:0",
        "--",
        "sh",
        "-c",
        script,
        dir.to_str().unwrap(),
        cgroup.procs.to_str().unwrap(),
        alloc,
    ]);
    r.wait_stderr("worker ");
    // The look its line brought has seen the worker.
    wait_quiet(r.pid, "after the worker's line");
    fs::write(&go, "go\n").unwrap();
    r.wait_stderr("worker ended 137");
    wait_quiet(r.pid, "after the worker's end");
    let out = env.sub(&["reload", "rl"]);
    assert_eq!(out.status.code(), Some(0), "{}", env.report());
    r.wait_stderr("second");
    fs::write(&fail, "fail\n").unwrap();
    assert_eq!(r.wait_exit(), Some(1), "{}", r.stderr());
    let records = env.records("rl");
    let rec = records.last().unwrap();
    assert_eq!(rec["reason"], "exit", "{rec}");
    assert_eq!(rec["detail"], Value::Null, "{rec}");
}

#[test]
fn a_draining_old_childs_oom_kill_is_not_the_new_childs() {
    // See: issue 18 (review). After a reload's switch the old child's tree, still draining,
    // was looked at as the child's: its worker's OOM kill made the new child's exit 1 a record
    // of reason `oom`.
    let Some(cgroup) = kmsg_and_cgroup("drain", 32 << 20) else {
        return;
    };
    let env = Env::new();
    let dir = env.state_dir().to_path_buf();
    let (go, fail) = (dir.join("go"), dir.join("fail"));
    for fifo in [&go, &fail] {
        nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    let alloc = "keep = []\nwhile True:\n    keep.append(b'x' * (1 << 20))\n";
    // The first child ignores SIGTERM and waits for its worker, which joins the limited cgroup
    // when let go, after the switch. The second child exits 1 when told.
    let script = "n=$(cat \"$0/n\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$0/n\"\n\
        if [ $n = 1 ]; then\n\
          trap '' TERM\n\
          sh -c 'echo \"worker $$\" >&2; read g < \"$0/go\"; echo $$ > \"$1\"; exec python3 -c \"$2\"' \"$0\" \"$1\" \"$2\" &\n\
          wait $!; echo \"worker ended $?\" >&2; exit 0\n\
        fi\n\
        echo second >&2; read f < \"$0/fail\"; exit 1\n";
    let mut r = env.start(&[
        "-n",
        "dr",
        "--restart",
        "no",
        "--stop-timeout",
        "20s",
        "--socket",
        "tcp://127.0.0.1:0",
        "--",
        "sh",
        "-c",
        script,
        dir.to_str().unwrap(),
        cgroup.procs.to_str().unwrap(),
        alloc,
    ]);
    r.wait_stderr("worker ");
    // `reload` answers once the old child has ended.
    let mut reload = crate::common::restartd();
    reload.args(["reload", "dr", "--state-dir"]).arg(&dir);
    let _reload = crate::common::Running::spawn(reload);
    r.wait_stderr("second");
    wait_quiet(r.pid, "after the switch");
    fs::write(&go, "go\n").unwrap();
    r.wait_stderr("worker ended 137");
    wait_quiet(r.pid, "after the old worker's end");
    fs::write(&fail, "fail\n").unwrap();
    assert_eq!(r.wait_exit(), Some(1), "{}", r.stderr());
    let records = env.records("dr");
    let rec = records.last().unwrap();
    assert_eq!(rec["reason"], "exit", "{rec}\n{}", r.stderr());
}

#[test]
fn a_workers_pid_handed_to_a_host_process_is_not_the_childs() {
    // See: issue 18 (review). A quiet child's looks can be hours apart. A worker seen at one
    // ended (reaped by the child: no turn of restartd's); its pid went to a host process, which
    // the OOM killer took; the child's next line brought a look that read the kill line, and
    // the pid, in the tree at the look before, was taken for the child's group's: its exit 1
    // became a record of reason `oom`. (The test hands the pid on at once with ns_last_pid; on a
    // host the kernel comes round to it after kernel.pid_max pids, 32768 by default.)
    let Some(cgroup) = kmsg_and_cgroup("reuse", 32 << 20) else {
        return;
    };
    let env = Env::new();
    let dir = env.state_dir().to_path_buf();
    let (go, done) = (dir.join("go"), dir.join("done"));
    for fifo in [&go, &done] {
        nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    // The worker waits for the test, not for a time: on a loaded machine a worker that slept
    // could end before the look that was to see it, and the test would prove nothing.
    let mut r = env.start(&[
        "-n",
        "reuse",
        "--restart",
        "no",
        "--",
        "sh",
        "-c",
        "read g < \"$0\" & w=$!; i=0; while [ $i -lt 50 ]; do sleep 0 & i=$((i+1)); done; \
         echo \"worker $w\" >&2; wait $w; read d < \"$1\"; echo tick >&2; exit 1",
        go.to_str().unwrap(),
        done.to_str().unwrap(),
    ]);
    r.wait_stderr("worker ");
    let worker: i32 = r
        .stderr()
        .lines()
        .find_map(|l| l.strip_prefix("worker "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Seen by the look its line brought (held back to a second after the start look): done
    // once restartd is quiet. Then ended and reaped by the child, which brings no look. The 50
    // forks after it put the kernel's last pid well past it: going back to it below is, to
    // restartd, the kernel coming round, as it does past pid_max.
    wait_quiet(r.pid, "after the worker's line");
    fs::write(&go, "go\n").unwrap();
    assert!(wait_until("the worker is reaped", || !Path::new(&format!(
        "/proc/{worker}"
    ))
    .exists()));
    wait_quiet(r.pid, "after the worker's end");
    let alloc = "keep = []\nwhile True:\n    keep.append(b'x' * (1 << 20))\n";
    let spawn = || {
        fs::write("/proc/sys/kernel/ns_last_pid", (worker - 1).to_string()).unwrap();
        let mut victim = Command::new("sh");
        victim
            .arg("-c")
            .arg("echo $$ > \"$0\" && exec python3 -c \"$1\"")
            .arg(&cgroup.procs)
            .arg(alloc);
        crate::common::Running::spawn(victim)
    };
    // Another process that forks between the write and the spawn takes the pid: again, once
    // it has let it go (the one spawned in vain is killed when dropped).
    let mut victim = spawn();
    for _ in 0..20 {
        if victim.pid == worker {
            break;
        }
        drop(victim);
        let free = wait_until("the worker's pid is free again", || {
            !Path::new(&format!("/proc/{worker}")).exists()
        });
        victim = spawn();
        if !free {
            break;
        }
    }
    if victim.pid != worker {
        eprintln!(
            "skipped: the host process got pid {}, not {worker}, each time",
            victim.pid
        );
        drop(victim);
        fs::write(&done, "done\n").unwrap();
        r.wait_exit();
        return;
    }
    assert_eq!(
        victim.wait_exit(),
        None,
        "the host process was not OOM-killed"
    );
    fs::write(&done, "done\n").unwrap();
    assert_eq!(r.wait_exit(), Some(1), "{}", r.stderr());
    // Gone below the worker's pid since the rewind: the kernel came round past pid_max too
    // (other processes forking fast). A rewind and then a wrap is no kernel's order, and from
    // the last pid and the fork count restartd cannot tell it from pids handed out in turn,
    // where pids in use were skipped.
    let last: i32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let records = env.records("reuse");
    if last < worker {
        eprintln!(
            "skipped: pids wrapped past pid_max during the test (last pid {last}, the \
             worker's {worker}): {}",
            records[0]
        );
        return;
    }
    assert_eq!(records[0]["reason"], "exit", "{}", records[0]);
}

/// A readable /dev/kmsg and a memory cgroup of `limit` bytes named `name`, or `None` with the
/// reason printed (the test is then skipped).
fn kmsg_and_cgroup(name: &str, limit: u64) -> Option<MemoryCgroup> {
    if fs::File::open("/dev/kmsg").is_err() {
        eprintln!("skipped: /dev/kmsg is not readable (not root, or kernel.dmesg_restrict)");
        return None;
    }
    MemoryCgroup::create(name, limit)
        .map_err(|why| eprintln!("skipped: {why}"))
        .ok()
}
