/* Workloads for unwinding code built without frame pointers (-O2
 * -fomit-frame-pointer), whose profile is known by construction.
 *
 *   no_frame_pointers cpu SECONDS     main -> outer -> middle -> inner burns CPU,
 *                                     3/4 of it in inner_hot, 1/4 in inner_cold
 *   no_frame_pointers sleep N MS      main -> sleeper calls nanosleep itself, N times MS ms
 *   no_frame_pointers read N MS       main -> reader calls read(2) itself on a pipe a
 *                                     helper thread writes to every MS ms, N times
 *
 * sleep and read start with 0.1 s of CPU in warm_up: a profiler that loads
 * unwind tables for a new process needs a few ms to do so, and the waits
 * under test are meant to come after that (the summary counts stacks walked
 * before their process's tables were in).
 *   no_frame_pointers signal SECONDS  main -> victim spins; a SIGPROF handler
 *                                     (on_signal -> handler_work) burns CPU
 *   no_frame_pointers deep SECONDS    recursion 300 deep, 2 KiB of locals a frame,
 *                                     burning CPU at the bottom
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static volatile uint64_t sink;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double thread_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Work whose length does not depend on the compiler's cleverness. */
NOINLINE static uint64_t spin(uint64_t x, int rounds) {
    for (int i = 0; i < rounds; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

NOINLINE static uint64_t inner_hot(uint64_t x, int rounds) { return spin(x, 3 * rounds); }
NOINLINE static uint64_t inner_cold(uint64_t x, int rounds) { return spin(x + 1, rounds); }

NOINLINE static uint64_t middle(uint64_t x) {
    /* Locals that need a frame: the CFA is rsp-based and moves. */
    volatile uint64_t pad[8];
    for (int i = 0; i < 8; i++) pad[i] = x + i;
    /* Exactly 3:1 in every call, but calls of varying length (500..1499
     * rounds for the cold half): a fixed sampling period cannot lock onto
     * the loop's phase and favour one half for a whole run. */
    int rounds = 500 + (int)(x % 1000);
    x = inner_hot(x + pad[3], rounds);
    return inner_cold(x + pad[5], rounds);
}

NOINLINE static void outer(double seconds) {
    double end = now() + seconds;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    while (now() < end) x = middle(x);
    sink = x;
}

/* 0.1 s of this thread's CPU time, however busy the machine. */
NOINLINE static void warm_up(void) {
    double end = thread_cpu_now() + 0.1;
    uint64_t x = 7;
    while (thread_cpu_now() < end) x = spin(x, 100);
    sink += x;
}

NOINLINE static void sleeper(int times, int ms) {
    for (int i = 0; i < times; i++) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int pipe_fds[2];
static int write_times, write_ms;

static void *writer(void *unused) {
    (void)unused;
    for (int i = 0; i < write_times; i++) {
        struct timespec ts = {write_ms / 1000, (long)(write_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        char byte = 1;
        if (write(pipe_fds[1], &byte, 1) != 1) abort();
    }
    return NULL;
}

NOINLINE static void reader(int times) {
    for (int i = 0; i < times; i++) {
        char byte;
        if (read(pipe_fds[0], &byte, 1) != 1) abort();
    }
}

NOINLINE static uint64_t handler_work(uint64_t x) { return spin(x, 2000000); }

static void on_signal(int sig) {
    (void)sig;
    sink = handler_work(sink + 1);
}

NOINLINE static void victim(double seconds) {
    double end = now() + seconds;
    uint64_t x = 1;
    while (now() < end) x = spin(x, 100);
    sink += x;
}

NOINLINE static uint64_t recurse(int depth, uint64_t x, double end) {
    volatile char locals[2048];
    memset((char *)locals, (int)depth, sizeof locals);
    if (depth == 0) {
        while (now() < end) x = spin(x, 1000);
        return x;
    }
    return recurse(depth - 1, x + locals[depth % 2048], end) + locals[7];
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s cpu|sleep|read|signal|deep ARGS\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "cpu")) {
        outer(atof(argv[2]));
    } else if (!strcmp(mode, "sleep") && argc >= 4) {
        warm_up();
        sleeper(atoi(argv[2]), atoi(argv[3]));
    } else if (!strcmp(mode, "read") && argc >= 4) {
        warm_up();
        write_times = atoi(argv[2]);
        write_ms = atoi(argv[3]);
        if (pipe(pipe_fds)) abort();
        pthread_t thread;
        pthread_create(&thread, NULL, writer, NULL);
        reader(write_times);
        pthread_join(thread, NULL);
    } else if (!strcmp(mode, "signal")) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = on_signal;
        sigaction(SIGPROF, &action, NULL);
        /* A SIGPROF every 10 ms of CPU time. */
        struct itimerval timer = {{0, 10000}, {0, 10000}};
        setitimer(ITIMER_PROF, &timer, NULL);
        victim(atof(argv[2]));
    } else if (!strcmp(mode, "deep")) {
        sink = recurse(300, 1, now() + atof(argv[2]));
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
