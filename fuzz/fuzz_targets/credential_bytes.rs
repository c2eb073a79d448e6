#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nft_gate_fuzz::protocol::credential_bytes(data));
