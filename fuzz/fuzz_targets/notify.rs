//! sd_notify datagrams on any bytes (a child, or anything that reaches the socket, sends them):
//! parsing never panics, and `STATUS=` text never spans lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use restartd::monitors::notify::{parse, Message};

fuzz_target!(|datagram: &[u8]| {
    for message in parse(datagram) {
        if let Message::Status(text) = message {
            assert!(!text.contains('\n'), "{text:?}");
        }
    }
});
