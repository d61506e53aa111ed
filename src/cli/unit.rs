//! `restartd unit [--user] [RUN OPTIONS] -- COMMAND` (SPEC §14): a systemd unit that works as it
//! is, for the run those options describe.
//!
//! The options are checked as a run checks them (the same parser, the same usage errors), then
//! written back into `ExecStart=` word by word, quoted for systemd's command-line syntax
//! (systemd.service(5), "Command lines"; systemd.unit(5), "Specifiers"): inside double quotes
//! a backslash, a double quote, a newline or a tab is written as its C escape, another control
//! character as `\xNN`, `$` as `$$` (no variable expansion) and `%` as `%%` (no specifier). A
//! lone `;` would end the command line, so it is written `\;`. What systemd cannot carry at all
//! (bytes that are not UTF-8: a unit file is UTF-8 text) is refused with a usage error naming the
//! argument. `render` is pure and tested with hostile arguments; `run` gathers the facts (the
//! binary's path from /proc/self/exe, the working directory, the user).

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use crate::base::exit::code;
use crate::base::values::{check_listen, check_ready_timeout, default_name};
use crate::cli::args::{Cli, RunArgs};

/// Everything a unit is made of, gathered by `run`.
#[derive(Debug, Clone)]
pub struct Spec {
    /// restartd's own absolute path (/proc/self/exe).
    pub exe: PathBuf,
    /// The run options and the command, as given (after `--user` was taken out).
    pub args: Vec<OsString>,
    /// The command's program resolved through `PATH`, when it was a bare name: systemd starts
    /// restartd with its own short `PATH`, which need not find it.
    pub program: Option<PathBuf>,
    pub name: String,
    pub user_unit: bool,
    /// The directory `restartd unit` ran in: the command's relative paths are relative to it.
    pub cwd: Option<PathBuf>,
    /// `User=` for a system unit made by another user than root.
    pub run_as: Option<String>,
    pub stop_timeout: Duration,
    pub watchdog: Option<Duration>,
    pub max_delay: Duration,
    pub ready_timeout: Option<Duration>,
    /// `--on-crash` or `--on-give-up`: restartd waits up to 30 s for them before it exits.
    pub hooks: bool,
    /// `--success-exit-codes` and `--no-restart-exit-codes`: restartd exits with such a code
    /// when the child does and is not restarted, so systemd must not restart restartd for it.
    pub success_codes: Vec<i32>,
    pub no_restart_codes: Vec<i32>,
}

/// How long restartd may wait for a hook before it exits (SPEC §7).
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Prints the unit; returns the exit status (0, or 2 for a usage error).
pub fn run(user: bool, args: Vec<OsString>) -> u8 {
    // clap drops a `--` that comes first (`restartd unit -- CMD`); restartd's own argv has it.
    let mut argv = std::env::args_os().skip(1);
    let args = match argv.next() {
        Some(sub) if sub == "unit" => argv.collect(),
        _ => args,
    };
    // `--user` may stand among the run options, before `--`.
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let user_unit = user || args[..end].iter().any(|a| a == "--user");
    let args: Vec<OsString> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !(*i < end && *a == "--user"))
        .map(|(_, a)| a.clone())
        .collect();
    let argv = std::iter::once(OsString::from("restartd")).chain(args.iter().cloned());
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| e.format(&mut Cli::command()).exit());
    if cli.subcommand.is_some() || cli.run.command.is_empty() {
        usage_error(
            ErrorKind::MissingRequiredArgument,
            "no command given: usage: restartd unit [--user] [RUN OPTIONS] -- COMMAND [ARGS...]",
        );
    }
    let run = cli.run;
    if let Err(msg) = check(&run) {
        usage_error(ErrorKind::ArgumentConflict, msg);
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("restartd: unable to read restartd's own path from /proc/self/exe: {e}");
            return code::CANNOT_WORK;
        }
    };
    let spec = Spec {
        exe,
        program: resolve_program(&run.command[0]),
        name: run
            .name
            .clone()
            .unwrap_or_else(|| default_name(&run.command[0])),
        user_unit,
        cwd: std::env::current_dir().ok().filter(|d| d != Path::new("/")),
        run_as: (!user_unit && !nix::unistd::Uid::effective().is_root())
            .then(|| nix::unistd::User::from_uid(nix::unistd::Uid::effective()))
            .and_then(|u| u.ok().flatten())
            .map(|u| u.name),
        stop_timeout: run.stop_timeout,
        watchdog: run.watchdog,
        max_delay: run.max_delay.max(run.delay),
        ready_timeout: run.readiness.ready_timeout,
        hooks: run.on_crash.is_some() || run.on_give_up.is_some(),
        success_codes: run.success_exit_codes.map(|c| c.0).unwrap_or_default(),
        no_restart_codes: run.no_restart_exit_codes.map(|c| c.0).unwrap_or_default(),
        args,
    };
    match render(&spec) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => 0,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
                Err(e) => {
                    eprintln!("restartd: unable to write the unit: {e}");
                    code::CANNOT_WORK
                }
            }
        }
        Err(msg) => usage_error(ErrorKind::InvalidValue, msg),
    }
}

/// The checks a run makes after parsing that need no files (SPEC §2, §9, §13).
fn check(run: &RunArgs) -> Result<(), String> {
    check_listen(
        run.listen,
        run.listen_remote,
        run.listen_token_file.is_some(),
    )?;
    let health =
        run.health_cmd.is_some() || run.health_url.is_some() || run.readiness.health_tcp.is_some();
    let notify = run.notify || run.watchdog.is_some();
    check_ready_timeout(run.readiness.ready_timeout, notify, health)
}

fn usage_error(kind: ErrorKind, msg: impl std::fmt::Display) -> ! {
    Cli::command().error(kind, msg).exit()
}

/// A bare program name resolved through `PATH`, as restartd would find it now.
fn resolve_program(program: &OsStr) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    if program.as_bytes().contains(&b'/') {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .filter(|p| p.is_absolute())
}

/// The unit file's text, or why the arguments cannot be written as one.
pub fn render(spec: &Spec) -> Result<String, String> {
    unit_name(&spec.name)?;
    let mut words = vec![word(spec.exe.as_os_str(), "restartd's own path")?];
    let dashdash = spec.args.iter().position(|a| a == "--");
    for (i, arg) in spec.args.iter().enumerate() {
        let arg = match (dashdash, &spec.program) {
            (Some(d), Some(program)) if i == d + 1 => program.as_os_str(),
            _ => arg.as_os_str(),
        };
        let what = match dashdash {
            Some(d) if i > d => format!("argument {} of the command", i - d),
            _ => format!("option {}", i + 1),
        };
        words.push(word(arg, &what)?);
    }
    let exec_start = words.join(" ");
    // restartd's longest stop: the child gets --stop-timeout, what it leaves behind gets
    // another in the cleanup (SPEC §4), then SIGKILL; 5 s to spare.
    let mut stop = spec.stop_timeout * 2 + Duration::from_secs(5);
    if spec.hooks {
        stop += HOOK_TIMEOUT;
    }
    let (file, enable, wanted_by) = if spec.user_unit {
        (
            format!("~/.config/systemd/user/{}.service", spec.name),
            format!(
                "systemctl --user daemon-reload && systemctl --user enable --now {}",
                spec.name
            ),
            "default.target",
        )
    } else {
        (
            format!("/etc/systemd/system/{}.service", spec.name),
            format!(
                "systemctl daemon-reload && systemctl enable --now {}",
                spec.name
            ),
            "multi-user.target",
        )
    };
    let mut u = String::new();
    let mut line = |l: &str| {
        u.push_str(l);
        u.push('\n');
    };
    line(&format!(
        "# Made by 'restartd unit' (restartd {}). Save as {file}, then:",
        env!("CARGO_PKG_VERSION")
    ));
    line(&format!("#   {enable}"));
    line(&format!(
        "# 'restartd man' (UNDER SYSTEMD) explains each line. Status: RESTARTD_STATE_DIR={} restartd status {}",
        if spec.user_unit {
            "~/.local/state/restartd"
        } else {
            "/var/lib/restartd"
        },
        spec.name
    ));
    line("[Unit]");
    line(&format!(
        "Description={} (kept running by restartd)",
        spec.name
    ));
    if !spec.user_unit {
        line("After=network.target");
    }
    line("");
    line("[Service]");
    line("Type=notify");
    line("NotifyAccess=main");
    line(&format!("ExecStart={exec_start}"));
    if let Some(cwd) = &spec.cwd {
        line(&format!(
            "WorkingDirectory={}",
            path_value(cwd, "the working directory")?
        ));
    }
    if let Some(user) = &spec.run_as {
        line(&format!("User={user}"));
    }
    line("StateDirectory=restartd");
    line("KillMode=mixed");
    line(&format!("TimeoutStopSec={}", timespan(stop)));
    if spec.ready_timeout.is_some() {
        // restartd bounds each start itself (--ready-timeout, then its restarts and give-up).
        line("TimeoutStartSec=infinity");
    }
    line("OOMPolicy=continue");
    if let Some(watchdog) = spec.watchdog {
        line(&format!("WatchdogSec={}", timespan(watchdog)));
    }
    line("Restart=on-failure");
    line(&format!("RestartSec={}", timespan(spec.max_delay)));
    // restartd exits with the child's code when it does not restart it (SPEC §3, §4): a clean
    // code or a no-restart code must not make systemd start it all again.
    let codes = |codes: &[i32]| {
        codes
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    if !spec.success_codes.is_empty() {
        line(&format!("SuccessExitStatus={}", codes(&spec.success_codes)));
    }
    if !spec.no_restart_codes.is_empty() {
        line(&format!(
            "RestartPreventExitStatus={}",
            codes(&spec.no_restart_codes)
        ));
    }
    line("");
    line("[Install]");
    line(&format!("WantedBy={wanted_by}"));
    Ok(u)
}

/// restartd's names (`-n`, or the command's basename) allow what a unit name does not: `+`
/// anywhere, `@` at either end (`web@` is a template, `@web` has no prefix) (systemd.unit(5)).
fn unit_name(name: &str) -> Result<(), String> {
    if name.contains('+') || name.starts_with('@') || name.ends_with('@') {
        return Err(format!(
            "the name '{name}' cannot be a systemd unit's name (no '+', no '@' at either end); pass -n NAME with letters, digits, '.', '_', '-' or an '@' inside"
        ));
    }
    Ok(())
}

/// A systemd time span: whole seconds as `Ns`, else milliseconds (systemd.time(7)).
fn timespan(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis().max(1))
    }
}

/// A path setting's value (`WorkingDirectory=`): specifiers escaped; refused when it cannot be
/// written on one line of UTF-8.
fn path_value(path: &Path, what: &str) -> Result<String, String> {
    let text = utf8(path.as_os_str(), what)?;
    if text.chars().any(char::is_control) || text != text.trim() {
        return Err(format!(
            "{what} {text:?} has a control character or surrounding space, which a unit file cannot hold; run 'restartd unit' from another directory"
        ));
    }
    Ok(text.replace('%', "%%"))
}

fn utf8<'a>(arg: &'a OsStr, what: &str) -> Result<&'a str, String> {
    arg.to_str().ok_or_else(|| {
        format!(
            "{what} ({}) is not valid UTF-8, and a systemd unit file is UTF-8 text; use a UTF-8 name for it",
            arg.to_string_lossy()
        )
    })
}

/// One word of `ExecStart=`, quoted when it needs to be (see the module docs).
pub fn word(arg: &OsStr, what: &str) -> Result<String, String> {
    let text = utf8(arg, what)?;
    if text == ";" {
        return Ok("\\;".into());
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return Ok(text.into());
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '$' => out.push_str("$$"),
            '%' => out.push_str("%%"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

#[cfg(test)]
mod tests;
