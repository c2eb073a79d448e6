//! Every committed input of the gate agent's fuzz targets (the seed corpus
//! under `fuzz/corpus/<target>/` and the crashes found and fixed under
//! `fuzz/regressions/<target>/`), run on stable through the very harness the
//! libFuzzer target calls, so CI keeps them passing without nightly.

#[path = "../../fuzz/src/corpus.rs"]
mod corpus;
#[path = "../../fuzz/src/gate.rs"]
mod gate;

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
fn serial_framing_inputs_pass() {
    run_committed_inputs("serial_framing", gate::serial_framing);
}

#[test]
fn wedge_keys_inputs_pass() {
    run_committed_inputs("wedge_keys", gate::wedge_keys);
}

#[test]
fn gate_config_inputs_pass() {
    run_committed_inputs("gate_config", gate::gate_config);
}

#[test]
fn qr_image_inputs_pass() {
    run_committed_inputs("qr_image", gate::qr_image);
}
