//! Reading pprof back (`diff`, `report`): any pprof file, flameprof's own
//! restored frame by frame. prost decodes the protobuf into `proto::Profile`;
//! this turns it into a [`Profile`]. Every malformed input is an error, never
//! a panic, and memory stays within the bound described in `budget.rs`.
use std::{
    collections::{HashMap, HashSet},
    mem::size_of,
    sync::Arc,
};

use prost::Message;

use super::{
    GENERATOR,
    budget::{self, ARC_HEADER, Built, SLOT, STACK_FRAME},
    proto,
};
use crate::{
    formats::folded::frames_from_labels,
    profile::{Frame, FrameKind, Loaded, Profile, Unit},
};

/// A frame before it is built: label, module, file, line, and whether it is
/// inlined into the frame before it.
type Entry<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<u32>, bool);

pub fn parse_pprof(bytes: &[u8]) -> Result<Loaded, String> {
    let size = budget::decoded_size(bytes)?;
    if size > budget::MAX_DECODED {
        return Err(format!(
            "the profile is too large to read: decoded, it would take {} MiB, more than {} MiB",
            size >> 20,
            budget::MAX_DECODED >> 20
        ));
    }
    let wire = proto::Profile::decode(bytes).map_err(|e| format!("malformed protobuf ({e})"))?;
    let strings = &wire.string_table;
    let string = |index: i64| -> Result<&str, String> {
        let text = usize::try_from(index).ok().and_then(|index| strings.get(index));
        text.map(String::as_str).ok_or_else(|| format!("string index {index} is out of range"))
    };
    if strings.first().is_some_and(|s| !s.is_empty()) {
        return Err("the string table does not start with the empty string".into());
    }
    if wire.sample_type.is_empty() {
        return Err("no sample types: not a pprof profile".into());
    }
    // The comments' size is counted before any is copied.
    let mut built = Built::default();
    let comment_bytes = wire.comment.iter().map(|&index| Ok(size_of::<String>() + string(index)?.len()));
    built.keep(comment_bytes.sum::<Result<usize, String>>()?)?;
    let comments: Vec<String> =
        wire.comment.iter().map(|&index| string(index).map(str::to_string)).collect::<Result<_, _>>()?;
    let ours = comments.iter().any(|c| c.starts_with(GENERATOR));

    // Which value to read, and in which unit. Numbers that are int64 in
    // profile.proto but unsigned here are cast (`as`), as the bits were read.
    let named: Vec<(&str, &str)> =
        wire.sample_type.iter().map(|t| Ok((string(t.r#type)?, string(t.unit)?))).collect::<Result<_, String>>()?;
    let period_type = wire.period_type.as_ref().map_or((0, 0), |t| (t.r#type, t.unit));
    let (index, unit, divisor) = choose_value(
        &named,
        (string(period_type.0)?, string(period_type.1)?),
        wire.period as u64,
        string(wire.default_sample_type)?,
    );

    // By id; a later entry with the same id wins. Their size is part of
    // budget::MAX_DECODED.
    let mappings: HashMap<u64, i64> = wire.mapping.iter().map(|m| (m.id, m.filename)).collect();
    let locations: HashMap<u64, &proto::Location> = wire.location.iter().map(|l| (l.id, l)).collect();
    let functions: HashMap<u64, &proto::Function> = wire.function.iter().map(|f| (f.id, f)).collect();

    let mut profile = Profile::new(unit);
    let mut texts = Texts::default();
    for sample in &wire.sample {
        if sample.value.len() != named.len() {
            return Err(format!("a sample has {} values for {} sample types", sample.value.len(), named.len()));
        }
        let (mut entries, mut building): (Vec<Entry>, usize) = (Vec::new(), 0);
        for id in sample.location_id.iter().rev() {
            let location =
                locations.get(id).ok_or_else(|| format!("a sample names location {id}, which is missing"))?;
            let module = match location.mapping_id {
                0 => None,
                id => Some(string(*mappings.get(&id).ok_or_else(|| format!("mapping {id} is missing"))?)?),
            };
            let module = module.map(|m| m.rsplit('/').next().unwrap_or(m));
            for (position, line) in location.line.iter().rev().enumerate() {
                let function = functions
                    .get(&line.function_id)
                    .ok_or_else(|| format!("function {} is missing", line.function_id))?;
                let (name, system_name) = (string(function.name)?, string(function.system_name)?);
                let label = if ours && !system_name.is_empty() { system_name } else { name };
                let file = Some(string(function.filename)?).filter(|f| !f.is_empty());
                let line = u32::try_from(line.line).ok().filter(|&l| l > 0);
                // The entry, the frame, and the text the frame copies.
                let copied: usize =
                    [Some(label), module, file].into_iter().flatten().map(|t| t.len() + ARC_HEADER).sum();
                building += size_of::<Entry>() + STACK_FRAME + copied;
                built.check(building)?;
                entries.push((label, module, file, line, position > 0));
            }
        }
        let mut stack = frames_from_labels(entries.iter().map(|e| (e.0, e.1, e.2, e.3)), ours);
        for (frame, entry) in stack.iter_mut().zip(&entries) {
            frame.inlined |= entry.4 && frame.kind == FrameKind::User;
            built.keep(texts.share(frame))?;
        }
        // Negative values come from pprof's own diffs (-diff_base): not a
        // profile of time or samples, and no weight a flame graph can draw.
        let value = u64::try_from(sample.value[index]).map_err(|_| {
            format!("a sample has the negative value {} (a pprof diff?); flameprof reads profiles of counts and times, and diffs them itself with `flameprof diff`", sample.value[index])
        })?;
        let (frames, stacks) = (stack.len(), profile.stacks.len());
        profile.add(stack, value / divisor);
        if profile.stacks.len() > stacks {
            built.keep(frames * STACK_FRAME + SLOT)?;
        }
    }
    Ok(Loaded { profile, comments })
}

/// One `Arc` per distinct text, so that the frames of the profile share their
/// names, modules and files instead of a copy each.
#[derive(Default)]
struct Texts(HashSet<Arc<str>>);

impl Texts {
    /// Points the frame's texts at the shared copies; the bytes newly kept.
    fn share(&mut self, frame: &mut Frame) -> usize {
        let mut kept = self.one(&mut frame.name);
        for text in [&mut frame.module, &mut frame.file].into_iter().flatten() {
            kept += self.one(text);
        }
        kept
    }

    fn one(&mut self, text: &mut Arc<str>) -> usize {
        if let Some(shared) = self.0.get(&**text) {
            *text = Arc::clone(shared);
            return 0;
        }
        self.0.insert(Arc::clone(text));
        text.len() + ARC_HEADER + SLOT
    }
}

/// The value flameprof reads from a pprof file: the sample count when there
/// is one (CPU profiles), else time in microseconds, else the default type.
fn choose_value(types: &[(&str, &str)], period_type: (&str, &str), period: u64, default: &str) -> (usize, Unit, u64) {
    if let Some(index) = types.iter().position(|&(t, u)| t == "samples" && u == "count") {
        let frequency_hz = if period_type.1 == "nanoseconds" && period > 0 { 1_000_000_000 / period } else { 0 };
        return (index, Unit::Samples { frequency_hz }, 1);
    }
    let nanos = |(_, u): &&(&str, &str)| *u == "nanoseconds";
    let index = types.iter().position(|t| t.0 == default && nanos(&t)).or_else(|| types.iter().position(|t| nanos(&t)));
    match index {
        Some(index) => (index, Unit::Microseconds, 1000),
        None => {
            let index = types.iter().position(|t| t.0 == default).unwrap_or(types.len() - 1);
            (index, Unit::Samples { frequency_hz: 0 }, 1)
        }
    }
}
