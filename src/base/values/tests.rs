//! Table tests of the value parsers, with the exact error texts.
use super::*;

#[test]
fn durations() {
    let secs = Duration::from_secs;
    let good = [
        ("0", Duration::ZERO),
        ("500ms", Duration::from_millis(500)),
        ("1h 30m", secs(5400)),
        (" 5m ", secs(300)),
        ("1.5s", Duration::from_millis(1500)),
        // The limit, inclusive: humantime's year is 365.25 days.
        ("10y", MAX_DURATION),
        ("10y", secs(315_576_000)),
        ("3652d", secs(3652 * 86_400)),
        ("9y 365d 6h", MAX_DURATION),
    ];
    for (text, want) in good {
        assert_eq!(parse_duration(text), Ok(want), "{text:?}");
    }
    let plain = |s: &str| format!("invalid duration '{s}': expected e.g. 500ms, 10s, 5m, 1h 30m");
    let over = |s: &str| {
        format!("invalid duration '{s}': expected at most 10y, e.g. 500ms, 10s, 5m, 1h 30m")
    };
    let bad = [
        ("10x", plain("10x")),
        ("", plain("")),
        ("-1s", plain("-1s")),
        ("10", plain("10")),
        ("s", plain("s")),
        ("1.5.5s", plain("1.5.5s")),
        ("0.5ns", plain("0.5ns")),
        // Over the limit, by a second, a day, and far.
        ("10y 1s", over("10y 1s")),
        ("3653d", over("3653d")),
        ("11y", over("11y")),
        ("300000000000y", over("300000000000y")),
        ("99999999999999999999s", over("99999999999999999999s")),
    ];
    for (text, want) in bad {
        assert_eq!(parse_duration(text), Err(want), "{text:?}");
    }
    assert_eq!(
        parse_nonzero_duration("11y"),
        Err(over("11y")),
        "--watchdog"
    );
}

#[test]
fn durations_read_well() {
    let cases = [
        (Duration::from_millis(12), "12ms"),
        (Duration::from_millis(3210), "3.2s"),
        (Duration::from_secs(2), "2s"),
        (Duration::from_secs(300), "5m"),
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_secs(7500), "2h5m"),
        (Duration::from_secs(3600), "1h"),
    ];
    for (d, text) in cases {
        assert_eq!(fmt_duration(d), text);
    }
}

#[test]
fn max_restarts() {
    assert_eq!(parse_max_restarts("unlimited"), Ok(MaxRestarts(None)));
    assert_eq!(parse_max_restarts("0"), Ok(MaxRestarts(Some(0))));
    assert_eq!(
        parse_max_restarts("-1"),
        Err("invalid count '-1': expected a whole number or 'unlimited'".into())
    );
}

#[test]
fn factors_and_fractions() {
    assert_eq!(parse_factor("1.5"), Ok(1.5));
    for bad in ["0.5", "nan", "inf", "x", "1001"] {
        assert!(parse_factor(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_fraction("0"), Ok(0.0));
    assert_eq!(parse_fraction("1"), Ok(1.0));
    assert_eq!(
        parse_fraction("1.5"),
        Err("invalid fraction '1.5': expected a number from 0 to 1, e.g. 0.1".into())
    );
    assert!(parse_fraction("NaN").is_err());
}

#[test]
fn code_lists() {
    assert_eq!(parse_codes("1,3, 78"), Ok(Codes(vec![1, 3, 78])));
    assert_eq!(parse_codes("0"), Ok(Codes(vec![0])));
    assert_eq!(
        parse_codes("1,x"),
        Err(
            "invalid exit code list '1,x': expected codes 0-255 separated by commas, e.g. 1,3,78"
                .into()
        )
    );
    for bad in ["", "256", "1,,2", "-1"] {
        assert!(parse_codes(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn signals() {
    for (s, n) in [
        ("TERM", 15),
        ("SIGTERM", 15),
        ("sigint", 2),
        ("hup", 1),
        ("9", 9),
    ] {
        assert_eq!(parse_signal(s), Ok(Sig(n)), "{s}");
    }
    assert_eq!(
        parse_signal("FOO"),
        Err("invalid signal 'FOO': expected a name or number, e.g. TERM, SIGINT, 15".into())
    );
    for bad in ["0", "99", "-1", ""] {
        assert!(parse_signal(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn sizes() {
    assert_eq!(parse_size("512M"), Ok(512 << 20));
    assert_eq!(parse_size("2G"), Ok(2 << 30));
    assert_eq!(parse_size("1.5K"), Ok(1536));
    assert_eq!(parse_size("10MiB"), Ok(10 << 20));
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(
        parse_size("lots"),
        Err("invalid size 'lots': expected a number with K, M, G or T, e.g. 512M or 2G".into())
    );
    for bad in ["", "0", "-1M", "1X", "M"] {
        assert!(parse_size(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn sizes_read_well() {
    assert_eq!(fmt_bytes(512 << 20), "512.0 MiB");
    assert_eq!(fmt_bytes(3 << 29), "1.50 GiB");
}

#[test]
fn names() {
    assert!(parse_name("api-2.worker@eu").is_ok());
    for bad in ["", ".hidden", "a/b", "a b", "..", &"x".repeat(101)] {
        assert!(parse_name(bad).is_err(), "{bad:?}");
    }
    assert_eq!(default_name("/usr/bin/python3.11".as_ref()), "python3.11");
    assert_eq!(
        parse_fingerprint("3F2A9C01D4E5B6A7"),
        Ok("3f2a9c01d4e5b6a7".into())
    );
    for bad in ["", "3f2a", "3f2a9c01d4e5b6a7a", "3f2a9c01d4e5b6ag"] {
        assert_eq!(
            parse_fingerprint(bad),
            Err(format!("invalid fingerprint '{bad}': expected 16 hex digits, as 'restartd crashes NAME --stats' shows them, e.g. 3f2a9c01d4e5b6a7"))
        );
    }
    assert_eq!(default_name("./my app".as_ref()), "my_app");
    assert_eq!(default_name(".hidden".as_ref()), "_hidden");
}

#[test]
fn labels() {
    assert_eq!(
        parse_label("env=prod"),
        Ok(Label {
            key: "env".into(),
            value: "prod".into()
        })
    );
    assert_eq!(parse_label("_v2=a=b").unwrap().value, "a=b");
    assert_eq!(parse_label("empty=").unwrap().value, "");
    assert_eq!(
        parse_label("1x=y"),
        Err("invalid label '1x=y': expected KEY=VALUE with KEY a letter or '_' then letters, digits or '_', e.g. env=prod".into())
    );
    for bad in ["", "novalue", "=v", "a-b=c", "a b=c", "é=x"] {
        assert!(parse_label(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        parse_label("name=x"),
        Err("invalid label 'name=x': the key 'name' is reserved (name, reason, error_type and __*); pick another, e.g. app_name".into())
    );
    assert!(parse_label("__meta=x").is_err());
    assert!(parse_label("error_type=x").is_err());
}

#[test]
fn listen_addresses() {
    assert_eq!(
        parse_listen("127.0.0.1:9100").unwrap().to_string(),
        "127.0.0.1:9100"
    );
    assert_eq!(parse_listen("[::1]:0").unwrap().port(), 0);
    assert_eq!(
        parse_listen("localhost:80"),
        Err(
            "invalid address 'localhost:80': expected IP:PORT, e.g. 127.0.0.1:9100 or [::1]:9100"
                .into()
        )
    );
    let any = parse_listen("0.0.0.0:9100").ok();
    let local = parse_listen("127.0.0.2:1").ok();
    let not_loopback = Err("--listen 0.0.0.0:9100 is not a loopback address: crash records can hold secrets; use 127.0.0.1 or [::1], or add --listen-remote".to_string());
    assert_eq!(check_listen(any, false, false), not_loopback);
    assert_eq!(check_listen(any, false, true), not_loopback);
    assert_eq!(
        check_listen(any, true, false),
        Err("--listen-remote needs --listen-token-file: without a token anyone who reaches 0.0.0.0:9100 reads the crash records; write a token to a file with mode 0600 and pass --listen-token-file PATH".into())
    );
    assert_eq!(check_listen(any, true, true), Ok(()));
    assert_eq!(check_listen(local, false, false), Ok(()));
    assert_eq!(check_listen(local, false, true), Ok(()));
    assert!(check_listen(local, true, false).is_err());
    assert_eq!(check_listen(local, true, true), Ok(()));
    assert_eq!(check_listen(None, false, false), Ok(()));
    assert_eq!(
        check_listen(None, false, true),
        Err("--listen-token-file needs --listen: the token guards the --listen endpoint; add --listen 127.0.0.1:PORT or drop --listen-token-file".into())
    );
}

#[test]
fn health_urls() {
    let url = parse_health_url("http://127.0.0.1:8080/healthz").unwrap();
    assert_eq!(
        (url.host.as_str(), url.port, url.path.as_str()),
        ("127.0.0.1", 8080, "/healthz")
    );
    let url = parse_health_url("http://localhost").unwrap();
    assert_eq!(
        (url.host.as_str(), url.port, url.path.as_str()),
        ("localhost", 80, "/")
    );
    let url = parse_health_url("http://[::1]:9000/x?y=1").unwrap();
    assert_eq!(
        (url.host.as_str(), url.port, url.path.as_str()),
        ("::1", 9000, "/x?y=1")
    );
    assert_eq!(
        parse_health_url("https://example.com/h"),
        Err(
            "https is not supported: use --health-cmd 'curl -fsS https://example.com/h' instead"
                .into()
        )
    );
    for bad in ["ftp://x", "http://", "http://h:99999/", "localhost:80"] {
        assert!(parse_health_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn alert_limits_parse() {
    assert_eq!(
        parse_alert_limit("5/5m"),
        Ok(AlertLimit {
            count: 5,
            per: Duration::from_secs(300)
        })
    );
    assert_eq!(
        parse_alert_limit("5"),
        Err("invalid limit '5': expected COUNT/DURATION, e.g. 5/5m or 1/30s".into())
    );
    for bad in ["0/5m", "5/0", "x/5m", "5/x", "/", ""] {
        assert!(parse_alert_limit(bad).is_err(), "{bad:?}");
    }
    assert_eq!(parse_alert_limit("1/10y").unwrap().per, MAX_DURATION);
    assert_eq!(
        parse_alert_limit("5/11y"),
        Err("invalid limit '5/11y': expected COUNT/DURATION with a DURATION of at most 10y, e.g. 5/5m or 1/30s".into())
    );
}

#[test]
fn health_tcp_addresses_parse() {
    let tcp = |host: &str, port| HealthTcp {
        host: host.into(),
        port,
    };
    assert_eq!(
        parse_health_tcp("127.0.0.1:5432"),
        Ok(tcp("127.0.0.1", 5432))
    );
    assert_eq!(
        parse_health_tcp("localhost:6379"),
        Ok(tcp("localhost", 6379))
    );
    assert_eq!(parse_health_tcp("[::1]:8080"), Ok(tcp("::1", 8080)));
    assert_eq!(
        parse_health_tcp("localhost"),
        Err("invalid address 'localhost': expected HOST:PORT, e.g. 127.0.0.1:5432, localhost:6379 or [::1]:8080".into())
    );
    for bad in [
        "",
        ":80",
        "h:",
        "h:0",
        "h:65536",
        "::1:80",
        "[::1:80",
        "a b:80",
        "http://h:80",
        "h:x",
    ] {
        assert!(parse_health_tcp(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn ready_timeout_needs_something_to_wait_for() {
    let t = Some(Duration::from_secs(30));
    assert_eq!(check_ready_timeout(None, false, false), Ok(()));
    assert_eq!(check_ready_timeout(t, true, false), Ok(()));
    assert_eq!(check_ready_timeout(t, false, true), Ok(()));
    assert_eq!(
        check_ready_timeout(t, false, false),
        Err("--ready-timeout 30s needs --notify or a health check (--health-cmd, --health-url, --health-tcp): without one the child is ready as soon as it runs; add one or drop --ready-timeout".into())
    );
}
