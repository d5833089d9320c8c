/* One shared library, built twice with -DBUSY=busy_in_liba and
 * -DBUSY=busy_in_libb: two libraries of the same size and layout whose only
 * difference is the name of their busy function (dlopen_reuse.c loads one
 * where the other was). */
#include <time.h>

#ifndef BUSY
#error "build with -DBUSY=name"
#endif

static double thread_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Burns `seconds` of this thread's CPU time (not wall time: the share holds
 * on a loaded machine). */
__attribute__((noinline)) void BUSY(double seconds) {
    volatile unsigned long sum = 0;
    double end = thread_cpu_seconds() + seconds;
    while (thread_cpu_seconds() < end)
        for (int i = 0; i < 200000; i++)
            sum += i;
}
