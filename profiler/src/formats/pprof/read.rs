//! Reading pprof back (`diff`, `report`): any pprof file, flameprof's own
//! restored frame by frame. Every malformed input is an error, never a panic.
use crate::{
    formats::{
        folded::frames_from_labels,
        pprof::{GENERATOR, field},
    },
    profile::{FrameKind, Loaded, Profile, Unit},
};

#[derive(Default)]
struct Function {
    name: u64,
    system_name: u64,
    filename: u64,
}

#[derive(Default)]
struct Location {
    mapping: u64,
    /// (function id, line), innermost first.
    lines: Vec<(u64, i64)>,
}

pub fn parse_pprof(bytes: &[u8]) -> Result<Loaded, String> {
    use field::profile as p;
    let mut sample_types: Vec<(u64, u64)> = Vec::new();
    let mut samples: Vec<(Vec<u64>, Vec<u64>)> = Vec::new();
    let mut mappings = std::collections::HashMap::new();
    let mut locations = std::collections::HashMap::new();
    let mut functions = std::collections::HashMap::new();
    let mut strings: Vec<String> = Vec::new();
    let mut comments: Vec<u64> = Vec::new();
    let (mut period_type, mut period, mut default_type) = ((0, 0), 0u64, 0u64);
    each_field(bytes, |number, value| {
        match number {
            p::SAMPLE_TYPE => sample_types.push(value_type(value.bytes()?)?),
            p::SAMPLE => {
                let (mut ids, mut values) = (Vec::new(), Vec::new());
                each_field(value.bytes()?, |number, value| match number {
                    field::sample::LOCATION_ID => value.repeated(&mut ids),
                    field::sample::VALUE => value.repeated(&mut values),
                    _ => Ok(()),
                })?;
                samples.push((ids, values));
            }
            p::MAPPING => {
                let (mut id, mut filename) = (0, 0);
                each_field(value.bytes()?, |number, value| {
                    match number {
                        field::mapping::ID => id = value.int()?,
                        field::mapping::FILENAME => filename = value.int()?,
                        _ => {}
                    }
                    Ok(())
                })?;
                mappings.insert(id, filename);
            }
            p::LOCATION => {
                let (mut id, mut location) = (0, Location::default());
                each_field(value.bytes()?, |number, value| {
                    match number {
                        field::location::ID => id = value.int()?,
                        field::location::MAPPING_ID => location.mapping = value.int()?,
                        field::location::LINE => {
                            let (mut function, mut line) = (0, 0);
                            each_field(value.bytes()?, |number, value| {
                                match number {
                                    field::line::FUNCTION_ID => function = value.int()?,
                                    field::line::LINE => line = value.int()? as i64,
                                    _ => {}
                                }
                                Ok(())
                            })?;
                            location.lines.push((function, line));
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
                locations.insert(id, location);
            }
            p::FUNCTION => {
                let (mut id, mut function) = (0, Function::default());
                each_field(value.bytes()?, |number, value| {
                    match number {
                        field::function::ID => id = value.int()?,
                        field::function::NAME => function.name = value.int()?,
                        field::function::SYSTEM_NAME => function.system_name = value.int()?,
                        field::function::FILENAME => function.filename = value.int()?,
                        _ => {}
                    }
                    Ok(())
                })?;
                functions.insert(id, function);
            }
            p::STRING_TABLE => {
                let text = std::str::from_utf8(value.bytes()?).map_err(|_| "a string is not UTF-8".to_string())?;
                strings.push(text.to_string());
            }
            p::PERIOD_TYPE => period_type = value_type(value.bytes()?)?,
            p::PERIOD => period = value.int()?,
            p::COMMENT => value.repeated(&mut comments)?,
            p::DEFAULT_SAMPLE_TYPE => default_type = value.int()?,
            _ => {}
        }
        Ok(())
    })?;
    let string = |index: u64| -> Result<&str, String> {
        strings.get(index as usize).map(String::as_str).ok_or_else(|| format!("string index {index} is out of range"))
    };
    if strings.first().is_some_and(|s| !s.is_empty()) {
        return Err("the string table does not start with the empty string".into());
    }
    if sample_types.is_empty() {
        return Err("no sample types: not a pprof profile".into());
    }
    let comments: Vec<String> =
        comments.into_iter().map(|c| string(c).map(str::to_string)).collect::<Result<_, _>>()?;
    let ours = comments.iter().any(|c| c.starts_with(GENERATOR));

    // Which value to read, and in which unit.
    let named: Vec<(&str, &str)> =
        sample_types.iter().map(|&(t, u)| Ok((string(t)?, string(u)?))).collect::<Result<_, String>>()?;
    let (index, unit, divisor) =
        choose_value(&named, (string(period_type.0)?, string(period_type.1)?), period, string(default_type)?);

    let mut profile = Profile::new(unit);
    for (ids, values) in &samples {
        if values.len() != named.len() {
            return Err(format!("a sample has {} values for {} sample types", values.len(), named.len()));
        }
        let mut entries = Vec::new();
        for id in ids.iter().rev() {
            let location =
                locations.get(id).ok_or_else(|| format!("a sample names location {id}, which is missing"))?;
            let module = match location.mapping {
                0 => None,
                id => Some(string(*mappings.get(&id).ok_or_else(|| format!("mapping {id} is missing"))?)?),
            };
            let module = module.map(|m| m.rsplit('/').next().unwrap_or(m));
            for (position, &(function_id, line)) in location.lines.iter().rev().enumerate() {
                let function =
                    functions.get(&function_id).ok_or_else(|| format!("function {function_id} is missing"))?;
                let (name, system_name) = (string(function.name)?, string(function.system_name)?);
                let label = if ours && !system_name.is_empty() { system_name } else { name };
                let file = Some(string(function.filename)?).filter(|f| !f.is_empty());
                let line = u32::try_from(line).ok().filter(|&l| l > 0);
                entries.push((label, module, file, line, position > 0));
            }
        }
        let mut stack = frames_from_labels(entries.iter().map(|e| (e.0, e.1, e.2, e.3)), ours);
        for (frame, entry) in stack.iter_mut().zip(&entries) {
            frame.inlined |= entry.4 && frame.kind == FrameKind::User;
        }
        profile.add(stack, values[index] / divisor);
    }
    Ok(Loaded { profile, comments })
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

fn value_type(bytes: &[u8]) -> Result<(u64, u64), String> {
    let (mut kind, mut unit) = (0, 0);
    each_field(bytes, |number, value| {
        match number {
            field::value_type::TYPE => kind = value.int()?,
            field::value_type::UNIT => unit = value.int()?,
            _ => {}
        }
        Ok(())
    })?;
    Ok((kind, unit))
}

/// Calls `visit` with each field of a message, in order.
fn each_field<'a>(bytes: &'a [u8], mut visit: impl FnMut(u32, Value<'a>) -> Result<(), String>) -> Result<(), String> {
    let mut wire = Wire::new(bytes);
    while let Some((number, value)) = wire.next()? {
        visit(number, value)?;
    }
    Ok(())
}

/// A protobuf wire-format reader over a byte slice; every read is bounds-checked.
struct Wire<'a> {
    data: &'a [u8],
    position: usize,
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Value<'a> {
    fn int(&self) -> Result<u64, String> {
        match self {
            Value::Varint(v) => Ok(*v),
            _ => Err("a number field has the wrong wire type".into()),
        }
    }

    fn bytes(&self) -> Result<&'a [u8], String> {
        match self {
            Value::Bytes(b) => Ok(b),
            _ => Err("a message field has the wrong wire type".into()),
        }
    }

    /// A repeated number field, packed or not.
    fn repeated(&self, out: &mut Vec<u64>) -> Result<(), String> {
        match self {
            Value::Varint(v) => out.push(*v),
            Value::Bytes(b) => {
                let mut wire = Wire::new(b);
                while wire.position < b.len() {
                    out.push(wire.varint()?);
                }
            }
            Value::Fixed => return Err("a number field has the wrong wire type".into()),
        }
        Ok(())
    }
}

impl<'a> Wire<'a> {
    fn new(data: &'a [u8]) -> Self {
        Wire { data, position: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.data.get(self.position).ok_or("truncated protobuf (in a number)")?;
            self.position += 1;
            value |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("malformed protobuf (a number longer than 10 bytes)".into())
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], String> {
        let end = self.position.checked_add(length).filter(|&end| end <= self.data.len());
        let end = end.ok_or("truncated protobuf (a field runs past the end)")?;
        let slice = &self.data[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn next(&mut self) -> Result<Option<(u32, Value<'a>)>, String> {
        if self.position >= self.data.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| "malformed protobuf (field number)".to_string())?;
        if number == 0 {
            return Err("malformed protobuf (field number 0)".into());
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let length = usize::try_from(self.varint()?).map_err(|_| "malformed protobuf (length)".to_string())?;
                Value::Bytes(self.take(length)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            other => return Err(format!("malformed protobuf (wire type {other})")),
        };
        Ok(Some((number, value)))
    }
}
