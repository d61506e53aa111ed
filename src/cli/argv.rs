//! The one check clap cannot word well: an option value that is not UTF-8. clap says only
//! "invalid UTF-8 was detected in one or more arguments"; SPEC §2 wants the flag named.
//! Arguments after `--` (the command) may be any bytes and are not looked at.

use std::ffi::OsString;

/// The usage error for the first option value that is not UTF-8, naming its flag; `None` when
/// every option before `--` is UTF-8. `args` includes argv\[0\].
pub fn non_utf8_option(args: impl IntoIterator<Item = OsString>) -> Option<String> {
    let mut previous: Option<String> = None;
    for arg in args.into_iter().skip(1) {
        if arg == "--" {
            return None;
        }
        let Some(text) = arg.to_str() else {
            let lossy = arg.to_string_lossy();
            let (flag, value) = match lossy.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), value),
                _ => (
                    previous
                        .filter(|p| p.starts_with('-'))
                        .unwrap_or_else(|| "an argument".into()),
                    &*lossy,
                ),
            };
            return Some(format!(
                "invalid value '{value}' for '{flag}': not valid UTF-8; pass the value as UTF-8 text"
            ));
        };
        previous = Some(text.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn args(list: &[&[u8]]) -> Vec<OsString> {
        list.iter()
            .map(|a| OsString::from_vec(a.to_vec()))
            .collect()
    }

    #[test]
    fn names_the_flag_of_a_non_utf8_value() {
        let err = non_utf8_option(args(&[b"restartd", b"--delay=\xff1s", b"--", b"true"]));
        assert_eq!(
            err.unwrap(),
            "invalid value '\u{fffd}1s' for '--delay': not valid UTF-8; pass the value as UTF-8 text"
        );
        let err = non_utf8_option(args(&[b"restartd", b"-n", b"\xfe", b"--", b"true"]));
        assert!(err.unwrap().contains("for '-n'"));
    }

    #[test]
    fn the_command_may_be_any_bytes() {
        let ok = non_utf8_option(args(&[b"restartd", b"-n", b"x", b"--", b"\xff", b"\xfe"]));
        assert_eq!(ok, None);
    }
}
