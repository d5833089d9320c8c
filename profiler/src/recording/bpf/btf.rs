//! Reads member offsets of kernel structs from the kernel's BTF
//! (/sys/kernel/btf/vmlinux). BPF programs written in Rust get no CO-RE
//! relocations, so the offsets they need are looked up here at run time and
//! handed to them through the CONFIG map: one binary works on any kernel with BTF.
use std::{fs, path::Path};

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_PTR: u32 = 2;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_FUNC_PROTO: u32 = 13;
/// Anonymous structs and unions nested this deep are searched for a member
/// (vm_area_struct's `vm_flags` is in an anonymous union since Linux 6.3).
const MAX_NESTING: u32 = 3;

/// Byte offsets of named members of one struct.
pub fn member_offsets(btf_path: &Path, struct_name: &str, members: &[&str]) -> Result<Vec<u32>, String> {
    Ok(members_of(btf_path, &[(struct_name, members)])?.remove(0))
}

/// Byte offsets of named members of several structs (one read of the BTF):
/// one list per (struct, members) query.
pub fn members_of(btf_path: &Path, queries: &[(&str, &[&str])]) -> Result<Vec<Vec<u32>>, String> {
    let data = fs::read(btf_path).map_err(|e| format!("cannot read {}: {e}", btf_path.display()))?;
    members_in(&data, queries)
}

/// How many arguments the BTF tracepoint `tracepoint` (`tp_btf/NAME`)
/// passes its programs: the parameters of the kernel's `btf_trace_NAME`
/// after its leading `void *`. Tracepoints gain arguments over releases
/// (sched_switch's `prev_state`, Linux 5.18).
pub fn tracepoint_arguments(btf_path: &Path, tracepoint: &str) -> Result<usize, String> {
    let data = fs::read(btf_path).map_err(|e| format!("cannot read {}: {e}", btf_path.display()))?;
    tracepoint_arguments_in(&data, tracepoint)
}

/// [`tracepoint_arguments`] on the BTF's bytes.
pub(crate) fn tracepoint_arguments_in(data: &[u8], tracepoint: &str) -> Result<usize, String> {
    Btf::parse(data)?.tracepoint_arguments(tracepoint)
}

/// [`members_of`] on the BTF's bytes.
pub(crate) fn members_in(data: &[u8], queries: &[(&str, &[&str])]) -> Result<Vec<Vec<u32>>, String> {
    let btf = Btf::parse(data)?;
    queries.iter().map(|(name, members)| btf.member_offsets(name, members)).collect()
}

struct Btf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Btf<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, String> {
        let malformed = || "malformed kernel BTF".to_string();
        let magic = u16::from_le_bytes(data.get(0..2).ok_or_else(malformed)?.try_into().unwrap());
        if magic != BTF_MAGIC {
            return Err("kernel BTF has an unknown format (not little-endian BTF)".into());
        }
        let hdr_len = u32_at(data, 4).ok_or_else(malformed)? as usize;
        let field = |at| u32_at(data, at).map(|v| v as usize).ok_or_else(malformed);
        let (type_off, type_len, str_off, str_len) = (field(8)?, field(12)?, field(16)?, field(20)?);
        let section = |off: usize, len: usize| data.get(hdr_len + off..hdr_len + off + len).ok_or_else(malformed);
        Ok(Self { types: section(type_off, type_len)?, strings: section(str_off, str_len)? })
    }

    fn name(&self, offset: u32) -> &[u8] {
        let rest = self.strings.get(offset as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    fn member_offsets(&self, struct_name: &str, members: &[&str]) -> Result<Vec<u32>, String> {
        let offsets = self.type_offsets()?;
        for &at in &offsets {
            let is_struct = self.header(at).is_some_and(|(kind, ..)| kind == KIND_STRUCT);
            if is_struct && u32_at(self.types, at).is_some_and(|name| self.name(name) == struct_name.as_bytes()) {
                return members
                    .iter()
                    .map(|member| {
                        self.find_member(&offsets, at, member, MAX_NESTING)
                            .ok_or_else(|| format!("the kernel's struct {struct_name} has no member {member}"))
                    })
                    .collect();
            }
        }
        Err(format!("the kernel's BTF has no struct {struct_name}"))
    }

    /// (kind, vlen, the `type` word) of the type at byte `at`.
    fn header(&self, at: usize) -> Option<(u32, usize, u32)> {
        let info = u32_at(self.types, at + 4)?;
        Some(((info >> 24) & 0x1f, (info & 0xffff) as usize, u32_at(self.types, at + 8)?))
    }

    /// Byte offset of each type, in id order (type id N is at index N - 1).
    fn type_offsets(&self) -> Result<Vec<usize>, String> {
        let mut offsets = Vec::new();
        let mut at = 0;
        while at + 12 <= self.types.len() {
            offsets.push(at);
            let (kind, vlen, _) = self.header(at).ok_or("malformed kernel BTF")?;
            at += 12 + extra_bytes(kind, vlen).ok_or("kernel BTF has a type kind unknown to flameprof")?;
        }
        Ok(offsets)
    }

    fn tracepoint_arguments(&self, tracepoint: &str) -> Result<usize, String> {
        let offsets = self.type_offsets()?;
        let typedef = format!("btf_trace_{tracepoint}");
        let no_such = || format!("the kernel's BTF has no tracepoint {tracepoint} ({typedef})");
        let &at = offsets
            .iter()
            .find(|&&at| {
                self.header(at).is_some_and(|(kind, ..)| kind == KIND_TYPEDEF)
                    && u32_at(self.types, at).is_some_and(|name| self.name(name) == typedef.as_bytes())
            })
            .ok_or_else(no_such)?;
        let of_id = |id: u32| id.checked_sub(1).and_then(|index| offsets.get(index as usize)).copied();
        // btf_trace_NAME is a typedef of a pointer to the function prototype.
        let (_, _, pointer) = self.header(at).ok_or_else(no_such)?;
        let (kind, _, prototype) = of_id(pointer).and_then(|at| self.header(at)).ok_or_else(no_such)?;
        match of_id(prototype).and_then(|at| self.header(at)) {
            Some((KIND_FUNC_PROTO, parameters, _)) if kind == KIND_PTR && parameters > 0 => Ok(parameters - 1),
            _ => Err(no_such()),
        }
    }

    /// Byte offset of `member` in the struct or union at `at`, looking into
    /// its anonymous struct and union members `depth` levels down.
    fn find_member(&self, offsets: &[usize], at: usize, member: &str, depth: u32) -> Option<u32> {
        let info = u32_at(self.types, at + 4)?;
        let (vlen, kflag) = ((info & 0xffff) as usize, info >> 31);
        for i in 0..vlen {
            let m = at + 12 + i * 12;
            let (name_off, type_id, offset) =
                (u32_at(self.types, m)?, u32_at(self.types, m + 4)?, u32_at(self.types, m + 8)?);
            let bytes = if kflag == 1 { offset & 0xff_ffff } else { offset } / 8;
            if self.name(name_off) == member.as_bytes() {
                return Some(bytes);
            }
            let nested = offsets.get((type_id as usize).wrapping_sub(1)).copied();
            let anonymous = |at: usize| {
                name_off == 0 && self.header(at).is_some_and(|(kind, ..)| matches!(kind, KIND_STRUCT | KIND_UNION))
            };
            if let Some(nested) = nested.filter(|&at| depth > 0 && anonymous(at))
                && let Some(inner) = self.find_member(offsets, nested, member, depth - 1)
            {
                return Some(bytes + inner);
            }
        }
        None
    }
}

/// Bytes that follow the 12-byte common header of a BTF type of `kind`.
fn extra_bytes(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        1 => 4,                    // INT
        2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
        3 => 12,                   // ARRAY
        4 | 5 => 12 * vlen,        // STRUCT, UNION
        6 => 8 * vlen,             // ENUM
        13 => 8 * vlen,            // FUNC_PROTO
        14 => 4,                   // VAR
        15 => 12 * vlen,           // DATASEC
        17 => 4,                   // DECL_TAG
        19 => 12 * vlen,           // ENUM64
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_task_struct_pid_and_tgid_in_this_kernel() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        let offsets = member_offsets(path, "task_struct", &["pid", "tgid"]).unwrap();
        // pid_t pid; pid_t tgid; are adjacent in every kernel since 2.6.
        assert_eq!(offsets[1], offsets[0] + 4);
        assert!(offsets[0] > 0);
    }

    #[test]
    fn finds_the_cpu_time_of_a_task_in_this_kernel() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        let found =
            members_of(path, &[("task_struct", &["se"]), ("sched_entity", &["sum_exec_runtime", "load"])]).unwrap();
        assert!(found[0][0] > 0);
        // sum_exec_runtime is a u64 well inside sched_entity, after its load weight.
        assert!(found[1][0] > found[1][1] && found[1][0].is_multiple_of(8), "{found:?}");
    }

    #[test]
    fn sched_switch_passes_prev_state_in_this_kernel() {
        // This machine runs Linux 6.18: preempt, prev, next, prev_state.
        let path = Path::new("/sys/kernel/btf/vmlinux");
        assert_eq!(tracepoint_arguments(path, "sched_switch"), Ok(4));
        assert_eq!(tracepoint_arguments(path, "sched_process_fork"), Ok(2));
        assert!(tracepoint_arguments(path, "no_such_tracepoint").is_err());
    }

    #[test]
    fn finds_members_inside_anonymous_unions_in_this_kernel() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        let found = member_offsets(path, "vm_area_struct", &["vm_start", "vm_mm", "vm_flags", "vm_file"]).unwrap();
        // vm_start opens the struct; the others are pointers and a word after it.
        assert_eq!(found[0], 0, "{found:?}");
        assert!(found[1..].iter().all(|&offset| offset > 0 && offset.is_multiple_of(8)), "{found:?}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Btf::parse(b"not btf at all").is_err());
        let mut truncated = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
        truncated.extend_from_slice(&[0xff; 16]);
        assert!(Btf::parse(&truncated).is_err());
        assert!(tracepoint_arguments_in(&truncated, "sched_switch").is_err());
    }
}
