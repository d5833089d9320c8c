//! The prost messages against hand-made wire bytes, malformed and oversized
//! inputs. (Round trips through the writer, and `go tool pprof` reading it,
//! are in `analysis/tests.rs`.)
use std::{io::Write, time::Instant};

use flate2::{Compression, write::GzEncoder};
use prost::Message;

use super::{
    budget::{self, decoded_size, decoded_size_of},
    parse_pprof, proto,
};
use crate::{
    formats::{self, Context, Palette, SvgOptions},
    profile::{Frame, FrameKind, Profile, Unit},
};

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

/// One sample of 3 at `main` (location 1, function 1, mapping 1).
fn small() -> proto::Profile {
    proto::Profile {
        sample_type: vec![proto::ValueType { r#type: 1, unit: 2 }],
        sample: vec![proto::Sample { location_id: vec![1], value: vec![3] }],
        mapping: vec![proto::Mapping { id: 1, filename: 4, ..Default::default() }],
        location: vec![proto::Location {
            id: 1,
            mapping_id: 1,
            line: vec![proto::Line { function_id: 1, line: 7, ..Default::default() }],
            ..Default::default()
        }],
        function: vec![proto::Function { id: 1, name: 3, ..Default::default() }],
        string_table: strings(&["", "samples", "count", "main", "/usr/bin/app"]),
        ..Default::default()
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
    gzip.write_all(bytes).unwrap();
    gzip.finish().unwrap()
}

#[test]
fn a_hand_made_profile_reads_back() {
    let loaded = parse_pprof(&small().encode_to_vec()).unwrap();
    assert_eq!(loaded.profile.unit, Unit::Samples { frequency_hz: 0 });
    let frame = Frame {
        name: "main".into(),
        kind: FrameKind::User,
        module: Some("app".into()),
        file: None,
        line: Some(7),
        inlined: false,
    };
    assert_eq!(loaded.profile.stacks.into_iter().collect::<Vec<_>>(), vec![(vec![frame.into()], 3)]);
}

#[test]
fn a_negative_sample_value_is_an_error_not_a_huge_weight() {
    let mut profile = small();
    profile.sample[0].value = vec![-3];
    let error = parse_pprof(&profile.encode_to_vec()).unwrap_err();
    assert!(error.contains("negative value -3"), "{error}");
}

#[test]
fn a_string_index_out_of_range_is_an_error() {
    for index in [5, 1 << 40, -1] {
        let mut profile = small();
        profile.function[0].name = index;
        let error = parse_pprof(&profile.encode_to_vec()).unwrap_err();
        assert_eq!(error, format!("string index {index} is out of range"));
    }
    let mut profile = small();
    profile.comment = vec![99];
    assert!(parse_pprof(&profile.encode_to_vec()).unwrap_err().contains("string index 99"));
    let mut profile = small();
    profile.string_table.clear();
    assert!(parse_pprof(&profile.encode_to_vec()).is_err());
}

#[test]
fn ids_out_of_range_are_errors() {
    let mut profile = small();
    profile.sample[0].location_id = vec![2];
    assert_eq!(parse_pprof(&profile.encode_to_vec()).unwrap_err(), "a sample names location 2, which is missing");
    let mut profile = small();
    profile.location[0].mapping_id = 9;
    assert_eq!(parse_pprof(&profile.encode_to_vec()).unwrap_err(), "mapping 9 is missing");
    let mut profile = small();
    profile.location[0].line[0].function_id = u64::MAX;
    assert_eq!(parse_pprof(&profile.encode_to_vec()).unwrap_err(), format!("function {} is missing", u64::MAX));
    let mut profile = small();
    profile.sample[0].value.push(1);
    assert_eq!(parse_pprof(&profile.encode_to_vec()).unwrap_err(), "a sample has 2 values for 1 sample types");
}

#[test]
fn a_truncated_protobuf_is_an_error() {
    let bytes = small().encode_to_vec();
    // Inside the first field (sample_type, 4 bytes of body).
    assert_eq!(&bytes[..2], &[0x0a, 0x04]);
    for end in 1..6 {
        let error = parse_pprof(&bytes[..end]).unwrap_err();
        assert!(error.contains("truncated") || error.contains("malformed"), "{end}: {error}");
    }
    // Inside the last string of the table, and a length that runs past the end.
    let error = parse_pprof(&bytes[..bytes.len() - 1]).unwrap_err();
    assert!(error.contains("truncated"), "{error}");
    let error = parse_pprof(&[0x32, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, b'a']).unwrap_err();
    assert!(error.contains("truncated"), "{error}");
    // Every prefix: an error or (at a field boundary) a profile, never a panic.
    for end in 0..bytes.len() {
        let _ = parse_pprof(&bytes[..end]);
    }
    // Wire types that do not fit the field are prost's errors.
    assert!(parse_pprof(&[0x12, 0x01, 0x0d, 0, 0, 0, 0]).is_err());
    assert!(parse_pprof(&[0x10, 0x01]).is_err());
}

/// The size check counts what prost decodes: unpacked and packed numbers,
/// lines, strings, comments; labels and unknown fields count nothing. (A
/// wrong tag number in `proto::tag` would make the two differ.)
#[test]
fn the_size_check_counts_what_prost_decodes() {
    let svg = SvgOptions {
        title: "t".into(),
        width: 1200,
        min_width: 0.1,
        inverted: false,
        reverse: false,
        palette: Palette::Kernel,
    };
    let mut written = Profile::new(Unit::Samples { frequency_hz: 99 });
    let user = |name: &str, inlined| Frame {
        name: name.into(),
        kind: FrameKind::User,
        module: Some("app".into()),
        file: Some("a.rs".into()),
        line: Some(3),
        inlined,
    };
    written.add(vec![Frame::task("app"), user("main", false), user("inner", true), user("leaf", false)], 5);
    written.add(vec![Frame::task("app"), user("main", false)], 2);
    let mut bytes = formats::pprof::encode(&written, &Context::minimal(&svg, "health"));
    // A sample with an unpacked location id and values, and a label (field 3).
    bytes.extend_from_slice(&[0x12, 0x0c, 0x08, 0x01, 0x10, 0x05, 0x10, 0x05, 0x1a, 0x04, 0x08, 0x01, 0x10, 0x02]);
    // An unpacked comment, an unknown varint field, an unknown group.
    bytes.extend_from_slice(&[0x68, 0x01, 0xf8, 0x01, 0x07, 0xa3, 0x01, 0x08, 0x01, 0xa4, 0x01]);
    let decoded = proto::Profile::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded.sample.len(), 3);
    assert_eq!(decoded.comment.len(), 3);
    assert_eq!(decoded_size(&bytes).unwrap(), decoded_size_of(&decoded));
    let loaded = parse_pprof(&bytes).unwrap();
    assert_eq!(loaded.profile.total(), 5 + 2 + 5);
}

/// 20 million empty samples: 40 MB of protobuf, under 200 KB gzipped, 1-2 GB
/// once decoded. Refused before decoding.
#[test]
fn a_profile_too_large_once_decoded_is_refused_before_decoding() {
    let mut bytes = small().encode_to_vec();
    bytes.extend(std::iter::repeat_n([0x12, 0x00], 20_000_000).flatten());
    let compressed = gzip(&bytes);
    assert!(compressed.len() < 200_000, "{}", compressed.len());
    let size = decoded_size(&bytes).unwrap();
    assert!(size > budget::MAX_DECODED && size < 2 * budget::MAX_DECODED, "{size}");
    let start = Instant::now();
    let error = formats::parse(&compressed).unwrap_err();
    assert!(error.starts_with("the profile is too large to read: decoded, it would take"), "{error}");
    assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    // Fewer of them decode (and are malformed: no values).
    bytes.truncate(bytes.len() - 2 * (20_000_000 - 100_000));
    assert!(decoded_size(&bytes).unwrap() < budget::MAX_DECODED / 100);
    assert_eq!(parse_pprof(&bytes).unwrap_err(), "a sample has 0 values for 1 sample types");
}

/// Small files whose strings are copied many times over: a 1 MB name in
/// every frame of a stack, a 1 MB comment many times.
#[test]
fn a_profile_that_builds_too_much_is_refused_while_building() {
    let mut frames = small();
    frames.string_table[3] = "f".repeat(1 << 20);
    frames.sample[0].location_id = vec![1; 2000];
    let error = formats::parse(&gzip(&frames.encode_to_vec())).unwrap_err();
    assert!(error.starts_with("the profile is too large to read: its stacks and strings"), "{error}");

    let mut comments = small();
    comments.string_table[3] = "c".repeat(1 << 20);
    comments.comment = vec![3; 2000];
    let error = formats::parse(&gzip(&comments.encode_to_vec())).unwrap_err();
    assert!(error.starts_with("the profile is too large to read: its stacks and strings"), "{error}");
}
