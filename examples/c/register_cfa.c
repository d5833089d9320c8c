/* Frames whose call-frame information takes the CFA from a register other
 * than rsp and rbp, written by hand (.cfi directives in file-scope asm), as
 * real code has them; the profile is known by construction.
 *
 *   register_cfa SECONDS   main -> burn, for SECONDS, alternating between
 *     - probe_loop: a leaf whose CFA is r11 + 8 while it runs (as Rust's
 *       inline stack probes for large frames: `mov %rsp,%r11;
 *       .cfi_def_cfa_register %r11`), spinning there;
 *     - aligned_frame: a frame whose CFA is rbx + 16 after it aligns the
 *       stack (as ld.so's lazy-binding trampolines `_dl_runtime_resolve_*`),
 *       calling under_aligned_frame, which saves rbx and uses it itself;
 *     - r11_frame: a frame whose CFA is r11 + 8 calling r11_callee: r11 is
 *       caller-saved, so no walk can know it there (the stacks end at a bad
 *       frame, counted).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NOINLINE __attribute__((noinline))

static volatile uint64_t sink;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t probe_loop(uint64_t rounds);
uint64_t aligned_frame(uint64_t rounds);
uint64_t r11_frame(uint64_t rounds);

/* rounds of xorshift, in a frame of its own; saves and uses rbx (the asm
 * clobbers it), so that a walk must follow where rbx was saved to find
 * aligned_frame's CFA. */
NOINLINE uint64_t under_aligned_frame(uint64_t rounds) {
    uint64_t x = rounds | 1;
    for (uint64_t i = 0; i < rounds; i++) {
        __asm__ volatile(
            "mov %0, %%rbx\n\t"
            "shl $13, %%rbx\n\t"
            "xor %%rbx, %0\n\t"
            "mov %0, %%rbx\n\t"
            "shr $7, %%rbx\n\t"
            "xor %%rbx, %0"
            : "+r"(x)
            :
            : "rbx");
    }
    return x;
}

NOINLINE uint64_t r11_callee(uint64_t rounds) {
    uint64_t x = rounds | 1;
    for (uint64_t i = 0; i < rounds; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

__asm__(
    /* A stack probe as LLVM emits it for a large frame: r11 keeps the stack
     * pointer at entry while rsp goes down; here it spins in the probe loop
     * itself, rdi times. */
    "	.text\n"
    "	.globl probe_loop\n"
    "	.type probe_loop, @function\n"
    "probe_loop:\n"
    "	.cfi_startproc\n"
    "	mov %rsp, %r11\n"
    "	.cfi_def_cfa_register %r11\n"
    "	sub $4096, %rsp\n"
    "	xor %eax, %eax\n"
    "1:	movq $0, (%rsp)\n"
    "	add $1, %rax\n"
    "	cmp %rdi, %rax\n"
    "	jb 1b\n"
    "	mov %r11, %rsp\n"
    "	.cfi_def_cfa_register %rsp\n"
    "	ret\n"
    "	.cfi_endproc\n"
    "	.size probe_loop, .-probe_loop\n"

    /* ld.so's trampoline in short: save rbx, keep the entry stack pointer
     * in it, align the stack, call; the CFA is rbx + 16 meanwhile. */
    "	.globl aligned_frame\n"
    "	.type aligned_frame, @function\n"
    "aligned_frame:\n"
    "	.cfi_startproc\n"
    "	push %rbx\n"
    "	.cfi_adjust_cfa_offset 8\n"
    "	.cfi_rel_offset %rbx, 0\n"
    "	mov %rsp, %rbx\n"
    "	.cfi_def_cfa_register %rbx\n"
    "	and $-64, %rsp\n"
    "	sub $192, %rsp\n"
    "	call under_aligned_frame\n"
    "	mov %rbx, %rsp\n"
    "	.cfi_def_cfa_register %rsp\n"
    "	pop %rbx\n"
    "	.cfi_adjust_cfa_offset -8\n"
    "	.cfi_restore %rbx\n"
    "	ret\n"
    "	.cfi_endproc\n"
    "	.size aligned_frame, .-aligned_frame\n"

    /* A CFA from r11 across a call: nothing tells the walker r11's value
     * in this frame once its callee ran. */
    "	.globl r11_frame\n"
    "	.type r11_frame, @function\n"
    "r11_frame:\n"
    "	.cfi_startproc\n"
    "	mov %rsp, %r11\n"
    "	.cfi_def_cfa_register %r11\n"
    "	sub $24, %rsp\n"
    "	mov %r11, 8(%rsp)\n"
    "	call r11_callee\n"
    "	mov 8(%rsp), %r11\n"
    "	mov %r11, %rsp\n"
    "	.cfi_def_cfa_register %rsp\n"
    "	ret\n"
    "	.cfi_endproc\n"
    "	.size r11_frame, .-r11_frame\n");

NOINLINE static void burn(double seconds) {
    double end = now() + seconds;
    while (now() < end) {
        sink += probe_loop(2000000);
        sink += aligned_frame(2000000);
        sink += r11_frame(2000000);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SECONDS\n", argv[0]);
        return 2;
    }
    burn(atof(argv[1]));
    return (int)(sink & 1) * 0;
}
