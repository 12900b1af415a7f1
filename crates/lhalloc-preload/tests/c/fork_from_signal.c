/* fork() from a signal handler that interrupts the main thread at random points of its
 * malloc/free/realloc loop, while two other threads allocate and free each other's blocks.
 * Each child allocates, frees, creates a thread that allocates, and _exits 0 from the
 * handler (it never returns into the interrupted call). A child that hangs is killed by
 * alarm(10) and counted as a failure. Only async-signal-safe calls and the malloc family are
 * used around the interrupted code (no stdio in the loops: glibc's fork takes stdio locks).
 * Prints "ok <forks>" and exits 0 when every child exited 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FORKS 150
static pid_t pids[FORKS];
static atomic_int nforks;
static atomic_int stop;
static pthread_t main_thread;

static void *child_thread(void *arg) {
    void *v[64];
    for (int i = 0; i < 64; i++) { v[i] = malloc(16 + i * 40); memset(v[i], 1, 16); }
    for (int i = 0; i < 64; i++) free(v[i]);
    return arg;
}

static void handler(int sig) {
    (void)sig;
    int k = atomic_load(&nforks);
    if (k >= FORKS) return;
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        void *v[256];
        for (int i = 0; i < 256; i++) { v[i] = malloc(8 + (i * 97) % 3000); if (!v[i]) _exit(2); memset(v[i], 7, 8); }
        void *big = malloc(1 << 20); if (!big) _exit(3); memset(big, 1, 1 << 20);
        big = realloc(big, 3 << 20); if (!big) _exit(4);
        for (int i = 0; i < 256; i += 2) free(v[i]);
        pthread_t t;
        if (pthread_create(&t, NULL, child_thread, NULL) != 0) _exit(5);
        pthread_join(t, NULL);
        for (int i = 1; i < 256; i += 2) free(v[i]);
        free(big);
        _exit(0);
    }
    pids[k] = pid;
    atomic_store(&nforks, k + 1);
}

#define SLOTS 512
static void *volatile shared[SLOTS];

static void *mutator(void *arg) {
    unsigned s = (unsigned)(size_t)arg;
    while (!atomic_load(&stop)) {
        s = s * 1103515245u + 12345u;
        int i = (s >> 8) % SLOTS;
        void *p = __atomic_exchange_n(&shared[i], NULL, __ATOMIC_ACQ_REL);
        free(p);   /* often another thread's block */
        size_t sz = (s >> 4) % 8 == 0 ? 70000 : 16 + (s >> 12) % 1500;
        p = malloc(sz);
        memset(p, 3, 16);
        p = __atomic_exchange_n(&shared[i], p, __ATOMIC_ACQ_REL);
        free(p);
    }
    return NULL;
}

static void *kicker(void *arg) {
    (void)arg;
    unsigned s = 7;
    while (atomic_load(&nforks) < FORKS) {
        s = s * 1103515245u + 12345u;
        struct timespec ts = {0, 200000 + (s >> 8) % 2000000};
        nanosleep(&ts, NULL);
        pthread_kill(main_thread, SIGUSR1);
    }
    return NULL;
}

int main(void) {
    main_thread = pthread_self();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t m[2], k;
    for (long i = 0; i < 2; i++) pthread_create(&m[i], NULL, mutator, (void *)(i + 1));
    pthread_create(&k, NULL, kicker, NULL);
    unsigned s = 99;
    void *local[128] = {0};
    while (atomic_load(&nforks) < FORKS) {
        s = s * 1103515245u + 12345u;
        int i = (s >> 8) % 128;
        size_t sz = (s >> 4) % 16 == 0 ? 300000 : 16 + (s >> 12) % 5000;
        local[i] = realloc(local[i], sz);
        memset(local[i], 5, 16);
        if ((s >> 20) % 4 == 0) { free(local[i]); local[i] = NULL; }
    }
    atomic_store(&stop, 1);
    pthread_join(k, NULL);
    for (int i = 0; i < 2; i++) pthread_join(m[i], NULL);
    int bad = 0;
    for (int i = 0; i < FORKS; i++) {
        int st = 0;
        if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child %d (pid %d): status %#x%s\n", i, pids[i], st,
                    WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? " (hung: killed by alarm)" : "");
            bad++;
        }
    }
    for (int i = 0; i < 128; i++) free(local[i]);
    if (bad) return 1;
    printf("ok %d\n", FORKS);
    return 0;
}
