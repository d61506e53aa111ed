//! The values restartd's flags take: their types, their parsers, and the formatters messages use.
//!
//! Each parser takes the text of one flag value and returns the value, or the usage error that
//! names the accepted form (`invalid duration '10x': expected e.g. 500ms, 10s, 5m, 1h 30m`);
//! clap adds the flag. The command line uses them as `value_parser`s, and every layer below it
//! gets the parsed values. Pure: no IO, no clock.

use std::time::Duration;

use crate::base::exit::signal_number;

/// The longest duration any flag takes: 10 years as humantime counts them (`10y`, a year being
/// 365.25 days), so every deadline restartd computes (`Instant` + a flag) stays far from
/// overflow (SPEC §2; issue 17: `--stop-timeout 300000000000y` aborted restartd at the stop).
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 31_557_600);

/// Durations: humantime (`500ms`, `10s`, `5m`, `1h 30m`), or a bare `0`; at most `MAX_DURATION`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let over =
        || format!("invalid duration '{s}': expected at most 10y, e.g. 500ms, 10s, 5m, 1h 30m");
    match humantime::parse_duration(s.trim()) {
        Ok(d) if d > MAX_DURATION => Err(over()),
        Ok(d) => Ok(d),
        // A whole number too big for humantime is over the limit too; with a fraction, the
        // same error can mean a precision below 1ns, so that gets the plain message.
        Err(humantime::DurationError::NumberOverflow) if !s.contains('.') => Err(over()),
        Err(_) => Err(format!(
            "invalid duration '{s}': expected e.g. 500ms, 10s, 5m, 1h 30m"
        )),
    }
}

/// Durations above 0, as `--watchdog` needs.
pub fn parse_nonzero_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!(
            "invalid duration '{s}': expected more than 0, e.g. 10s"
        )),
        d => Ok(d),
    }
}

/// `12ms`, `3.2s`, `2s`, `5m`, `1m30s`, `2h5m`: short and exact enough for messages.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        return if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{:.1}s", d.as_secs_f64())
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m, s) {
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// Sizes: `512M`, `2G`, `100K`, `1048576` (bytes); K/M/G/T are powers of 1024, `B`/`iB` allowed.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let err =
        || format!("invalid size '{s}': expected a number with K, M, G or T, e.g. 512M or 2G");
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (number, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let value = number.trim().parse::<f64>().map_err(|_| err())?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as u64)
}

/// `512.0 MiB`, `1.50 GiB`, `800 KiB`.
pub fn fmt_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

/// `--max-restarts`: `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxRestarts(pub Option<u32>);

/// Restart counts: a whole number or `unlimited`.
pub fn parse_max_restarts(s: &str) -> Result<MaxRestarts, String> {
    if s == "unlimited" {
        return Ok(MaxRestarts(None));
    }
    s.parse::<u32>()
        .map(|n| MaxRestarts(Some(n)))
        .map_err(|_| format!("invalid count '{s}': expected a whole number or 'unlimited'"))
}

/// Health-check retries: at least 1.
pub fn parse_retries(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "invalid count '{s}': expected a whole number of at least 1"
        )),
    }
}

/// Rotated log files kept: 0 to 1000.
pub fn parse_keep(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n <= 1000 => Ok(n),
        _ => Err(format!(
            "invalid count '{s}': expected a whole number from 0 to 1000"
        )),
    }
}

/// Stderr lines a crash record keeps: 0 to 100000.
pub fn parse_tail_lines(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n <= 100_000 => Ok(n),
        _ => Err(format!(
            "invalid line count '{s}': expected a whole number from 0 to 100000"
        )),
    }
}

/// Backoff factors: 1 to 1000.
pub fn parse_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && (1.0..=1000.0).contains(&f) => Ok(f),
        _ => Err(format!(
            "invalid factor '{s}': expected a number from 1 to 1000, e.g. 2 or 1.5"
        )),
    }
}

/// Jitter fractions: 0 to 1.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!(
            "invalid fraction '{s}': expected a number from 0 to 1, e.g. 0.1"
        )),
    }
}

/// An exit-code list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Codes(pub Vec<i32>);

/// Exit-code lists: `1,3,78` (spaces allowed after commas).
pub fn parse_codes(s: &str) -> Result<Codes, String> {
    let err = || {
        format!(
            "invalid exit code list '{s}': expected codes 0-255 separated by commas, e.g. 1,3,78"
        )
    };
    s.split(',')
        .map(|part| match part.trim().parse::<u8>() {
            Ok(code) => Ok(i32::from(code)),
            Err(_) => Err(err()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Codes)
}

/// A signal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sig(pub i32);

/// Signals: `TERM`, `SIGTERM`, `sigterm` or `15`.
pub fn parse_signal(s: &str) -> Result<Sig, String> {
    signal_number(s).map(Sig).ok_or_else(|| {
        format!("invalid signal '{s}': expected a name or number, e.g. TERM, SIGINT, 15")
    })
}

/// Instance names: letters, digits, `.`, `_`, `-`, `@`, `+`; not starting with `.`; 1-100 bytes.
pub fn parse_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 100
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@+".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid name '{s}': expected 1-100 letters, digits, '.', '_', '-', '@' or '+', not starting with '.'"
        ))
    }
}

/// A crash record's `fingerprint`: 16 hex digits (upper case is taken as lower case).
pub fn parse_fingerprint(s: &str) -> Result<String, String> {
    if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "invalid fingerprint '{s}': expected 16 hex digits, as 'restartd crashes NAME --stats' shows them, e.g. 3f2a9c01d4e5b6a7"
        ))
    }
}

/// The default name: the command's basename, with any other byte replaced by `_`.
pub fn default_name(command: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let base = std::path::Path::new(command)
        .file_name()
        .map(|b| b.as_bytes())
        .unwrap_or(b"");
    let mut name: String = base
        .iter()
        .take(100)
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"._-@+".contains(&b) {
                b as char
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with('.') {
        name.replace_range(..1, "_");
    }
    if name.is_empty() {
        name.push_str("restartd");
    }
    name
}

/// A `--label KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub key: String,
    pub value: String,
}

/// Labels: `KEY=VALUE`, KEY `[a-zA-Z_][a-zA-Z0-9_]*`, not one restartd's metrics use itself.
pub fn parse_label(s: &str) -> Result<Label, String> {
    let err = || {
        format!(
            "invalid label '{s}': expected KEY=VALUE with KEY a letter or '_' then letters, digits or '_', e.g. env=prod"
        )
    };
    let (key, value) = s.split_once('=').ok_or_else(err)?;
    let mut bytes = key.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(err());
    }
    if ["name", "reason", "error_type"].contains(&key) || key.starts_with("__") {
        return Err(format!(
            "invalid label '{s}': the key '{key}' is reserved (name, reason, error_type and __*); pick another, e.g. app_{}",
            key.trim_start_matches('_')
        ));
    }
    Ok(Label {
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// `--listen`: an IP address and a port.
pub fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("invalid address '{s}': expected IP:PORT, e.g. 127.0.0.1:9100 or [::1]:9100")
    })
}

/// The usage errors of `--listen` on a non-loopback address without `--listen-remote`, of
/// `--listen-remote` without `--listen-token-file` (SPEC §9), and of `--listen-token-file`
/// without `--listen` (checked here rather than by clap's `requires`, whose message would name
/// only `--listen`). `token`: a token file was given.
pub fn check_listen(
    listen: Option<std::net::SocketAddr>,
    remote: bool,
    token: bool,
) -> Result<(), String> {
    match listen {
        Some(addr) if !remote && !addr.ip().is_loopback() => Err(format!(
            "--listen {addr} is not a loopback address: crash records can hold secrets; use 127.0.0.1 or [::1], or add --listen-remote"
        )),
        Some(addr) if remote && !token => Err(format!(
            "--listen-remote needs --listen-token-file: without a token anyone who reaches {addr} reads the crash records; write a token to a file with mode 0600 and pass --listen-token-file PATH"
        )),
        None if token => Err(
            "--listen-token-file needs --listen: the token guards the --listen endpoint; add --listen 127.0.0.1:PORT or drop --listen-token-file".into(),
        ),
        _ => Ok(()),
    }
}

/// `--health-url`: plain HTTP only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// `--health-url`: `http://host:port/path`; the port defaults to 80, the path to `/`.
pub fn parse_health_url(s: &str) -> Result<HealthUrl, String> {
    if s.starts_with("https://") {
        return Err(format!(
            "https is not supported: use --health-cmd 'curl -fsS {s}' instead"
        ));
    }
    let err = || format!("invalid URL '{s}': expected http://host:port/path");
    let rest = s.strip_prefix("http://").ok_or_else(err)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| err())?)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || path.contains(char::is_whitespace) {
        return Err(err());
    }
    Ok(HealthUrl {
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// `--health-tcp HOST:PORT`: where the TCP health check connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTcp {
    pub host: String,
    pub port: u16,
}

/// `--health-tcp`: `HOST:PORT`, `[IPv6]:PORT`; the port is required and not 0.
pub fn parse_health_tcp(s: &str) -> Result<HealthTcp, String> {
    let err = || {
        format!("invalid address '{s}': expected HOST:PORT, e.g. 127.0.0.1:5432, localhost:6379 or [::1]:8080")
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(err)?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(err)?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(err)?,
        // A bare IPv6 address would be ambiguous with the port.
        None if host.contains(':') => return Err(err()),
        None => host,
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(err());
    }
    Ok(HealthTcp {
        host: host.to_string(),
        port,
    })
}

/// `--ready-timeout` needs something that can say the child is ready (SPEC §13): `--notify`
/// (or `--watchdog`, which implies it) or a health check; without them the child is ready at
/// spawn and the timeout could never apply.
pub fn check_ready_timeout(
    ready_timeout: Option<Duration>,
    notify: bool,
    health: bool,
) -> Result<(), String> {
    match ready_timeout {
        Some(t) if !notify && !health => Err(format!(
            "--ready-timeout {} needs --notify or a health check (--health-cmd, --health-url, --health-tcp): without one the child is ready as soon as it runs; add one or drop --ready-timeout",
            fmt_duration(t)
        )),
        _ => Ok(()),
    }
}

/// `--alert-limit N/DUR`: at most `count` crash hooks per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertLimit {
    pub count: u32,
    pub per: Duration,
}

/// Parses `N/DUR`, e.g. `5/5m`.
pub fn parse_alert_limit(s: &str) -> Result<AlertLimit, String> {
    let err = || format!("invalid limit '{s}': expected COUNT/DURATION, e.g. 5/5m or 1/30s");
    let (count, per) = s.split_once('/').ok_or_else(err)?;
    let count = count.trim().parse::<u32>().map_err(|_| err())?;
    let per = humantime::parse_duration(per.trim()).map_err(|_| err())?;
    if count == 0 || per.is_zero() {
        return Err(err());
    }
    if per > MAX_DURATION {
        return Err(format!(
            "invalid limit '{s}': expected COUNT/DURATION with a DURATION of at most 10y, e.g. 5/5m or 1/30s"
        ));
    }
    Ok(AlertLimit { count, per })
}

#[cfg(test)]
mod tests;
