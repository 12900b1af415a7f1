/* Long multi-threaded stress for an allocator under LD_PRELOAD: short-lived threads that start
 * and exit all the time, producer/consumer cross-thread frees through a shared ring, realloc
 * storms, calloc/posix_memalign, and a fork every few seconds whose child allocates from a
 * thread of its own. Every block carries a tag in its first and last byte, checked when it is
 * freed: a mismatch (corruption) exits 1. Runs for SECONDS (argv[1], default 10); prints
 * "ok <operations> <threads started> <forks>".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RING 4096
#define WORKERS 4

struct blk { size_t n; unsigned char tag; };
static void *volatile ring[RING];
static atomic_long ops, started, forks;
static atomic_int stop;
static atomic_int failed;

static uint64_t rng(uint64_t *s) { *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return *s; }

/* Blocks start with a header holding their size and tag; the last byte repeats the tag. */
static void *make(size_t n, unsigned char tag, int how) {
    if (n < sizeof(struct blk) + 1) n = sizeof(struct blk) + 1;
    void *p;
    switch (how % 3) {
    case 0: p = malloc(n); break;
    case 1: p = calloc(1, n); break;
    default: if (posix_memalign(&p, 64, n)) p = NULL;
    }
    if (!p) { atomic_store(&failed, 1); return NULL; }
    struct blk *b = p; b->n = n; b->tag = tag;
    ((unsigned char *)p)[n - 1] = tag;
    return p;
}

static void check_free(void *p) {
    if (!p) return;
    struct blk *b = p;
    if (((unsigned char *)p)[b->n - 1] != b->tag) {
        fprintf(stderr, "corrupt block %p (size %zu)\n", p, b->n);
        atomic_store(&failed, 1);
    }
    free(p);
}

static size_t pick(uint64_t *s) {
    uint64_t r = rng(s);
    if (r % 200 == 0) return 100000 + rng(s) % 900000;
    if (r % 20 == 0) return 4000 + rng(s) % 60000;
    return 17 + rng(s) % 1000;
}

static void realloc_storm(uint64_t *s) {
    size_t n = 24;
    unsigned char *p = make(n, 0x5a, 0);
    if (!p) return;
    size_t lim = 1000 + rng(s) % 400000;
    while (n < lim) {
        size_t m = n + n / 2 + rng(s) % 64;
        p = realloc(p, m);
        if (!p) { atomic_store(&failed, 1); return; }
        if (p[n - 1] != 0x5a) { fprintf(stderr, "realloc lost data\n"); atomic_store(&failed, 1); }
        memset(p + n, 0x5a, m - n);
        ((struct blk *)p)->n = m;
        n = m;
        if (rng(s) % 8 == 0) { /* shrink now and then */
            size_t k = n / 2 > sizeof(struct blk) + 1 ? n / 2 : n;
            p = realloc(p, k); ((struct blk *)p)->n = k; n = k; p[n - 1] = 0x5a;
        }
    }
    check_free(p);
}

static void *worker(void *arg) {
    uint64_t s = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    long life = 2000 + rng(&s) % 20000;
    void *local[64] = {0};
    for (long k = 0; k < life && !atomic_load(&stop); k++) {
        uint64_t r = rng(&s);
        if (r % 97 == 0) { realloc_storm(&s); continue; }
        void *p = make(pick(&s), (unsigned char)r, (int)(r >> 8));
        if (r % 2 == 0) {     /* producer/consumer: through the ring, freed by whoever comes next */
            void *old = __atomic_exchange_n(&ring[(r >> 16) % RING], p, __ATOMIC_ACQ_REL);
            check_free(old);
        } else {
            int i = (r >> 16) % 64;
            check_free(local[i]);
            local[i] = p;
        }
        atomic_fetch_add(&ops, 1);
    }
    for (int i = 0; i < 64; i++) check_free(local[i]);   /* some outlive nothing; ring ones outlive the thread */
    return NULL;
}

static void *child_worker(void *arg) {
    uint64_t s = 77;
    for (int i = 0; i < 2000; i++) check_free(make(pick(&s), 3, i));
    return arg;
}

static void *spawner(void *arg) {
    uintptr_t id = (uintptr_t)arg * 100000;
    while (!atomic_load(&stop)) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)(id++)) != 0) { atomic_store(&failed, 1); break; }
        atomic_fetch_add(&started, 1);
        pthread_join(t, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int secs = argc > 1 ? atoi(argv[1]) : 10;
    pthread_t sp[WORKERS];
    for (uintptr_t i = 0; i < WORKERS; i++) pthread_create(&sp[i], NULL, spawner, (void *)(i + 1));
    time_t end = time(NULL) + secs;
    while (time(NULL) < end && !atomic_load(&failed)) {
        sleep(2);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(20);
            pthread_t t;
            if (pthread_create(&t, NULL, child_worker, NULL)) _exit(2);
            pthread_join(t, NULL);
            for (int i = 0; i < RING; i++) { void *p = ring[i]; ring[i] = NULL; check_free(p); }
            _exit(atomic_load(&failed) ? 3 : 0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "fork child status %#x\n", st); atomic_store(&failed, 1); }
        atomic_fetch_add(&forks, 1);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++) pthread_join(sp[i], NULL);
    for (int i = 0; i < RING; i++) check_free(ring[i]);
    if (atomic_load(&failed)) return 1;
    printf("ok %ld %ld %ld\n", atomic_load(&ops), atomic_load(&started), atomic_load(&forks));
    return 0;
}
