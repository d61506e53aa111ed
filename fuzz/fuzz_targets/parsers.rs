//! The command-line value parsers on any text: the duration, size, exit-code list, signal,
//! name, alert-limit, label and listen-address parsers and the `--env-file` syntax directly, the Prometheus label escaping, and every value-taking run flag through clap (which
//! also reaches the count, factor, fraction and URL parsers). Nothing may panic; accepted values
//! must be in range; a rejected flag value must be a usage error that names the flag (SPEC §2).
#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use restartd::base::values;
use restartd::cli::args::Cli;

/// Every run flag that takes a value.
const FLAGS: [&str; 34] = [
    "--name",
    "--state-dir",
    "--restart",
    "--max-restarts",
    "--window",
    "--delay",
    "--backoff-factor",
    "--max-delay",
    "--jitter",
    "--min-uptime",
    "--success-exit-codes",
    "--no-restart-exit-codes",
    "--force-restart-exit-codes",
    "--stop-signal",
    "--stop-timeout",
    "--health-url",
    "--health-interval",
    "--health-timeout",
    "--health-retries",
    "--health-start-period",
    "--watchdog",
    "--max-memory",
    "--log-max-size",
    "--log-keep",
    "--tail-lines",
    "--alert-limit",
    "--log-format",
    "--label",
    "--listen",
    "--listen-token-file",
    "--metrics-file",
    "--log-max-age",
    "--max-runtime",
    "--max-runtime-jitter",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    // An env file is bytes: any of them parse or fail with a line inside the text, and what
    // parses has a valid key and no NUL.
    match restartd::base::envfile::parse(rest) {
        Ok(vars) => {
            for (k, v) in vars {
                let k = std::os::unix::ffi::OsStrExt::as_bytes(k.as_os_str());
                assert!(k.first().is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_'));
                assert!(k.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_'));
                assert!(!std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).contains(&0));
            }
        }
        Err(e) => assert!(e.line >= 1 && e.line <= rest.split(|&b| b == b'\n').count()),
    }
    let Ok(s) = std::str::from_utf8(rest) else {
        let name = values::default_name(std::os::unix::ffi::OsStrExt::from_bytes(rest));
        assert!(values::parse_name(&name).is_ok(), "default name {name:?}");
        return;
    };
    if let Ok(d) = values::parse_duration(s) {
        assert!(d <= values::MAX_DURATION, "{s:?} gave {d:?}");
    }
    if let Ok(bytes) = values::parse_size(s) {
        assert!(bytes >= 1, "{s:?} gave {bytes}");
    }
    if let Ok(codes) = values::parse_codes(s) {
        assert_eq!(codes.0.len(), s.split(',').count());
        assert!(codes.0.iter().all(|c| (0..=255).contains(c)), "{s:?}");
    }
    if let Ok(sig) = values::parse_signal(s) {
        assert!((1..=nix::libc::SIGRTMAX()).contains(&sig.0), "{s:?} gave {}", sig.0);
    }
    if let Ok(name) = values::parse_name(s) {
        assert!(!name.contains('/') && !name.starts_with('.'), "{name:?}");
    }
    let name = values::default_name(std::ffi::OsStr::new(s));
    assert!(values::parse_name(&name).is_ok(), "default name {name:?}");
    if let Ok(limit) = values::parse_alert_limit(s) {
        assert!(limit.count >= 1 && !limit.per.is_zero(), "{s:?}");
    }

    if let Ok(label) = values::parse_label(s) {
        let mut key = label.key.bytes();
        assert!(key.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_'), "{s:?}");
        assert!(key.all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{s:?}");
        assert_eq!(format!("{}={}", label.key, label.value), s);
    }
    if let Ok(addr) = values::parse_listen(s) {
        let _ = values::check_listen(Some(addr), false, false);
        assert!(values::check_listen(Some(addr), true, false).is_err(), "{s:?}");
    }
    // A label value in the Prometheus text: no raw newline or unescaped quote can end it.
    let escaped = restartd::observe::metrics::escape(s);
    assert!(!escaped.contains('\n'), "{s:?}");
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => assert!(matches!(chars.next(), Some('\\' | '"' | 'n')), "{s:?}"),
            '"' => panic!("unescaped quote in {escaped:?}"),
            _ => {}
        }
    }

    let flag = FLAGS[pick as usize % FLAGS.len()];
    let arg = format!("{flag}={s}");
    // The flags that need another one get it, so that their own value is what is judged.
    let needs = match flag {
        "--log-max-age" => Some("--log-file=/tmp/x.log"),
        "--max-runtime-jitter" => Some("--max-runtime=1h"),
        _ => None,
    };
    let argv = ["restartd", arg.as_str()].into_iter().chain(needs).chain(["--", "true"]);
    if let Err(e) = Cli::try_parse_from(argv) {
        let text = e.to_string();
        assert!(e.exit_code() == 2, "{arg:?}: exit {}: {text}", e.exit_code());
        assert!(text.contains(flag), "{arg:?}: the flag is not named: {text}");
    }
});
