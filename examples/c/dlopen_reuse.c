/* dlopen_reuse LIB_A LIB_B ROUNDS SECONDS_A SECONDS_B: each round dlopens
 * LIB_A, burns SECONDS_A of CPU in its busy_in_liba, dlcloses it, then does
 * the same with LIB_B and busy_in_libb. The two libraries have the same size
 * and layout (examples/c/dl_busy.c), so the loader maps each where the other
 * was: one address range holds A's code, then B's, then A's again. Prints
 * where each was loaded ("liba at 0x..."); exits with 3 when B did not land
 * at A's address (a test of address reuse would prove nothing). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*busy_fn)(double);

/* Loads `path`, runs its `symbol` for `seconds`, unloads it; returns its base. */
static void *run_in(const char *path, const char *symbol, double seconds) {
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        exit(1);
    }
    busy_fn busy = (busy_fn)dlsym(handle, symbol);
    Dl_info info;
    if (!busy || !dladdr((void *)busy, &info)) {
        fprintf(stderr, "%s: no %s\n", path, symbol);
        exit(1);
    }
    busy(seconds);
    if (dlclose(handle) != 0) {
        fprintf(stderr, "dlclose %s: %s\n", path, dlerror());
        exit(1);
    }
    return info.dli_fbase;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s LIB_A LIB_B ROUNDS SECONDS_A SECONDS_B\n", argv[0]);
        return 2;
    }
    int rounds = atoi(argv[3]);
    int reused = 1;
    for (int round = 0; round < rounds; round++) {
        void *a = run_in(argv[1], "busy_in_liba", atof(argv[4]));
        void *b = run_in(argv[2], "busy_in_libb", atof(argv[5]));
        printf("round %d: liba at %p, libb at %p\n", round, a, b);
        reused &= a == b;
    }
    fflush(stdout);
    return reused ? 0 : 3;
}
