//! The `--listen` request parser on any bytes, fed whole and in two pieces as a socket may
//! deliver them. Nothing may panic; a request it accepts is a GET or HEAD of a path that starts
//! with '/' and fits the limits; a rejection carries one of the statuses SPEC §9 names; the
//! query parser, given any text, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use restartd::observe::http::{self, Parsed};

fn check(parsed: &Parsed, len: usize) {
    match parsed {
        Parsed::Partial => assert!(len < http::MAX_REQUEST + 4, "partial at {len} bytes"),
        Parsed::Request(req) => {
            assert!(req.path.starts_with('/'), "{req:?}");
            assert!(req.path.len() <= http::MAX_TARGET, "{req:?}");
            assert!(len <= http::MAX_REQUEST + 4, "accepted {len} bytes");
        }
        Parsed::Reject(status, why) => {
            assert!([400, 405, 414, 431, 505].contains(status), "{status} {why}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = http::parse(data);
    check(&whole, data.len());
    if let Some((&cut, rest)) = data.split_first() {
        let at = cut as usize % (rest.len() + 1);
        check(&http::parse(&rest[..at]), at);
        check(&http::parse(rest), rest.len());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = http::parse_query(text);
    }
});
