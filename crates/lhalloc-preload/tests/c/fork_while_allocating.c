/* fork() from one thread while three others allocate, free and hand blocks to each other
 * (producer/consumer). Each child checks the blocks it inherited, allocates from two new
 * threads of its own, forks a grandchild that does the same, and exits 0. Children that hang
 * are killed by alarm(10). Prints "ok <forks>".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKS 60
#define RING 1024
static void *volatile ring[RING];
static atomic_int stop;
static unsigned char *held[64];

static void *mutator(void *arg) {
    unsigned s = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&stop)) {
        s = s * 1103515245u + 12345u;
        int i = (s >> 8) % RING;
        size_t sz = (s >> 4) % 32 == 0 ? 150000 : (s >> 4) % 8 == 0 ? 9000 : 16 + (s >> 12) % 900;
        void *p = malloc(sz);
        memset(p, 1, sz < 32 ? sz : 32);
        if ((s >> 3) % 3 == 0) p = realloc(p, sz * 2);
        p = __atomic_exchange_n(&ring[i], p, __ATOMIC_ACQ_REL);
        free(p);
    }
    return NULL;
}

static void *child_worker(void *arg) {
    void *v[300];
    for (int i = 0; i < 300; i++) { v[i] = malloc(16 + (i * 53) % 4000); memset(v[i], 2, 16); }
    for (int i = 0; i < 300; i++) free(v[i]);
    return arg;
}

static int child_work(void) {
    for (int i = 0; i < 64; i++) {
        for (int j = 0; j < 1000; j++) if (held[i][j] != (unsigned char)i) return 10;
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++) if (pthread_create(&t[i], NULL, child_worker, NULL)) return 11;
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < RING; i++) { free(ring[i]); ring[i] = NULL; }   /* the parent's in-flight blocks */
    return 0;
}

int main(void) {
    for (int i = 0; i < 64; i++) { held[i] = malloc(1000); memset(held[i], i, 1000); }
    pthread_t m[3];
    for (long i = 0; i < 3; i++) pthread_create(&m[i], NULL, mutator, (void *)(i + 1));
    for (int f = 0; f < FORKS; f++) {
        usleep(2000);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10);
            int rc = child_work();
            if (rc) _exit(rc);
            pid_t g = fork();   /* a grandchild, forked from a child that has threads' leftovers */
            if (g == 0) { alarm(10); _exit(child_work()); }
            int st = 0;
            waitpid(g, &st, 0);
            _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 20);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "fork %d: child status %#x\n", f, st);
            atomic_store(&stop, 1);
            return 1;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++) pthread_join(m[i], NULL);
    for (int i = 0; i < 64; i++) free(held[i]);
    printf("ok %d\n", FORKS);
    return 0;
}
