//! Who may read the `--listen` endpoint (SPEC §9, issue 17): the `Host` check against DNS
//! rebinding (421), and the bearer token of `--listen-token-file` (401).

use std::net::SocketAddr;

use crate::common::*;
use crate::observe::{exchange, served_addr};

/// A GET of `path` with the given `Host` (none: HTTP/1.0 without one) and extra header lines.
fn ask(addr: SocketAddr, path: &str, host: Option<&str>, extra: &str) -> (u16, String, String) {
    let request = match host {
        Some(host) => format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n"),
        None => format!("GET {path} HTTP/1.0\r\n{extra}\r\n"),
    };
    exchange(addr, request.as_bytes())
}

/// See: issue 17. A page on another origin whose name is made to resolve to 127.0.0.1 (DNS
/// rebinding) sends its own name as `Host`; it must not read the status or the crash tails.
#[test]
fn issue_17_a_host_that_names_another_site_gets_421() {
    let env = Env::new();
    let r = env.start(&[
        "-n",
        "host",
        "--listen",
        "127.0.0.1:0",
        "--",
        "sleep",
        "300",
    ]);
    let addr = served_addr(&r);
    env.wait_child("host");
    let port = addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        // Through a tunnel (ssh -L 8080:127.0.0.1:PORT) the port is the tunnel's.
        "localhost:8080".to_string(),
    ] {
        let (status, head, body) = ask(addr, "/status", Some(&host), "");
        assert_eq!(status, 200, "Host: {host}\n{head}\n{body}");
        assert!(body.contains("\"name\":\"host\""), "Host: {host}: {body}");
    }
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("sub.localhost:{port}"),
        format!("10.1.2.3:{port}"),
        format!("[::1]:{port}"),
        format!("127.0.0.1:{port}@evil.example"),
        String::new(),
    ] {
        let (status, head, body) = ask(addr, "/status", Some(&host), "");
        assert_eq!(status, 421, "Host: {host:?}\n{head}\n{body}");
        assert!(
            head.starts_with("HTTP/1.1 421 Misdirected Request\r\n"),
            "{head}"
        );
        assert!(!body.contains("\"name\""), "Host: {host:?}: {body}");
    }
    // Browsers always send Host; a client that sends none (HTTP/1.0) cannot be a rebound page.
    let (status, _, body) = ask(addr, "/status", None, "");
    assert_eq!(status, 200, "{body}");
}

/// Writes `text` to a file with `mode` in the test's state directory; returns its path.
fn token_file(env: &Env, name: &str, text: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = env.state_dir().join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_string()
}

/// See: issue 17. With `--listen-token-file`, every request must carry the token as a bearer
/// token; the Host check still applies to those that do.
#[test]
fn issue_17_with_a_token_file_every_request_needs_the_token() {
    let env = Env::new();
    let token = token_file(
        &env,
        "token",
        "s3cret-Token_42\nignored second line\n",
        0o600,
    );
    let r = env.start(&[
        "-n",
        "tok",
        "--listen",
        "127.0.0.1:0",
        "--listen-token-file",
        &token,
        "--",
        "sleep",
        "300",
    ]);
    let addr = served_addr(&r);
    env.wait_child("tok");
    let host = format!("127.0.0.1:{}", addr.port());
    for path in ["/status", "/metrics", "/healthz", "/crashes", "/", "/nope"] {
        for auth in [
            "",
            "Authorization: Bearer nope\r\n",
            "Authorization: Bearer s3cret-Token_4\r\n",
            "Authorization: Bearer s3cret-Token_42x\r\n",
            "Authorization: Bearer s3cret-token_42\r\n",
            "Authorization: Basic czNjcmV0LVRva2VuXzQy\r\n",
            "Authorization: s3cret-Token_42\r\n",
            "Authorization: Bearer\r\n",
            "Authorization: Bearer ignored second line\r\n",
        ] {
            let (status, head, body) = ask(addr, path, Some(&host), auth);
            assert_eq!(status, 401, "{path} with {auth:?}\n{head}\n{body}");
            assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
            assert!(head.contains("\r\nWWW-Authenticate: Bearer"), "{head}");
            assert!(
                !body.contains("\"name\"")
                    && !body.contains("restartd_")
                    && !body.contains("<html"),
                "{body}"
            );
        }
    }
    let right = "Authorization: Bearer s3cret-Token_42\r\n";
    let (status, _, body) = ask(addr, "/status", Some(&host), right);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"name\":\"tok\""), "{body}");
    // The scheme is case-insensitive (RFC 9110 §11.1); HTTP/1.0 without Host needs it too.
    let (status, _, body) = ask(
        addr,
        "/healthz",
        Some("localhost"),
        "authorization: bearer s3cret-Token_42\r\n",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(ask(addr, "/healthz", None, "").0, 401);
    assert_eq!(ask(addr, "/healthz", None, right).0, 200);
    // The dashboard page with the token (a scraper's or curl's view of it).
    let (status, _, body) = ask(addr, "/", Some(&host), right);
    assert_eq!(status, 200);
    assert!(body.contains("http-equiv=\"refresh\""), "{body}");
    // The token does not lift the Host check.
    assert_eq!(ask(addr, "/status", Some("evil.example"), right).0, 421);
}

/// `--listen-remote` is accepted with a token file (here on loopback: the tests open no port
/// beyond 127.0.0.1).
#[test]
fn listen_remote_with_a_token_file_serves_with_the_token() {
    let env = Env::new();
    let token = token_file(&env, "token", "abc\n", 0o400);
    let r = env.start(&[
        "-n",
        "remote",
        "--listen",
        "127.0.0.1:0",
        "--listen-remote",
        "--listen-token-file",
        &token,
        "--",
        "sleep",
        "300",
    ]);
    let addr = served_addr(&r);
    env.wait_child("remote");
    assert_eq!(ask(addr, "/healthz", Some("localhost"), "").0, 401);
    let auth = "Authorization: Bearer abc\r\n";
    assert_eq!(ask(addr, "/healthz", Some("localhost"), auth).0, 200);
}

/// Runs restartd with `args` and a command that would leave a mark: it must be a usage error
/// whose message holds every one of `want`, and start and create nothing.
fn assert_usage_error(env: &Env, args: &[&str], want: &[&str]) {
    let marker = env.state_dir().join("started");
    let mut cmd = env.command(args);
    cmd.arg("--").arg("touch").arg(&marker);
    let out = env.run_cmd(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for w in want {
        assert!(err.contains(w), "{args:?}: no {w:?} in: {err}");
    }
    assert!(!marker.exists(), "{args:?}: the command was started");
    assert!(
        !env.instance("touch").exists(),
        "{args:?}: the instance directory was created"
    );
}

/// See: issue 17. The token file's usage errors, and the flags it must come with. (Only
/// loopback here: a wildcard `--listen-remote` without a token is the same check, pinned in
/// `base::values`' unit test, and binding it on a failure would open a port to the network.)
#[test]
fn issue_17_listen_token_file_usage_errors() {
    let env = Env::new();
    let good = token_file(&env, "good", "abc\n", 0o600);
    assert_usage_error(
        &env,
        &["--listen-token-file", &good],
        &["--listen-token-file needs --listen"],
    );
    assert_usage_error(
        &env,
        &["--listen", "127.0.0.1:0", "--listen-remote"],
        &["--listen-remote needs --listen-token-file"],
    );
    let listen = ["--listen", "127.0.0.1:0", "--listen-token-file"];
    let open = token_file(&env, "open", "abc\n", 0o644);
    let chmod = format!("chmod 600 {open}");
    assert_usage_error(
        &env,
        &[&listen[..], &[&open]].concat(),
        &[&open, "mode 0644", &chmod],
    );
    let group = token_file(&env, "group", "abc\n", 0o640);
    assert_usage_error(
        &env,
        &[&listen[..], &[&group]].concat(),
        &[&group, "mode 0640"],
    );
    let missing = env.state_dir().join("missing");
    let missing = missing.to_str().unwrap();
    assert_usage_error(
        &env,
        &[&listen[..], &[missing]].concat(),
        &["--listen-token-file", missing, "No such file"],
    );
    for (name, text) in [("empty", ""), ("blank", "\nabc\n"), ("spaces", "  \n")] {
        let path = token_file(&env, name, text, 0o600);
        assert_usage_error(
            &env,
            &[&listen[..], &[&path]].concat(),
            &[&path, "the first line holds no token"],
        );
    }
    let spaced = token_file(&env, "spaced", "two words\n", 0o600);
    assert_usage_error(
        &env,
        &[&listen[..], &[&spaced]].concat(),
        &[&spaced, "visible ASCII"],
    );
    if nix::unistd::geteuid().is_root() {
        let theirs = token_file(&env, "theirs", "abc\n", 0o600);
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        assert_usage_error(
            &env,
            &[&listen[..], &[&theirs]].concat(),
            &[&theirs, "owned by uid 65534"],
        );
    }
}
