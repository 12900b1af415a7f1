/* Shows that no malloc-family call creates a thread: pthread_create is interposed (this
 * executable is linked with -rdynamic, so the preloaded allocator's own calls resolve here)
 * and every call is counted. Phase 1 is single-threaded and exercises every path that used to
 * start lhalloc's purger (pages freed and pooled, several segments, large blocks, the purge
 * delay passing, malloc_trim); phase 2 creates 4 threads itself and checks that exactly those
 * 4 were created. Exit 0 and "ok" on success.
 *
 * argv[1] = expected number of threads created before main (0, or 1 with LHALLOC_BACKGROUND=1).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int created;

int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg) {
    static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (!real) real = dlsym(RTLD_NEXT, "pthread_create");
    atomic_fetch_add(&created, 1);
    return real(t, a, f, arg);
}

static int tasks(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while ((e = readdir(d)) != NULL) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void churn(unsigned seed, int rounds) {
    enum { N = 4096 };
    static __thread void *keep[N];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < N; i++) {
            seed = seed * 1103515245u + 12345u;
            size_t sz = (seed >> 8) % 64 == 0 ? 200000 + (seed % 3) * 100000
                      : (seed >> 8) % 16 == 0 ? 20000 + seed % 40000
                      : 16 + (seed >> 4) % 2000;
            free(keep[i]);
            switch (seed % 5) {
            case 0: keep[i] = calloc(1, sz); break;
            case 1: keep[i] = realloc(malloc(sz / 2 + 1), sz); break;
            case 2: { void *p = NULL; if (posix_memalign(&p, 64, sz) == 0) keep[i] = p; else keep[i] = NULL; break; }
            default: keep[i] = malloc(sz);
            }
            if (keep[i]) memset(keep[i], (int)r, sz < 64 ? sz : 64);
        }
    }
    for (int i = 0; i < N; i++) { free(keep[i]); keep[i] = NULL; }
}

static void *worker(void *arg) {
    churn((unsigned)(size_t)arg, 5);
    return NULL;
}

int main(int argc, char **argv) {
    int before_main = atomic_load(&created);
    int expect = argc > 1 ? atoi(argv[1]) : 0;
    if (before_main != expect) { fprintf(stderr, "threads created before main: %d, expected %d\n", before_main, expect); return 1; }
    int tasks0 = tasks();
    /* Phase 1: one thread, every path, with the purge delay (10 ms, from the environment)
     * passing several times. */
    for (int k = 0; k < 6; k++) {
        churn(k + 1, 3);
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL);
        void *big = malloc(5 << 20); memset(big, 1, 5 << 20); free(big);
        malloc_trim(0);
    }
    if (atomic_load(&created) != before_main) { fprintf(stderr, "a malloc-family call created %d thread(s)\n", atomic_load(&created) - before_main); return 1; }
    if (tasks() != tasks0) { fprintf(stderr, "task count changed: %d -> %d\n", tasks0, tasks()); return 1; }
    /* Phase 2: our own 4 threads, cross-thread frees included. */
    pthread_t th[4];
    for (long i = 0; i < 4; i++) if (pthread_create(&th[i], NULL, worker, (void *)(i + 10))) return 1;
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    if (atomic_load(&created) != before_main + 4) { fprintf(stderr, "created %d threads, expected 4\n", atomic_load(&created) - before_main); return 1; }
    puts("ok");
    return 0;
}
