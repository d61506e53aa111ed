//! A small, strict HTTP/1.1 request parser and response builder for `--listen` (SPEC §9). Pure:
//! bytes in, a request or a status out; the sockets are `http_server`'s.
//!
//! Accepted: `GET` or `HEAD`, an origin-form target (`/path?query`), `HTTP/1.0` or `HTTP/1.1`,
//! CRLF line ends, header fields `name: value`, at most `MAX_REQUEST` bytes in all, no body.
//! Anything else is answered with a status and the connection is closed: 400 for malformed
//! requests (bare LF, folded or malformed headers, a body, HTTP/1.1 without `Host`), 405 for
//! other methods, 414 for a target over 2 KiB, 431 for a request over 8 KiB, 505 for other
//! versions. Whether a well-formed request may be answered (421, 401) is `access`'s to say.

/// The most a request (line and headers) may take.
pub const MAX_REQUEST: usize = 8192;
/// The longest request target.
pub const MAX_TARGET: usize = 2048;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `HEAD`: the same response without its body.
    pub head: bool,
    /// The path, as sent (not percent-decoded).
    pub path: String,
    /// Query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// The `Host` header's value, trimmed; `None` without one (only HTTP/1.0 may omit it).
    /// `observe::access` judges it.
    pub host: Option<String>,
    /// The `Authorization` header's value, trimmed, for `observe::access`'s token check.
    pub authorization: Option<String>,
}

/// What the bytes so far hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a whole request yet: read on.
    Partial,
    Request(Request),
    /// A bad request: answer with this status and close.
    Reject(u16, &'static str),
}

/// Parses the bytes a client sent so far.
pub fn parse(buf: &[u8]) -> Parsed {
    const TOO_BIG: Parsed = Parsed::Reject(431, "the request is over 8 KiB");
    const BARE_LF: Parsed = Parsed::Reject(400, "lines must end with CRLF");
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() >= MAX_REQUEST {
            return TOO_BIG;
        }
        // A CR may be the last byte so far; anything else must be CRLF already.
        let complete = buf.strip_suffix(b"\r").unwrap_or(buf);
        if !crlf_only(complete) {
            return BARE_LF;
        }
        // Judge the request line as soon as it is there, so junk is answered at once.
        return match find(buf, b"\r\n") {
            Some(i) => match request_line(&buf[..i]) {
                Err(reject) => reject,
                Ok(_) => Parsed::Partial,
            },
            None if buf.len() > MAX_TARGET + 64 => {
                Parsed::Reject(414, "the request target is over 2 KiB")
            }
            None => Parsed::Partial,
        };
    };
    if end + 4 > MAX_REQUEST {
        return TOO_BIG;
    }
    let head = &buf[..end];
    if !crlf_only(head) {
        return BARE_LF;
    }
    let mut lines = split(head, b"\r\n");
    let first = lines.next().unwrap_or(b"");
    let (head_only, target, http11) = match request_line(first) {
        Ok(parts) => parts,
        Err(reject) => return reject,
    };
    let mut hosts = 0;
    let mut host = None;
    let mut authorization = None;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Parsed::Reject(400, "a header line has no ':'");
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Parsed::Reject(400, "a header name is malformed");
        }
        if value.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
            return Parsed::Reject(400, "a header value holds a control character");
        }
        let value = trim(value);
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            host = Some(String::from_utf8_lossy(value).into_owned());
        } else if name.eq_ignore_ascii_case(b"authorization") {
            if authorization.is_some() {
                return Parsed::Reject(400, "a request may have one Authorization header");
            }
            authorization = Some(String::from_utf8_lossy(value).into_owned());
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || (name.eq_ignore_ascii_case(b"content-length") && value != b"0")
        {
            return Parsed::Reject(400, "requests with a body are not accepted");
        }
    }
    if hosts > 1 || (http11 && hosts == 0) {
        return Parsed::Reject(400, "HTTP/1.1 needs exactly one Host header");
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let Some(query) = parse_query(query) else {
        return Parsed::Reject(400, "the query string is malformed");
    };
    Parsed::Request(Request {
        head: head_only,
        path: path.to_string(),
        query,
        host,
        authorization,
    })
}

/// Every LF follows a CR and every CR precedes an LF.
fn crlf_only(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\n' => i > 0 && bytes[i - 1] == b'\r',
        b'\r' => bytes.get(i + 1) == Some(&b'\n'),
        _ => true,
    })
}

/// The pieces of `bytes` between occurrences of `sep`.
fn split<'a>(mut bytes: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match find(bytes, sep) {
            Some(i) => {
                let piece = &bytes[..i];
                bytes = &bytes[i + sep.len()..];
                Some(piece)
            }
            None => {
                done = true;
                Some(bytes)
            }
        }
    })
}

/// `METHOD SP target SP version`: (HEAD?, target, HTTP/1.1?).
fn request_line(line: &[u8]) -> Result<(bool, &str, bool), Parsed> {
    let bad = Parsed::Reject(400, "the request line is malformed");
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(bad);
    }
    if target.len() > MAX_TARGET {
        return Err(Parsed::Reject(414, "the request target is over 2 KiB"));
    }
    if !target.starts_with(b"/") || !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(bad);
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        v if v.starts_with(b"HTTP/") && v.len() == 8 => {
            return Err(Parsed::Reject(505, "only HTTP/1.0 and HTTP/1.1 are served"))
        }
        _ => return Err(bad),
    };
    let head = match method {
        b"GET" => false,
        b"HEAD" => true,
        _ => return Err(Parsed::Reject(405, "only GET and HEAD are served")),
    };
    // Checked above: visible ASCII.
    let target = std::str::from_utf8(target).map_err(|_| Parsed::Reject(400, "bad target"))?;
    Ok((head, target, http11))
}

/// `a=1&b=x%20y` → pairs; `+` is a space. `None` for a bad escape or non-UTF-8.
pub fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &v[start..end]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The reason phrase of the statuses restartd sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// A whole response; every one closes the connection. `head`: without the body.
pub fn response(status: u16, content_type: &str, body: &[u8], head: bool) -> Vec<u8> {
    let extra = match status {
        405 => "Allow: GET, HEAD\r\n",
        // RFC 9110 §15.5.2: a 401 names the scheme it wants (RFC 6750 §3).
        401 => "WWW-Authenticate: Bearer realm=\"restartd\"\r\n",
        _ => "",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body);
    }
    out
}

/// A plain-text error response: the status and what was wrong.
pub fn error(status: u16, why: &str, head: bool) -> Vec<u8> {
    let body = format!("{status} {}: {why}\n", reason(status));
    response(status, "text/plain; charset=utf-8", body.as_bytes(), head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(req: &[u8]) -> Option<u16> {
        match parse(req) {
            Parsed::Reject(s, _) => Some(s),
            Parsed::Request(_) => Some(200),
            Parsed::Partial => None,
        }
    }

    #[test]
    fn a_plain_get_with_a_query() {
        let req = b"GET /crashes?n=5&since=1h%2030m&x=a+b HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n";
        assert_eq!(
            parse(req),
            Parsed::Request(Request {
                head: false,
                path: "/crashes".into(),
                query: vec![
                    ("n".into(), "5".into()),
                    ("since".into(), "1h 30m".into()),
                    ("x".into(), "a b".into())
                ],
                host: Some("localhost".into()),
                authorization: None,
            })
        );
        let head = parse(b"HEAD / HTTP/1.0\r\n\r\n");
        assert!(matches!(
            head,
            Parsed::Request(Request {
                head: true,
                host: None,
                ..
            })
        ));
        let host = parse(b"GET / HTTP/1.1\r\nhOST: \t 127.0.0.1:9100 \r\n\r\n");
        assert!(
            matches!(&host, Parsed::Request(r) if r.host.as_deref() == Some("127.0.0.1:9100")),
            "{host:?}"
        );
        let auth = parse(b"GET / HTTP/1.0\r\nAuthorization:  Bearer abc \r\n\r\n");
        assert!(
            matches!(&auth, Parsed::Request(r) if r.authorization.as_deref() == Some("Bearer abc")),
            "{auth:?}"
        );
    }

    #[test]
    fn partial_requests_wait_for_more() {
        let full = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(status(&full[..cut]), None, "{cut}");
        }
        assert_eq!(status(full), Some(200));
    }

    #[test]
    fn malformed_requests_are_400() {
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\nauthorization: Bearer x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\nHost: x\n\n",
            b"GET / HTTP/1.1\r\nHost: x\nA: b\r\n\r\n",
            b"GET /?a=%zz HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\x00y\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n",
            b"\r\n\r\n",
            b"hello\n",
        ] {
            assert_eq!(status(bad), Some(400), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn other_methods_versions_and_sizes() {
        assert_eq!(
            status(b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(405)
        );
        assert_eq!(status(b"DELETE / HTTP/1.1\r\n"), Some(405));
        assert_eq!(status(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"), Some(505));
        let long_target = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_TARGET));
        assert_eq!(status(long_target.as_bytes()), Some(414));
        assert_eq!(
            status(format!("GET /{}", "a".repeat(3000)).as_bytes()),
            Some(414)
        );
        let mut big = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        while big.len() < MAX_REQUEST {
            big.extend_from_slice(b"X-Filler: 0123456789abcdef0123456789abcdef\r\n");
        }
        assert_eq!(status(&big), Some(431));
        big.extend_from_slice(b"\r\n");
        assert_eq!(status(&big), Some(431));
    }

    #[test]
    fn responses_close_and_head_has_no_body() {
        let r = response(200, "text/plain", b"hi", false);
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nhi"));
        let r = String::from_utf8(response(200, "text/plain", b"hi", true)).unwrap();
        assert!(r.ends_with("Content-Length: 2\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"), "{r}");
        let r = String::from_utf8(error(405, "only GET and HEAD are served", false)).unwrap();
        assert!(r.contains("Allow: GET, HEAD\r\n"));
        assert!(r.ends_with("405 Method Not Allowed: only GET and HEAD are served\n"));
        let r = String::from_utf8(error(401, "a token is needed", true)).unwrap();
        assert!(r.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{r}");
        assert!(
            r.contains("\r\nWWW-Authenticate: Bearer realm=\"restartd\"\r\n"),
            "{r}"
        );
        let r = String::from_utf8(error(421, "not this host", false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 421 Misdirected Request\r\n"), "{r}");
        assert!(
            !r.contains("WWW-Authenticate") && !r.contains("Allow:"),
            "{r}"
        );
    }

    #[test]
    fn mutated_requests_never_panic_and_stay_within_the_rules() {
        let seeds: [&[u8]; 3] = [
            b"GET /crashes?n=5&since=1h HTTP/1.1\r\nHost: x\r\n\r\n",
            b"HEAD / HTTP/1.0\r\nA: b\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: localhost:9100\r\nAccept: */*\r\n\r\n",
        ];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..20_000 {
            let mut req = seeds[round % seeds.len()].to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % (req.len() + 1);
                match next() % 3 {
                    0 if at < req.len() => req[at] = next() as u8,
                    1 if at < req.len() => {
                        req.remove(at);
                    }
                    _ => req.insert(at, b" \r\n:/?%\x00\xffGH"[(next() % 11) as usize]),
                }
            }
            if let Parsed::Request(r) = parse(&req) {
                assert!(r.path.starts_with('/'), "{req:?}");
                assert!(crlf_only(&req[..find(&req, b"\r\n\r\n").unwrap()]));
            }
        }
    }
}
