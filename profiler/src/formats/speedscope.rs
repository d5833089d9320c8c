//! speedscope's JSON file format (https://www.speedscope.app/file-format-schema.json):
//! one "sampled" profile, frames shared, each distinct stack a sample (root
//! first) weighted by its count.
use std::collections::HashMap;

use serde_json::{Value, json};

use crate::{
    formats::{Context, folded},
    profile::{Frame, Profile, Unit},
};

pub const SCHEMA: &str = "https://www.speedscope.app/file-format-schema.json";

pub fn render(profile: &Profile, context: &Context) -> Vec<u8> {
    let mut frames: Vec<Value> = Vec::new();
    let mut frame_ids: HashMap<&Frame, usize> = HashMap::new();
    let mut samples = Vec::new();
    let mut weights = Vec::new();
    for (stack, weight) in profile.sorted_stacks() {
        let ids: Vec<usize> = stack
            .iter()
            .map(|frame| {
                *frame_ids.entry(frame).or_insert_with(|| {
                    frames.push(frame_json(frame));
                    frames.len() - 1
                })
            })
            .collect();
        samples.push(ids);
        weights.push(weight);
    }
    let unit = match profile.unit {
        Unit::Samples { .. } => "none",
        Unit::Microseconds => "microseconds",
    };
    let title = &context.svg.title;
    let name = match context.health.first() {
        Some(health) => format!("{title} ({health})"),
        None => title.clone(),
    };
    let document = json!({
        "$schema": SCHEMA,
        "name": name,
        "exporter": concat!("flameprof ", env!("CARGO_PKG_VERSION")),
        "activeProfileIndex": 0,
        "shared": { "frames": frames },
        "profiles": [{
            "type": "sampled",
            "name": name,
            "unit": unit,
            "startValue": 0,
            "endValue": profile.total(),
            "samples": samples,
            "weights": weights,
        }],
    });
    let mut bytes = serde_json::to_vec(&document).expect("a JSON value always serializes");
    bytes.push(b'\n');
    bytes
}

fn frame_json(frame: &Frame) -> Value {
    let mut value = json!({ "name": folded::frame_label(frame) });
    if let Some(file) = &frame.file {
        value["file"] = json!(file.as_ref());
    }
    if let Some(line) = frame.line {
        value["line"] = json!(line);
    }
    value
}
