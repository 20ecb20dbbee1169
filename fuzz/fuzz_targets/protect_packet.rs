//! Fuzzes the UniFi Protect update-packet decoder: any input must decode or fail cleanly (no
//! panic, no runaway allocation), and whatever decodes must survive a re-encode unchanged. The
//! round trip is skipped for payloads over 64 KiB (inflated): compressing megabytes on every run
//! would cut the fuzzing rate a hundredfold and test nothing new.

#![no_main]

#[path = "../../src/protect/packet.rs"]
#[allow(dead_code)]
mod packet;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = packet::decode(data) else {
        return;
    };
    let size = match &msg.data {
        packet::Payload::Json(v) => v.to_string().len(),
        packet::Payload::Text(s) => s.len(),
        packet::Payload::Buffer(b) => b.len(),
    };
    if size > 64 * 1024 {
        return;
    }
    for deflate in [false, true] {
        let again = packet::decode(&packet::encode(&msg.action, &msg.data, deflate))
            .expect("an encoded message decodes");
        assert_eq!(again, msg, "round trip (deflate={deflate})");
    }
});
