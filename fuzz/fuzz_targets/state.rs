//! The `state.json` loader on any bytes: it must never panic, and whatever it accepts must be
//! written back and read again unchanged (restartd rewrites the file it loaded).
#![no_main]

use libfuzzer_sys::fuzz_target;
use restartd::records::state::{StateFile, VERSION};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(state) = StateFile::parse(bytes) {
        assert_eq!(state.version, VERSION);
        let written = serde_json::to_vec_pretty(&state).unwrap();
        assert_eq!(StateFile::parse(&written).unwrap(), state);
    }
});
