//! Every committed input of the protocol crate's fuzz targets (the seed
//! corpus under `fuzz/corpus/<target>/` and the crashes found and fixed under
//! `fuzz/regressions/<target>/`), run on stable through the very harness the
//! libFuzzer target calls, so CI keeps them passing without nightly.

#[path = "../../fuzz/src/corpus.rs"]
mod corpus;
#[path = "../../fuzz/src/protocol.rs"]
mod protocol;

fn run_committed_inputs(target: &str, harness: fn(&[u8])) {
    let inputs = corpus::inputs(target);
    assert!(!inputs.is_empty(), "no committed inputs for {target}");
    for (path, bytes) in inputs {
        if std::panic::catch_unwind(|| harness(&bytes)).is_err() {
            panic!("{target}: {} fails", path.display());
        }
    }
}

#[test]
fn credential_text_inputs_pass() {
    run_committed_inputs("credential_text", protocol::credential_text);
}

#[test]
fn credential_bytes_inputs_pass() {
    run_committed_inputs("credential_bytes", protocol::credential_bytes);
}

#[test]
fn wire_binary_inputs_pass() {
    run_committed_inputs("wire_binary", protocol::wire_binary);
}

#[test]
fn wire_json_inputs_pass() {
    run_committed_inputs("wire_json", protocol::wire_json);
}

#[test]
fn device_request_inputs_pass() {
    run_committed_inputs("device_request", protocol::device_request);
}
