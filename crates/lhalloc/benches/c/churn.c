/* churn: a multi-threaded, server-shaped allocation workload for comparing allocators under
 * LD_PRELOAD (the same binary, the same calls, whatever malloc is loaded).
 *
 * T worker threads serve requests back to back for LOAD seconds, then sleep IDLE seconds.
 * A request allocates OBJS objects whose sizes are log-uniform between 16 B and 32 KiB
 * (one in 50 between 64 KiB and 1 MiB: buffers), writes every byte of them (writing only a
 * block's first bytes would reward allocators that hand out untouched memory rather than
 * reuse freed memory), grows one string by realloc
 * (x1.5 steps up to 1..64 KiB), and frees them at the end, except a fraction KEEP that goes
 * into a shared cache of CACHE entries (a random slot; the object it replaces is freed by
 * whichever thread evicts it, so frees cross threads). Live memory is therefore bounded, and
 * what lingers is the allocator's fragmentation and caching.
 *
 * A sampler thread reads RSS (/proc/self/statm) every 100 ms. Output (one line, key=value):
 * requests, cpu_us_per_req (getrusage user+sys over requests), faults_per_req (minor page
 * faults of the load phase over requests), p50_us / p99_us of request
 * service time, rss_load_mib (mean over the second half of the load phase), rss_peak_mib,
 * rss_idle_mib (at the end of the idle pause).
 *
 * If the loaded allocator exports `lhalloc_print_report` (lhalloc's preload library), it is
 * called at the end of the load phase and of the idle pause (its report goes to stderr).
 *
 * Usage: churn THREADS LOAD_S IDLE_S [SEED]   (defaults 5 20 5 1)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define OBJS 200
#define KEEP_PER_MILLE 50
#define CACHE 10000
#define MAX_LAT (1 << 22)

static void *volatile cache[CACHE];
static atomic_int stop_load, stop_all;
static atomic_long requests;
static double load_s, idle_s;
static unsigned seed0 = 1;

/* per-thread latency samples (us), merged at the end */
static float *lat[64];
static long nlat[64];

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

static size_t size_of_obj(uint64_t *s) {
    uint64_t r = rng(s);
    if (r % 50 == 0) return (64u << 10) + rng(s) % (960u << 10);
    double u = (double)(rng(s) >> 11) / (double)(1ull << 53);
    return (size_t)(16.0 * pow(2048.0, u));   /* 16 B .. 32 KiB, log-uniform */
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1) ^ seed0;
    void *objs[OBJS];
    lat[id] = malloc(sizeof(float) * MAX_LAT);
    while (!atomic_load(&stop_load)) {
        double t0 = now_s();
        for (int i = 0; i < OBJS; i++) {
            size_t n = size_of_obj(&s);
            objs[i] = malloc(n);
            memset(objs[i], i, n);   /* every byte: a server writes what it allocates */
        }
        /* a string built by appending */
        size_t cap = 32, lim = 1024 + rng(&s) % (63 << 10);
        char *str = malloc(cap);
        for (size_t len = 0; len < lim; len += 100) {
            if (len + 100 > cap) { cap = cap * 3 / 2 + 100; str = realloc(str, cap); }
            memset(str + len, 'x', 100);
        }
        free(str);
        for (int i = 0; i < OBJS; i++) {
            if (rng(&s) % 1000 < KEEP_PER_MILLE) {
                int slot = rng(&s) % CACHE;
                void *old = __atomic_exchange_n(&cache[slot], objs[i], __ATOMIC_ACQ_REL);
                free(old);
            } else {
                free(objs[i]);
            }
        }
        double us = (now_s() - t0) * 1e6;
        if (nlat[id] < MAX_LAT) lat[id][nlat[id]++] = (float)us;
        atomic_fetch_add(&requests, 1);
    }
    while (!atomic_load(&stop_all)) usleep(20000);
    return NULL;
}

static double rss_mib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long a = 0, b = 0;
    if (f) { if (fscanf(f, "%ld %ld", &a, &b) != 2) b = 0; fclose(f); }
    return b * 4096.0 / (1 << 20);
}

static int cmpf(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 5;
    load_s = argc > 2 ? atof(argv[2]) : 20;
    idle_s = argc > 3 ? atof(argv[3]) : 5;
    seed0 = argc > 4 ? (unsigned)atoi(argv[4]) : 1;
    if (threads < 1 || threads > 64) return 2;
    pthread_t th[64];
    double start = now_s();
    for (long i = 0; i < threads; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    double sum = 0, peak = 0;
    int n = 0;
    while (now_s() - start < load_s) {
        usleep(100000);
        double r = rss_mib();
        if (r > peak) peak = r;
        if (now_s() - start >= load_s / 2) { sum += r; n++; }
    }
    atomic_store(&stop_load, 1);
    void (*report)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "lhalloc_print_report");
    if (report) report();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long reqs = atomic_load(&requests);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
    double t_idle = now_s();
    while (now_s() - t_idle < idle_s) {
        usleep(100000);
        double r = rss_mib();
        if (r > peak) peak = r;
    }
    double idle = rss_mib();
    if (report) report();
    atomic_store(&stop_all, 1);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    long total = 0;
    for (int i = 0; i < threads; i++) total += nlat[i];
    float *all = malloc(sizeof(float) * (total ? total : 1));
    long k = 0;
    for (int i = 0; i < threads; i++) { memcpy(all + k, lat[i], sizeof(float) * nlat[i]); k += nlat[i]; }
    qsort(all, total, sizeof(float), cmpf);
    double p50 = total ? all[total / 2] : 0, p99 = total ? all[(long)(total * 0.99)] : 0;
    printf("requests=%ld cpu_us_per_req=%.2f faults_per_req=%.1f p50_us=%.1f p99_us=%.1f rss_load_mib=%.1f rss_peak_mib=%.1f rss_idle_mib=%.1f\n",
           reqs, cpu * 1e6 / (reqs ? reqs : 1), (double)ru.ru_minflt / (reqs ? reqs : 1), p50, p99,
           n ? sum / n : 0, peak, idle);
    return 0;
}
