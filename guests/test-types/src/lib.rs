//! A test guest with one echo method per WIT type (plus a multi-parameter method, a command
//! and an upload). The integration tests use it to check that the host converts JSON
//! parameters to component values and results back to JSON faithfully, including kebab-case
//! names (`dark-red`, `first-line`, `echo-nested-option`).

wit_bindgen::generate!({
    path: ["../../wit/platform", "../../wit/service", "wit"],
    world: "paasm-tests:types/agent",
    with: {
        "paasm:platform/types@0.1.0": paasm_sdk::bindings::paasm::platform::types,
        "paasm:platform/log@0.1.0": paasm_sdk::bindings::paasm::platform::log,
        "paasm:platform/config@0.1.0": paasm_sdk::bindings::paasm::platform::config,
        "paasm:platform/state@0.1.0": paasm_sdk::bindings::paasm::platform::state,
    },
});

use exports::paasm_tests::types::{commands, queries, uploads};
use queries::{Color, Event, Perms, Point, Shape};

struct Types;

impl paasm_sdk::Lifecycle for Types {}

paasm_sdk::export_lifecycle!(Types);

impl queries::Guest for Types {
    fn echo_bool(value: bool) -> bool {
        value
    }
    fn echo_s8(value: i8) -> i8 {
        value
    }
    fn echo_u8(value: u8) -> u8 {
        value
    }
    fn echo_s16(value: i16) -> i16 {
        value
    }
    fn echo_u16(value: u16) -> u16 {
        value
    }
    fn echo_s32(value: i32) -> i32 {
        value
    }
    fn echo_u32(value: u32) -> u32 {
        value
    }
    fn echo_s64(value: i64) -> i64 {
        value
    }
    fn echo_u64(value: u64) -> u64 {
        value
    }
    fn echo_f32(value: f32) -> f32 {
        value
    }
    fn echo_f64(value: f64) -> f64 {
        value
    }
    fn echo_char(value: char) -> char {
        value
    }
    fn echo_string(value: String) -> String {
        value
    }
    fn echo_bytes(value: Vec<u8>) -> Vec<u8> {
        value
    }
    fn echo_list(value: Vec<String>) -> Vec<String> {
        value
    }
    fn echo_record(value: Point) -> Point {
        value
    }
    fn echo_nested(value: Shape) -> Shape {
        value
    }
    fn echo_tuple(value: (u8, String, bool)) -> (u8, String, bool) {
        value
    }
    fn echo_variant(value: Event) -> Event {
        value
    }
    fn echo_enum(value: Color) -> Color {
        value
    }
    fn echo_option(value: Option<u32>) -> Option<u32> {
        value
    }
    fn echo_nested_option(value: Option<Option<u32>>) -> Option<Option<u32>> {
        value
    }
    fn echo_result(value: Result<u32, String>) -> Result<u32, String> {
        value
    }
    fn echo_unit_result(ok: bool) -> Result<(), String> {
        if ok { Ok(()) } else { Err("failed".to_owned()) }
    }
    fn echo_flags(value: Perms) -> Perms {
        value
    }
    fn echo_results(value: Vec<Result<u32, String>>) -> Vec<Result<u32, String>> {
        value
    }

    fn echo_list_record(value: Vec<Point>) -> Vec<Point> {
        value
    }
    fn describe(name: String, count: u32, verbose: Option<bool>) -> String {
        format!("{name}:{count}:{verbose:?}")
    }
}

impl commands::Guest for Types {
    fn add(a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }
}

impl uploads::Guest for Types {
    fn upload(file: Vec<u8>, note: Option<String>) -> uploads::UploadSummary {
        let first = file.split(|&b| b == b'\n').next().unwrap_or_default();
        let first = first.strip_suffix(b"\r").unwrap_or(first);
        uploads::UploadSummary {
            size: u32::try_from(file.len()).unwrap_or(u32::MAX),
            first_line: String::from_utf8_lossy(first).into_owned(),
            note,
        }
    }
}

export!(Types);
