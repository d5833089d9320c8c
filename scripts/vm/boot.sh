#!/usr/bin/env bash
# scripts/vm/boot.sh VMLINUZ INITRAMFS: boots a kernel with the initramfs in
# qemu and prints the guest's console until it powers off. This machine has
# no VT-x: plain emulation (TCG), one host thread per virtual CPU.
set -euo pipefail
kernel=${1:?usage: boot.sh VMLINUZ INITRAMFS}
initramfs=${2:?usage: boot.sh VMLINUZ INITRAMFS}
# mitigations=off: no page-table switch at each system call, which costs
# much under emulation; tsc=reliable: the TSC clock (read in the vDSO,
# without a system call) instead of the HPET the kernel would fall back to.
# Kernel parameters it does not know (CI=...) become the environment of
# the guest's init, hence of the tests.
append="console=ttyS0 panic=-1 quiet mitigations=off tsc=reliable"
[[ -n ${CI:-} ]] && append+=" CI=$CI"
# A guest that hangs is stopped; the subset takes minutes, not this long.
exec timeout "${FLAMEPROF_VM_TIMEOUT:-2400}" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp 2 -m 2G \
    -nodefaults -no-user-config -display none -serial stdio -no-reboot \
    -kernel "$kernel" -initrd "$initramfs" -append "$append" </dev/null
