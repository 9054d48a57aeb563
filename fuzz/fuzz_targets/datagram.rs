//! Any bytes a discovery socket may receive: decoding never panics, and what decodes is bounded
//! and encodes back into a datagram that decodes to the same value.
#![no_main]

use aienv_discovery::datagram::{Datagram, MAX_DATAGRAM, MAX_NAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = Datagram::decode(data) {
        assert!(data.len() <= MAX_DATAGRAM);
        assert!(d.name.len() <= MAX_NAME);
        let bytes = d.encode();
        let again = Datagram::decode(&bytes).expect("a decoded datagram encodes into one that decodes");
        assert_eq!(again, d);
    }
});
