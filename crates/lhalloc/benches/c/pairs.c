/* malloc+free pairs through the PLT, for comparing allocators (or two builds of one) under
 * LD_PRELOAD with the same binary. For each size: 9 repetitions of 5M pairs; prints the median
 * ns per pair. Build with -O2 -fno-builtin (so the compiler cannot elide the pair).
 * Usage: pairs [SIZES...]   (default 16 64 256 1024 4096 32768)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

int main(int argc, char **argv) {
    size_t def[] = {16, 64, 256, 1024, 4096, 32768};
    int n = argc > 1 ? argc - 1 : 6;
    for (int k = 0; k < n; k++) {
        size_t sz = argc > 1 ? (size_t)atol(argv[k + 1]) : def[k];
        double r[9];
        for (int rep = 0; rep < 9; rep++) {
            double t0 = now();
            for (int i = 0; i < 5000000; i++) {
                volatile char *p = malloc(sz);
                p[0] = 1;
                free((void *)p);
            }
            r[rep] = (now() - t0) / 5e6 * 1e9;
        }
        qsort(r, 9, sizeof r[0], cmp);
        printf("size=%zu ns_per_pair=%.2f\n", sz, r[4]);
    }
    return 0;
}
