//! What a leaf function's call-frame information says about a frame-pointer
//! walk from it: whether the walk went through its caller, and if not,
//! where the return address into that caller is.

use super::{CfaBase, CodeLocator, RuleCache};

/// The leaf frame of a stack, as a frame-pointer walk sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafFrame {
    /// The frame is set up (its CFA is rbp-based): rbp points into it and a
    /// frame-pointer walk found the caller.
    Established,
    /// The CFA is `sp + n` (the function keeps no frame pointer, or has not
    /// set it up yet): rbp is still the caller's, and a frame-pointer walk
    /// skipped the caller. Its return address is at `sp + return_address_at`.
    NotEstablished { return_address_at: u64 },
    /// The outermost frame (`_start`): there is no caller.
    Outermost,
    /// No call-frame information covers the address.
    Unknown,
}

pub(crate) fn leaf_frame(locator: &mut impl CodeLocator, cache: &mut RuleCache, ip: u64) -> LeafFrame {
    let Some(rule) = cache.rule(locator, ip) else { return LeafFrame::Unknown };
    let Some(at) = rule.return_address_at else { return LeafFrame::Outermost };
    match rule.cfa_base {
        CfaBase::Bp => LeafFrame::Established,
        CfaBase::Sp => match u64::try_from(rule.cfa_offset + at) {
            Ok(return_address_at) => LeafFrame::NotEstablished { return_address_at },
            Err(_) => LeafFrame::Unknown,
        },
    }
}
