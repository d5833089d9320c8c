/* A process whose main thread ends (pthread_exit in main) while another
 * thread burns CPU in spin() for SECONDS (default 3): its main thread is then
 * a zombie whose /proc maps are empty, yet the process runs on. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static double seconds;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

__attribute__((noinline)) static void *spin(void *unused) {
    (void)unused;
    volatile unsigned long sum = 0;
    double end = now() + seconds;
    while (now() < end)
        for (int i = 0; i < 100000; i++)
            sum += i;
    return NULL;
}

int main(int argc, char **argv) {
    seconds = argc > 1 ? atof(argv[1]) : 3;
    pthread_t thread;
    if (pthread_create(&thread, NULL, spin, NULL) != 0)
        return 1;
    pthread_exit(NULL);
}
