#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nft_gate_fuzz::protocol::device_request(data));
