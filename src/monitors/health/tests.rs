use super::*;
use std::time::Duration;

fn checker(retries: u32, start_period: Duration) -> Health {
    Health::new(
        HealthConfig {
            probe: Probe::Command("true".into()),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            retries,
            start_period,
            ready_timeout: false,
        },
        Inherited::capture(),
    )
    .unwrap()
}

#[test]
fn retries_consecutive_failures_make_it_unhealthy_once() {
    let t0 = Instant::now();
    let mut h = checker(3, Duration::ZERO);
    h.child_started(t0);
    assert_eq!(h.state(), HealthState::Starting);
    assert_eq!(h.deadline(), Some(t0 + Duration::from_secs(1)));
    assert_eq!(h.finish(false, "x".into(), t0), None);
    assert_eq!(h.finish(true, "ok".into(), t0), Some(Event::Changed));
    assert_eq!(h.state(), HealthState::Healthy);
    assert_eq!(h.finish(false, "a".into(), t0), None);
    assert_eq!(h.finish(false, "b".into(), t0), None);
    assert_eq!(
        h.finish(false, "exit 1: refused\n".into(), t0),
        Some(Event::Unhealthy(
            "3 failed health checks in a row; last: exit 1: refused".into()
        ))
    );
    assert_eq!(h.state(), HealthState::Unhealthy);
    assert_eq!(h.deadline(), None, "no checks after unhealthy");
    assert_eq!(h.finish(false, "c".into(), t0), None, "reported once");
}

#[test]
fn failures_in_the_start_period_do_not_count() {
    let t0 = Instant::now();
    let mut h = checker(1, Duration::from_secs(60));
    h.child_started(t0);
    assert_eq!(
        h.finish(false, "x".into(), t0 + Duration::from_secs(59)),
        None
    );
    assert_eq!(h.state(), HealthState::Starting);
    assert!(matches!(
        h.finish(false, "x".into(), t0 + Duration::from_secs(60)),
        Some(Event::Unhealthy(_))
    ));
}

/// A failing command checker with `--health-interval interval`, `--health-retries 2`.
fn early(interval: Duration, start_period: Duration, ready_timeout: bool) -> Health {
    Health::new(
        HealthConfig {
            probe: Probe::Command("false".into()),
            interval,
            timeout: Duration::from_secs(5),
            retries: 2,
            start_period,
            ready_timeout,
        },
        Inherited::capture(),
    )
    .unwrap()
}

/// Fails the check due at the checker's deadline, as the loop would; returns that time.
fn fail_next(h: &mut Health) -> (Instant, Option<Event>) {
    let at = h.deadline().expect("a check is due");
    (at, h.finish(false, "refused".into(), at))
}

// See: issue 19 (review): readiness waited a whole --health-interval for the first check.
#[test]
fn until_the_first_pass_checks_come_every_second_and_then_every_interval() {
    let s = Duration::from_secs;
    let t0 = Instant::now();
    let mut h = early(s(30), Duration::ZERO, false);
    h.child_started(t0);
    assert_eq!(
        h.deadline(),
        Some(t0 + s(1)),
        "the first check 1 s after spawn"
    );
    assert_eq!(h.finish(false, "refused".into(), t0 + s(1)), None);
    assert_eq!(h.deadline(), Some(t0 + s(2)));
    assert_eq!(h.finish(true, "ok".into(), t0 + s(2)), Some(Event::Changed));
    assert_eq!(h.state(), HealthState::Healthy);
    assert_eq!(h.deadline(), Some(t0 + s(32)), "then every interval");
    // A shorter interval than 1 s is kept from the start.
    let mut h = early(Duration::from_millis(200), Duration::ZERO, false);
    h.child_started(t0);
    assert_eq!(h.deadline(), Some(t0 + Duration::from_millis(200)));
    // A new start starts fast again.
    let mut h = early(s(90), Duration::ZERO, false);
    h.child_started(t0);
    h.finish(true, "ok".into(), t0 + s(1));
    h.child_started(t0 + s(500));
    assert_eq!(h.deadline(), Some(t0 + s(501)));
    assert_eq!(h.state(), HealthState::Starting);
}

#[test]
fn early_failures_count_once_per_interval_outside_the_start_period() {
    let s = Duration::from_secs;
    let t0 = Instant::now();
    let mut h = early(s(10), Duration::ZERO, false);
    h.child_started(t0);
    // Checks at 1 s … 9 s do not count; the one at 10 s is the first that does.
    for k in 1..10 {
        assert_eq!(fail_next(&mut h), (t0 + s(k), None));
    }
    assert_eq!(fail_next(&mut h), (t0 + s(10), None));
    assert_eq!(h.failures, 1);
    // The next counted one is an interval later: unhealthy at 20 s, as without fast checks.
    for k in 11..20 {
        assert_eq!(fail_next(&mut h), (t0 + s(k), None));
        assert_eq!(h.failures, 1);
    }
    let (at, event) = fail_next(&mut h);
    assert_eq!(at, t0 + s(20));
    assert!(matches!(event, Some(Event::Unhealthy(_))), "{event:?}");
    // The start period delays the first counted failure further.
    let mut h = early(s(10), s(25), false);
    h.child_started(t0);
    while h.deadline() < Some(t0 + s(25)) {
        fail_next(&mut h);
    }
    assert_eq!(h.failures, 0);
    assert_eq!(fail_next(&mut h), (t0 + s(25), None));
    assert_eq!(h.failures, 1);
}

#[test]
fn with_a_ready_timeout_early_failures_never_count_but_later_ones_do() {
    let s = Duration::from_secs;
    let t0 = Instant::now();
    let mut h = early(s(2), Duration::ZERO, true);
    h.child_started(t0);
    for k in 1..=100 {
        assert_eq!(fail_next(&mut h), (t0 + s(k), None));
    }
    assert_eq!(h.state(), HealthState::Starting);
    assert_eq!(h.failures, 0);
    // Ready: from now on every failure counts, every interval.
    assert_eq!(
        h.finish(true, "ok".into(), t0 + s(101)),
        Some(Event::Changed)
    );
    assert_eq!(fail_next(&mut h), (t0 + s(103), None));
    let (at, event) = fail_next(&mut h);
    assert_eq!(at, t0 + s(105));
    assert!(matches!(event, Some(Event::Unhealthy(_))), "{event:?}");
}

#[test]
fn a_pass_in_the_start_period_ends_it() {
    // Docker: once a check passed, every failure counts, start period or not.
    let s = Duration::from_secs;
    let t0 = Instant::now();
    let mut h = early(s(1), s(60), false);
    h.child_started(t0);
    h.finish(true, "ok".into(), t0 + s(1));
    assert_eq!(fail_next(&mut h), (t0 + s(2), None));
    let (_, event) = fail_next(&mut h);
    assert!(matches!(event, Some(Event::Unhealthy(_))), "{event:?}");
}

/// Runs one TCP check against `port` to its end, waiting on the socket as the loop does.
fn tcp_check(h: &mut Health, at: Instant) -> Option<Event> {
    assert_eq!(h.tick(at), None, "the check starts");
    let (fd, events) = h.poll_fd().expect("a socket to poll");
    assert_eq!(events, PollFlags::POLLOUT);
    let mut fds = [nix::poll::PollFd::new(fd, events)];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
    h.ready(at)
}

#[test]
fn a_tcp_check_connects_and_a_refused_connect_fails() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut h = Health::new(
        HealthConfig {
            probe: Probe::Tcp(crate::base::values::HealthTcp {
                host: "localhost".into(),
                port,
            }),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            retries: 1,
            start_period: Duration::ZERO,
            ready_timeout: false,
        },
        Inherited::capture(),
    )
    .unwrap();
    let t0 = Instant::now();
    h.child_started(t0);
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(tcp_check(&mut h, t1), Some(Event::Changed));
    assert_eq!(h.state(), HealthState::Healthy);
    assert!(h.poll_fd().is_none(), "the connection is closed at once");
    // The listener's backlog got the connection; nothing was sent on it.
    listener.set_nonblocking(true).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(conn.read(&mut buf).unwrap(), 0, "closed without a byte");
    drop(listener);
    let t2 = t1 + Duration::from_secs(1);
    match tcp_check(&mut h, t2) {
        Some(Event::Unhealthy(detail)) => assert!(
            detail.contains(&format!(
                "cannot connect to 127.0.0.1:{port}: Connection refused"
            )),
            "{detail}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refused_address_gives_way_to_the_next_one() {
    // `localhost` is often ::1 first (Debian's /etc/hosts); a server on 127.0.0.1 only
    // must still pass the check.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut h = Health::new(
        HealthConfig {
            probe: Probe::Tcp(crate::base::values::HealthTcp {
                host: "127.0.0.1".into(),
                port,
            }),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            retries: 1,
            start_period: Duration::ZERO,
            ready_timeout: false,
        },
        Inherited::capture(),
    )
    .unwrap();
    let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    h.addrs = vec![v6, v4];
    let t0 = Instant::now();
    h.child_started(t0);
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(h.tick(t1), None, "the check starts");
    // ::1 refuses (or fails at once without IPv6); 127.0.0.1 is tried within the check.
    let mut event = None;
    for _ in 0..3 {
        let Some((fd, events)) = h.poll_fd() else {
            break;
        };
        let mut fds = [nix::poll::PollFd::new(fd, events)];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
        event = h.ready(t1);
    }
    assert_eq!(event, Some(Event::Changed));
    assert_eq!(h.state(), HealthState::Healthy);
    // Nothing listens on either: the last address's error.
    drop(listener);
    let t2 = t1 + Duration::from_secs(1);
    assert_eq!(h.tick(t2), None);
    let mut event = None;
    for _ in 0..3 {
        let Some((fd, events)) = h.poll_fd() else {
            break;
        };
        let mut fds = [nix::poll::PollFd::new(fd, events)];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
        event = h.ready(t2);
    }
    match event {
        Some(Event::Unhealthy(detail)) => assert!(
            detail.contains(&format!("cannot connect to {v4}: Connection refused")),
            "{detail}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unknown_tcp_host_is_refused_at_start() {
    let cfg = HealthConfig {
        probe: Probe::Tcp(crate::base::values::HealthTcp {
            host: "no-such-host.invalid".into(),
            port: 80,
        }),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        retries: 1,
        start_period: Duration::ZERO,
        ready_timeout: false,
    };
    let err = Health::new(cfg, Inherited::capture()).err().unwrap();
    assert!(
        err.starts_with("--health-tcp: cannot resolve 'no-such-host.invalid'"),
        "{err}"
    );
}

#[test]
fn status_lines() {
    assert_eq!(status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
    assert_eq!(
        status_line(b"HTTP/1.0 503 Service Unavailable\r\nX: y"),
        Some(503)
    );
    assert_eq!(status_line(b"HTTP/1.1 200"), None);
    assert_eq!(status_line(b"SSH-2.0\r\n"), None);
}
