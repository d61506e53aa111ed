//! `--socket [NAME=]ADDR` (SPEC §11): the parsed value and its parser. Pure: no IO.
//!
//! ADDR is `tcp://HOST:PORT` (HOST an IPv4 address, `[IPv6]` or `localhost`, which means
//! 127.0.0.1) or `unix:PATH`. NAME is what the child finds in `LISTEN_FDNAMES`; a socket
//! without one is named after its position, `socket1`, `socket2`, …

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// Where a `--socket` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketAddress {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for SocketAddress {
    /// The form `--socket` takes, e.g. `tcp://127.0.0.1:8000`, `tcp://[::1]:8000`, `unix:/run/a`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketAddress::Tcp(addr) => write!(f, "tcp://{addr}"),
            SocketAddress::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// One `--socket`: its name (None: named after its position) and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSpec {
    pub name: Option<String>,
    pub address: SocketAddress,
}

impl SocketSpec {
    /// The name the child sees in `LISTEN_FDNAMES` for the socket at `index` (0-based).
    pub fn name_at(&self, index: usize) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("socket{}", index + 1),
        }
    }
}

const FORM: &str = "expected [NAME=]tcp://HOST:PORT (HOST an IPv4 address, [IPv6] or localhost) or [NAME=]unix:PATH, e.g. tcp://127.0.0.1:8000, web=tcp://[::1]:8000, unix:/run/app.sock";

/// Parses `--socket [NAME=]ADDR`.
pub fn parse_socket(s: &str) -> Result<SocketSpec, String> {
    let bad = |why: &str| format!("invalid socket '{s}': {why}; {FORM}");
    let (name, addr) = match s.starts_with("tcp://") || s.starts_with("unix:") {
        true => (None, s),
        false => match s.split_once('=') {
            Some((name, addr)) => (Some(name), addr),
            None => (None, s),
        },
    };
    if let Some(name) = name {
        // sd_listen_fds_with_names(3): at most 255 characters, no ':' (the separator), printable.
        let valid = !name.is_empty()
            && name.len() <= 255
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(bad(&format!(
                "the name '{name}' must be 1-255 letters, digits, '_', '-' or '.'"
            )));
        }
    }
    let address = if let Some(path) = addr.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(bad("the unix socket path is empty"));
        }
        // sun_path holds 108 bytes, the terminating NUL included.
        if path.len() > 107 {
            return Err(bad("the unix socket path is longer than 107 bytes"));
        }
        SocketAddress::Unix(PathBuf::from(path))
    } else if let Some(hostport) = addr.strip_prefix("tcp://") {
        let (host, port) = hostport.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad(&format!("the port '{port}' is not a number 0-65535")))?;
        let ip = if host == "localhost" {
            Ipv4Addr::LOCALHOST.into()
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            v6.parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad(&format!("'{v6}' is not an IPv6 address")))?
                .into()
        } else {
            host.parse::<Ipv4Addr>()
                .map_err(|_| {
                    bad(&format!(
                        "'{host}' is not an IPv4 address, [IPv6] or localhost"
                    ))
                })?
                .into()
        };
        SocketAddress::Tcp(SocketAddr::new(ip, port))
    } else {
        return Err(bad("unknown scheme"));
    };
    Ok(SocketSpec {
        name: name.map(str::to_owned),
        address,
    })
}

/// Two `--socket`s may not share a name: the child could not tell them apart.
pub fn check_sockets(specs: &[SocketSpec]) -> Result<(), String> {
    for (i, spec) in specs.iter().enumerate() {
        let name = spec.name_at(i);
        if specs[..i]
            .iter()
            .enumerate()
            .any(|(j, s)| s.name_at(j) == name)
        {
            return Err(format!(
                "--socket: the name '{name}' is given twice; give each socket its own NAME="
            ));
        }
        let any_port = matches!(spec.address, SocketAddress::Tcp(a) if a.port() == 0);
        if !any_port && specs[..i].iter().any(|s| s.address == spec.address) {
            return Err(format!(
                "--socket: the address {} is given twice; bind each address once",
                spec.address
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_parse() {
        let cases = [
            ("tcp://127.0.0.1:8000", None, "tcp://127.0.0.1:8000"),
            ("tcp://localhost:0", None, "tcp://127.0.0.1:0"),
            ("web=tcp://[::1]:80", Some("web"), "tcp://[::1]:80"),
            ("unix:/run/a=b.sock", None, "unix:/run/a=b.sock"),
            ("api.v2=unix:rel/path", Some("api.v2"), "unix:rel/path"),
        ];
        for (text, name, shown) in cases {
            let spec = parse_socket(text).unwrap();
            assert_eq!(spec.name.as_deref(), name, "{text}");
            assert_eq!(spec.address.to_string(), shown, "{text}");
        }
        assert_eq!(
            parse_socket("tcp://1.2.3.4:5").unwrap().name_at(2),
            "socket3"
        );
    }

    #[test]
    fn bad_addresses_say_why() {
        let cases = [
            ("127.0.0.1:8000", "unknown scheme"),
            ("tcp://127.0.0.1", "no port"),
            (
                "tcp://127.0.0.1:99999",
                "the port '99999' is not a number 0-65535",
            ),
            (
                "tcp://example.com:80",
                "'example.com' is not an IPv4 address",
            ),
            ("tcp://[::x]:80", "'::x' is not an IPv6 address"),
            ("tcp://::1:80", "'::1' is not an IPv4 address"),
            ("unix:", "the unix socket path is empty"),
            ("a:b=tcp://1.2.3.4:5", "the name 'a:b' must be"),
            ("=tcp://1.2.3.4:5", "the name '' must be"),
        ];
        for (text, why) in cases {
            let err = parse_socket(text).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid socket '{text}': {why}")),
                "{err}"
            );
            assert!(err.contains("expected [NAME=]tcp://HOST:PORT"), "{err}");
        }
        let long = format!("unix:/{}", "a".repeat(107));
        assert!(parse_socket(&long).unwrap_err().contains("longer than 107"));
    }

    #[test]
    fn names_and_addresses_are_unique() {
        let a = parse_socket("tcp://127.0.0.1:1").unwrap();
        let b = parse_socket("socket1=tcp://127.0.0.1:2").unwrap();
        let err = check_sockets(&[a.clone(), b]).unwrap_err();
        assert!(err.contains("the name 'socket1' is given twice"), "{err}");
        let err = check_sockets(&[a.clone(), a.clone()]).unwrap_err();
        assert!(err.contains("tcp://127.0.0.1:1 is given twice"), "{err}");
        let c = parse_socket("tcp://127.0.0.1:2").unwrap();
        assert!(check_sockets(&[a, c]).is_ok());
    }
}
