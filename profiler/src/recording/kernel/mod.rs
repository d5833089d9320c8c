//! What the running kernel offers, checked before loading programs that
//! would otherwise fail with a verifier message (`features`), and where its
//! interrupt entry code lies.
pub mod features;
mod map_probe;

/// Kernel addresses [start, end) of the hardware-interrupt entry code
/// (x86-64: from the first of `asm_common_interrupt`, `asm_spurious_interrupt`
/// and the `asm_sysvec_*` entries to `__irqentry_text_end`; the exception
/// entries before them, page faults included, run in the task's context).
/// A waker whose kernel stack passes through it is an interrupt. None when
/// kallsyms shows no addresses or the symbols are not there (other
/// architectures): interrupt wakeups then keep the user stack of the task
/// they interrupted.
pub fn interrupt_entry_range() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    interrupt_entry_range_in(&text)
}

fn interrupt_entry_range_in(kallsyms: &str) -> Option<(u64, u64)> {
    let (mut start, mut end) = (None::<u64>, None);
    for line in kallsyms.lines() {
        let mut fields = line.split_whitespace();
        let (Some(address), Some(_kind), Some(name)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let Ok(address) = u64::from_str_radix(address, 16) else { continue };
        if name == "__irqentry_text_end" {
            end = Some(address);
        } else if name == "asm_common_interrupt" || name == "asm_spurious_interrupt" || name.starts_with("asm_sysvec_")
        {
            start = Some(start.map_or(address, |s| s.min(address)));
        }
    }
    match (start, end) {
        (Some(start), Some(end)) if start != 0 && start < end => Some((start, end)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::interrupt_entry_range_in;

    #[test]
    fn interrupt_entry_starts_after_the_exception_entries() {
        let kallsyms = "ffffffff81000300 T __irqentry_text_start\n\
                        ffffffff81000400 T asm_exc_page_fault\n\
                        ffffffff81000900 T asm_common_interrupt\n\
                        ffffffff81000a00 T asm_sysvec_apic_timer_interrupt\n\
                        ffffffff81000f70 T __irqentry_text_end\n";
        assert_eq!(interrupt_entry_range_in(kallsyms), Some((0xffffffff81000900, 0xffffffff81000f70)));
        // kptr_restrict hides addresses: no range.
        let hidden = "0000000000000000 T asm_common_interrupt\n0000000000000000 T __irqentry_text_end\n";
        assert_eq!(interrupt_entry_range_in(hidden), None);
    }
}
