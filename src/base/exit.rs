//! How a child ended, and every exit status restartd itself returns.
//!
//! The end of a child stays structured (`code` or `signal + core`) until the one place where it
//! becomes a process exit status, `ProcessEnd::exit_status`. The statuses restartd returns for its
//! own reasons are named constants here and nowhere else.

use nix::sys::signal::Signal;

/// How a process ended, as `wait4(2)` reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessEnd {
    /// `exit(code)`; `code` is 0..=255.
    Exited(i32),
    /// Killed by `signal`; `core_dumped` when the kernel wrote a core.
    Signaled { signal: i32, core_dumped: bool },
}

impl ProcessEnd {
    /// Decodes a raw wait status; `None` for a stop or continue notification.
    pub fn from_wait_status(status: i32) -> Option<ProcessEnd> {
        if libc_w::exited(status) {
            Some(ProcessEnd::Exited(libc_w::exit_code(status)))
        } else if libc_w::signaled(status) {
            Some(ProcessEnd::Signaled {
                signal: libc_w::term_sig(status),
                core_dumped: libc_w::core_dumped(status),
            })
        } else {
            None
        }
    }

    /// The status a shell would report: the exit code, or 128+N for signal N.
    pub fn exit_status(self) -> u8 {
        match self {
            ProcessEnd::Exited(code) => (code & 0xff) as u8,
            ProcessEnd::Signaled { signal, .. } => (128 + signal).clamp(0, 255) as u8,
        }
    }

    /// The exit code, if the process exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ProcessEnd::Exited(code) => Some(code),
            ProcessEnd::Signaled { .. } => None,
        }
    }

    /// The signal number, if a signal killed the process.
    pub fn signal(self) -> Option<i32> {
        match self {
            ProcessEnd::Exited(_) => None,
            ProcessEnd::Signaled { signal, .. } => Some(signal),
        }
    }

    /// `code 1` or `signal SIGSEGV (core dumped)`, for messages.
    pub fn describe(self) -> String {
        match self {
            ProcessEnd::Exited(code) => format!("code {code}"),
            ProcessEnd::Signaled {
                signal,
                core_dumped,
            } => {
                let core = if core_dumped { " (core dumped)" } else { "" };
                format!("signal {}{core}", signal_name(signal))
            }
        }
    }
}

/// `SIGTERM` for 15; `SIG42` for a number without a name. The one way restartd writes a signal
/// (messages, crash records, `state.json`, `describe`); `signal_number` reads one.
pub fn signal_name(signal: i32) -> String {
    match Signal::try_from(signal) {
        Ok(sig) => sig.as_str().to_string(),
        Err(_) => format!("SIG{signal}"),
    }
}

/// The signal `text` stands for: a name with or without `SIG`, in any case (`TERM`, `SIGTERM`,
/// `sigterm`), or a number from 1 to SIGRTMAX (`15`); `None` for anything else.
pub fn signal_number(text: &str) -> Option<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return (1..=nix::libc::SIGRTMAX()).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().ok().map(|sig| sig as i32)
}

/// The statuses restartd returns for its own reasons (SPEC §4 and §8).
pub mod code {
    /// A requested stop whose child ended in time.
    pub const STOPPED: u8 = 0;
    /// restartd could not work: instance already running, state directory unusable.
    pub const CANNOT_WORK: u8 = 125;
    /// The command exists but cannot be executed.
    pub const NOT_EXECUTABLE: u8 = 126;
    /// The command was not found.
    pub const NOT_FOUND: u8 = 127;
    /// A requested stop whose child had to be SIGKILLed.
    pub const KILLED: u8 = 137;
    /// `status`: the instance is running.
    pub const RUNNING: u8 = 0;
    /// `status`, `stop`, `restart`, `signal`: the instance is not running.
    pub const NOT_RUNNING: u8 = 3;
    /// `status`, `crashes --id`: no such instance or record.
    pub const NO_SUCH: u8 = 4;
}

/// The wait-status macros of <sys/wait.h>, which libc exposes as functions.
mod libc_w {
    use nix::libc;
    pub fn exited(s: i32) -> bool {
        libc::WIFEXITED(s)
    }
    pub fn exit_code(s: i32) -> i32 {
        libc::WEXITSTATUS(s)
    }
    pub fn signaled(s: i32) -> bool {
        libc::WIFSIGNALED(s)
    }
    pub fn term_sig(s: i32) -> i32 {
        libc::WTERMSIG(s)
    }
    pub fn core_dumped(s: i32) -> bool {
        libc::WCOREDUMP(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_code_maps_to_itself() {
        for code in 0..=255 {
            assert_eq!(ProcessEnd::Exited(code).exit_status(), code as u8);
        }
    }

    #[test]
    fn signals_map_to_128_plus_n() {
        let end = ProcessEnd::Signaled {
            signal: 9,
            core_dumped: false,
        };
        assert_eq!(end.exit_status(), 137);
        let end = ProcessEnd::Signaled {
            signal: 11,
            core_dumped: true,
        };
        assert_eq!(end.exit_status(), 139);
        assert_eq!(end.describe(), "signal SIGSEGV (core dumped)");
    }

    #[test]
    fn decodes_raw_wait_statuses() {
        assert_eq!(
            ProcessEnd::from_wait_status(3 << 8),
            Some(ProcessEnd::Exited(3))
        );
        assert_eq!(
            ProcessEnd::from_wait_status(11 | 0x80),
            Some(ProcessEnd::Signaled {
                signal: 11,
                core_dumped: true
            })
        );
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(40), "SIG40");
    }

    #[test]
    fn every_signal_name_reads_back_as_its_number() {
        for n in 1..=nix::libc::SIGRTMAX() {
            if Signal::try_from(n).is_ok() {
                let name = signal_name(n);
                assert_eq!(signal_number(&name), Some(n), "{name}");
                assert_eq!(signal_number(&name[3..].to_lowercase()), Some(n), "{name}");
            }
        }
    }
}
