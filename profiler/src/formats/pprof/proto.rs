//! pprof's protobuf messages, written by hand for prost's derive (no protoc,
//! no build script). Field names, numbers and types are those of
//! github.com/google/pprof/blob/main/proto/profile.proto (proto3 `perftools.profiles`);
//! change one only together with that file.
//!
//! Left out, because flameprof neither writes nor reads them: `Sample.label`
//! (field 3) and its `Label` message. prost skips unknown fields without
//! storing them, so a profile's labels cost nothing to read.

#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    /// One per value in each sample.
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    /// Every string of the profile; the other messages hold indices into it.
    /// `string_table[0]` must be "".
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    /// String index: a regex of frames to drop.
    #[prost(int64, tag = "7")]
    pub drop_frames: i64,
    /// String index: a regex of frames to keep.
    #[prost(int64, tag = "8")]
    pub keep_frames: i64,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    /// String indices.
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    /// String index: the type of `sample_type` shown by default.
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
    /// String index.
    #[prost(int64, tag = "15")]
    pub doc_url: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueType {
    /// String index.
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    /// String index.
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Leaf first.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    /// One per `Profile::sample_type`.
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Mapping {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    /// String index.
    #[prost(int64, tag = "5")]
    pub filename: i64,
    /// String index.
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// 0: no mapping.
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub address: u64,
    /// The innermost inlined function first, the caller last.
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
    #[prost(int64, tag = "3")]
    pub column: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// String index: the name shown.
    #[prost(int64, tag = "2")]
    pub name: i64,
    /// String index: the name as in the binary (flameprof: its folded label).
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    /// String index: the source file.
    #[prost(int64, tag = "4")]
    pub filename: i64,
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}

/// The numbers of the repeated fields, for the size check that runs before
/// decoding (`budget.rs`): the same as in the attributes above (prost takes
/// only literals there); `the_size_check_counts_what_prost_decodes` fails if
/// they differ.
pub mod tag {
    pub const PROFILE_SAMPLE_TYPE: u32 = 1;
    pub const PROFILE_SAMPLE: u32 = 2;
    pub const PROFILE_MAPPING: u32 = 3;
    pub const PROFILE_LOCATION: u32 = 4;
    pub const PROFILE_FUNCTION: u32 = 5;
    pub const PROFILE_STRING_TABLE: u32 = 6;
    pub const PROFILE_COMMENT: u32 = 13;
    pub const SAMPLE_LOCATION_ID: u32 = 1;
    pub const SAMPLE_VALUE: u32 = 2;
    pub const LOCATION_LINE: u32 = 4;
}
