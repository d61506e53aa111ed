//! Who may read the `--listen` endpoint (SPEC §9): a request whose `Host` names neither the
//! listening address nor `localhost` gets 421; with `--listen-token-file`, a request without
//! `Authorization: Bearer TOKEN` gets 401, in that order. `Access::check` is pure: a request in,
//! a refusal or nothing out; the routes are `endpoints`' and never see a refused request.
//! `read_token_file` reads and vets the token file once, before the run starts.
//!
//! The Host check defeats DNS rebinding: a page on `http://evil.example:PORT/` whose name the
//! attacker makes resolve to 127.0.0.1 reaches restartd from the victim's browser, but the
//! browser still sends `Host: evil.example:PORT`. What "names the listening address" means here:
//! - `localhost` (any case), or the listening IP itself (`127.0.0.1`, `[::1]`); for a wildcard
//!   listen address (`0.0.0.0`, `[::]`, with `--listen-remote`) any IP literal, since a client
//!   may reach the machine by any of its addresses. Other names are refused, `*.localhost` and
//!   names that merely start with an address included.
//! - The port, when there is one, may be any: it says nothing about rebinding (the rebound page
//!   is on restartd's port already), and behind `ssh -L 8080:127.0.0.1:9100` or a container's
//!   port mapping the client's port is not restartd's.
//! - No `Host` at all (HTTP/1.0) is allowed: a browser always sends one, so such a request is
//!   no rebound page.
//!
//! The token is compared in constant time (`Token::matches`). A browser cannot add the header to
//! the dashboard page's own refreshes, so with a token the page is for curl and scrapers; there
//! is deliberately no `?token=` (it would end up in logs, history and `Referer`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use crate::base::config::Token;
use crate::observe::http::Request;

/// What the endpoint accepts, from the flags.
#[derive(Debug, Clone)]
pub struct Access {
    /// The address the listener is bound to (a port 0 already resolved).
    listen: SocketAddr,
    /// `--listen-token-file`'s token.
    token: Option<Token>,
}

impl Access {
    pub fn new(listen: SocketAddr, token: Option<Token>) -> Access {
        Access { listen, token }
    }

    /// `Err((status, why))` for a request that must not be answered: 421 for a foreign `Host`,
    /// then 401 for a missing or wrong token.
    pub fn check(&self, req: &Request) -> Result<(), (u16, &'static str)> {
        if let Some(host) = &req.host {
            if !names_listener(host, self.listen.ip()) {
                return Err((
                    421,
                    "the Host header names neither this address nor localhost",
                ));
            }
        }
        let Some(token) = &self.token else {
            return Ok(());
        };
        let given = req.authorization.as_deref().and_then(bearer);
        match given {
            Some(given) if token.matches(given) => Ok(()),
            _ => Err((
                401,
                "send 'Authorization: Bearer TOKEN' with the token of --listen-token-file",
            )),
        }
    }
}

/// The credentials of an `Authorization: Bearer TOKEN` value (RFC 6750 §2.1; the scheme is
/// case-insensitive, RFC 9110 §11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// Reads `--listen-token-file` at start. The file must be a regular file owned by restartd's
/// (effective) user and closed to group and others (ssh's rule for a private key: 0600 or 0400);
/// the token is its first line (`Token::from_file_text`). `Err` is the usage error, naming the
/// flag and the file and saying what to do.
pub fn read_token_file(path: &Path) -> Result<Token, String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let shown = path.display();
    let unreadable = |e: std::io::Error| {
        format!(
            "--listen-token-file: unable to read {shown}: {e}; write the token on the first line of a file with mode 0600"
        )
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO in its place must not hold up the start.
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(format!(
            "--listen-token-file {shown}: not a regular file; write the token on the first line of a file with mode 0600"
        ));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "--listen-token-file {shown}: the file is owned by uid {}, not by restartd's user (uid {me}); use a file of your own",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "--listen-token-file {shown}: the file is open to other users (mode {mode:04o}); run 'chmod 600 {shown}'"
        ));
    }
    // Far more than a token's line; a file bigger than that is no token file.
    let mut text = Vec::new();
    file.take(64 << 10)
        .read_to_end(&mut text)
        .map_err(unreadable)?;
    Token::from_file_text(&text).map_err(|why| format!("--listen-token-file {shown}: {why}"))
}

/// Whether a `Host` value (`name[:port]` or `[v6][:port]`) names `listen`, as the module doc says.
pub fn names_listener(host: &str, listen: IpAddr) -> bool {
    let Some(name) = host_name(host) else {
        return false;
    };
    match name {
        Name::Localhost => true,
        Name::Ip(ip) => listen.is_unspecified() || ip == listen,
    }
}

enum Name {
    Localhost,
    Ip(IpAddr),
}

/// The host of a `Host` value, if it is `localhost` or an IP literal with at most a numeric port.
fn host_name(host: &str) -> Option<Name> {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            let ip = inside.parse::<Ipv6Addr>().ok()?;
            (Name::Ip(IpAddr::V6(ip)), port)
        }
        None => {
            let (name, port) = match host.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            };
            let name = if name.eq_ignore_ascii_case("localhost") {
                Name::Localhost
            } else {
                Name::Ip(IpAddr::V4(name.parse::<Ipv4Addr>().ok()?))
            };
            (name, port)
        }
    };
    // RFC 3986: port = *DIGIT, so an empty port is allowed.
    match port {
        Some(p) if !p.is_empty() && p.parse::<u16>().is_err() => None,
        Some(p) if !p.bytes().all(|b| b.is_ascii_digit()) => None,
        _ => Some(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_name_the_listener() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let any4: IpAddr = "0.0.0.0".parse().unwrap();
        let any6: IpAddr = "::".parse().unwrap();
        let lan: IpAddr = "192.168.1.5".parse().unwrap();
        // (Host, names 127.0.0.1, names ::1, names 0.0.0.0, names ::, names 192.168.1.5)
        let table: &[(&str, [bool; 5])] = &[
            ("127.0.0.1:9100", [true, false, true, true, false]),
            ("127.0.0.1", [true, false, true, true, false]),
            ("127.0.0.1:", [true, false, true, true, false]),
            ("localhost", [true, true, true, true, true]),
            ("localhost:9100", [true, true, true, true, true]),
            ("LOCALHOST:8080", [true, true, true, true, true]),
            ("[::1]:9100", [false, true, true, true, false]),
            ("[::1]", [false, true, true, true, false]),
            ("192.168.1.5:9100", [false, false, true, true, true]),
            ("[fe80::1]:9100", [false, false, true, true, false]),
            ("evil.example", [false; 5]),
            ("evil.example:9100", [false; 5]),
            ("localhost.evil.example", [false; 5]),
            ("sub.localhost:9100", [false; 5]),
            ("localhost.", [false; 5]),
            ("127.0.0.1.nip.io", [false; 5]),
            ("127.1", [false; 5]),
            ("::1", [false; 5]),
            ("[::1", [false; 5]),
            ("[::1]x", [false; 5]),
            ("[127.0.0.1]", [false; 5]),
            ("127.0.0.1:99999", [false; 5]),
            ("127.0.0.1:+80", [false; 5]),
            ("127.0.0.1:9100:1", [false; 5]),
            ("127.0.0.1:9100@evil.example", [false; 5]),
            ("user@127.0.0.1", [false; 5]),
            ("", [false; 5]),
            (" ", [false; 5]),
        ];
        for (host, want) in table {
            let got = [v4, v6, any4, any6, lan].map(|listen| names_listener(host, listen));
            assert_eq!(&got, want, "Host: {host:?}");
        }
    }

    fn request(host: Option<&str>) -> Request {
        Request {
            head: false,
            path: "/".into(),
            query: Vec::new(),
            host: host.map(String::from),
            authorization: None,
        }
    }

    fn with_auth(host: Option<&str>, authorization: &str) -> Request {
        Request {
            authorization: Some(authorization.into()),
            ..request(host)
        }
    }

    #[test]
    fn a_foreign_host_is_421_and_no_host_is_allowed() {
        let access = Access::new("127.0.0.1:9100".parse().unwrap(), None);
        assert_eq!(access.check(&request(Some("localhost:9100"))), Ok(()));
        assert_eq!(access.check(&request(None)), Ok(()));
        assert_eq!(
            access.check(&request(Some("evil.example:9100"))),
            Err((
                421,
                "the Host header names neither this address nor localhost"
            ))
        );
    }

    #[test]
    fn with_a_token_the_host_is_checked_first_then_the_token() {
        let token = Token::from_file_text(b"s3cret\n").unwrap();
        let access = Access::new("127.0.0.1:9100".parse().unwrap(), Some(token));
        let unauthorized = Err((
            401,
            "send 'Authorization: Bearer TOKEN' with the token of --listen-token-file",
        ));
        assert_eq!(access.check(&request(Some("localhost"))), unauthorized);
        assert_eq!(access.check(&request(None)), unauthorized);
        for wrong in [
            "Bearer",
            "Bearer ",
            "Bearer s3cre",
            "Bearer s3cretx",
            "Bearer S3CRET",
            "Basic s3cret",
            "s3cret",
            "Bearers3cret",
        ] {
            let req = with_auth(Some("localhost"), wrong);
            assert_eq!(access.check(&req), unauthorized, "{wrong:?}");
        }
        for right in ["Bearer s3cret", "bearer s3cret", "BEARER   s3cret"] {
            let req = with_auth(Some("localhost:9100"), right);
            assert_eq!(access.check(&req), Ok(()), "{right:?}");
        }
        assert_eq!(access.check(&with_auth(None, "Bearer s3cret")), Ok(()));
        let foreign = with_auth(Some("evil.example"), "Bearer s3cret");
        assert_eq!(access.check(&foreign).unwrap_err().0, 421);
        assert_eq!(
            access.check(&request(Some("evil.example"))).unwrap_err().0,
            421
        );
    }

    #[test]
    fn token_files_are_vetted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        let ok = file("ok", "s3cret\n", 0o600);
        assert!(read_token_file(&ok).unwrap().matches("s3cret"));
        assert!(read_token_file(&file("ro", "s3cret", 0o400)).is_ok());
        let open = file("open", "s3cret\n", 0o604);
        assert_eq!(
            read_token_file(&open),
            Err(format!(
                "--listen-token-file {0}: the file is open to other users (mode 0604); run 'chmod 600 {0}'",
                open.display()
            ))
        );
        let empty = file("empty", "\n", 0o600);
        assert_eq!(
            read_token_file(&empty),
            Err(format!(
                "--listen-token-file {}: the first line holds no token; write the token on it",
                empty.display()
            ))
        );
        let missing = dir.path().join("missing");
        assert_eq!(
            read_token_file(&missing),
            Err(format!(
                "--listen-token-file: unable to read {}: No such file or directory (os error 2); write the token on the first line of a file with mode 0600",
                missing.display()
            ))
        );
        let not_file = read_token_file(dir.path()).unwrap_err();
        assert!(
            not_file.ends_with(
                "not a regular file; write the token on the first line of a file with mode 0600"
            ),
            "{not_file}"
        );
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(read_token_file(&fifo)
            .unwrap_err()
            .contains("not a regular file"));
    }
}
