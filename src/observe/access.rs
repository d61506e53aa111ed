//! Who may read the `--listen` endpoint (SPEC §9): a request whose `Host` names neither the
//! listening address nor `localhost` gets 421. Pure: a request in, a refusal or nothing out; the
//! routes are `endpoints`' and never see a refused request.
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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::observe::http::Request;

/// What the endpoint accepts, from the flags.
#[derive(Debug, Clone)]
pub struct Access {
    /// The address the listener is bound to (a port 0 already resolved).
    listen: SocketAddr,
}

impl Access {
    pub fn new(listen: SocketAddr) -> Access {
        Access { listen }
    }

    /// `Err((status, why))` for a request that must not be answered.
    pub fn check(&self, req: &Request) -> Result<(), (u16, &'static str)> {
        match &req.host {
            Some(host) if !names_listener(host, self.listen.ip()) => Err((
                421,
                "the Host header names neither this address nor localhost",
            )),
            _ => Ok(()),
        }
    }
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
        }
    }

    #[test]
    fn a_foreign_host_is_421_and_no_host_is_allowed() {
        let access = Access::new("127.0.0.1:9100".parse().unwrap());
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
}
