//! Keeps `idl/ticketing.json` in step with the program. Anchor's `idl-build` feature compiles
//! one printing test per IDL section into this test binary; this test runs the binary again
//! with only those tests, assembles their sections the way `anchor idl build` does, and
//! compares with the committed file. `UPDATE_IDL=1 cargo test -p ticketing --lib` rewrites it.
#![allow(
    clippy::unwrap_used,
    reason = "test-only module: a failure must fail the test"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Map, Value};

const IDL_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/idl/ticketing.json");

#[test]
fn committed_idl_matches_the_program() {
    // Through the IDL spec type, so fields come in the spec's order, as Anchor writes them.
    let generated: anchor_lang::idl::types::Idl = serde_json::from_value(generate_idl()).unwrap();
    let text = format!("{}\n", serde_json::to_string_pretty(&generated).unwrap());
    if std::env::var_os("UPDATE_IDL").is_some() {
        std::fs::write(IDL_PATH, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(PathBuf::from(IDL_PATH)).unwrap_or_default();
    assert!(
        committed == text,
        "idl/ticketing.json is stale: run `UPDATE_IDL=1 cargo test -p ticketing --lib` and commit it"
    );
}

fn generate_idl() -> Value {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "__anchor_private_print_idl",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "IDL printing tests failed");
    let stdout = String::from_utf8(output.stdout).unwrap();

    let mut address = String::new();
    let mut constants = Vec::new();
    let mut events = Vec::new();
    let mut errors = Value::Array(Vec::new());
    let mut program: Option<Value> = None;
    let mut extra_types: BTreeMap<String, Value> = BTreeMap::new();

    let mut lines = stdout.lines();
    while let Some(line) = lines.next() {
        // With `--nocapture` the harness prints "test <name> ... " before the first line.
        let Some(section) = line
            .find("--- IDL begin ")
            .and_then(|start| line[start..].strip_prefix("--- IDL begin "))
            .and_then(|rest| rest.strip_suffix(" ---"))
        else {
            continue;
        };
        if section == "address" {
            address = lines
                .next()
                .unwrap_or_default()
                .replace(|c: char| !c.is_alphanumeric(), "");
            continue;
        }
        let end = format!("--- IDL end {section} ---");
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != end).collect();
        let value: Value = serde_json::from_str(&body.join("\n")).unwrap();
        match section {
            "const" => constants.push(value),
            "errors" => errors = value,
            "program" => program = Some(value),
            "event" => {
                events.push(value["event"].clone());
                for ty in value["types"].as_array().cloned().unwrap_or_default() {
                    extra_types.insert(name_of(&ty), ty);
                }
            }
            other => panic!("unknown IDL section {other}"),
        }
    }

    let mut idl = program.expect("the program section was printed");
    let object = idl.as_object_mut().unwrap();
    object.insert("address".into(), Value::String(address));
    object.insert("constants".into(), Value::Array(constants));
    object.insert("events".into(), Value::Array(events));
    object.insert("errors".into(), errors);
    for ty in object["types"].as_array().cloned().unwrap_or_default() {
        extra_types.insert(name_of(&ty), ty);
    }
    object.insert(
        "types".into(),
        Value::Array(extra_types.into_values().collect()),
    );
    for key in ["accounts", "constants", "events", "instructions", "types"] {
        if let Some(Value::Array(items)) = object.get_mut(key) {
            items.sort_by_key(name_of);
        }
    }
    shorten_paths(idl)
}

fn name_of(value: &Value) -> String {
    value["name"].as_str().unwrap_or_default().to_owned()
}

/// `ticketing::state::event::Tier` becomes `Tier`, as `anchor idl build` writes it (the
/// program's type names are unique, so no shortened name collides).
fn shorten_paths(value: Value) -> Value {
    match value {
        Value::String(text) if is_type_path(&text) => {
            Value::String(text.rsplit("::").next().unwrap_or_default().to_owned())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(shorten_paths).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, shorten_paths(value)))
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

fn is_type_path(text: &str) -> bool {
    text.contains("::")
        && text
            .split("::")
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_'))
}
