//! The exported malloc family's C semantics (errno, EINVAL, realloc edge cases, alignment),
//! checked by a small C program run under `LD_PRELOAD`. A missing C compiler (`cc`) fails it.

mod common;

use std::process::Command;

use common::preload_lib;

const PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAILED line %d: %s\n", __LINE__, #c); return 1; } } while (0)

/* A key destructor that allocates after ours has run (thread teardown order). */
static pthread_key_t app_key;
static void app_dtor(void *v) {
    free(v);
    void *x = malloc(5000);
    memset(x, 1, 5000);
    free(x);
    x = malloc(24);
    free(x);
}
static void *thread_main(void *arg) {
    pthread_setspecific(app_key, malloc(100));
    void *keep[200];
    for (int i = 0; i < 200; i++) keep[i] = malloc(16 + i * 8);
    for (int i = 0; i < 200; i += 2) free(keep[i]);
    return keep[1 + 2 * ((int)(intptr_t)arg % 50)];   /* freed by the main thread */
}

int main(void) {
    pthread_key_create(&app_key, app_dtor);
    for (int round = 0; round < 20; round++) {
        pthread_t th[8];
        for (intptr_t i = 0; i < 8; i++) CHECK(pthread_create(&th[i], NULL, thread_main, (void *)i) == 0);
        for (int i = 0; i < 8; i++) { void *r; pthread_join(th[i], &r); free(r); }
    }
    void *one = malloc(1);
    CHECK(malloc_usable_size(one) == 16);            /* ours (glibc says 24) */
    free(one);
    void *p = malloc(100);
    CHECK(p && ((uintptr_t)p % 16) == 0);
    CHECK(malloc_usable_size(p) >= 100);
    memset(p, 7, 100);
    p = realloc(p, 100000);
    CHECK(p && ((unsigned char *)p)[99] == 7);
    errno = 0;
    CHECK(realloc(p, 0) == NULL);             /* frees, like glibc */
    free(NULL);

    errno = 0;
    CHECK(calloc(SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc(SIZE_MAX - 10) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(reallocarray(NULL, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);

    unsigned char *z = calloc(1000, 1000);
    CHECK(z);
    for (int i = 0; i < 1000000; i += 4096) CHECK(z[i] == 0);
    free(z);

    void *q = NULL;
    CHECK(posix_memalign(&q, 3, 10) == EINVAL);
    CHECK(posix_memalign(&q, 4, 10) == EINVAL);      /* not a multiple of sizeof(void *) */
    for (size_t a = 8; a <= (1 << 22); a <<= 1) {
        CHECK(posix_memalign(&q, a, 100) == 0 && ((uintptr_t)q % a) == 0);
        memset(q, 1, 100);
        free(q);
    }
    errno = 0;
    CHECK(aligned_alloc(3, 16) == NULL && errno == EINVAL);
    q = aligned_alloc(256, 1000);
    CHECK(q && ((uintptr_t)q % 256) == 0);
    free(q);
    q = memalign(64, 10);
    CHECK(q && ((uintptr_t)q % 64) == 0);
    free(q);
    long pg = sysconf(_SC_PAGESIZE);
    q = valloc(10);
    CHECK(q && ((uintptr_t)q % pg) == 0);
    free(q);
    q = pvalloc(10);
    CHECK(q && ((uintptr_t)q % pg) == 0 && malloc_usable_size(q) >= (size_t)pg);
    free(q);
    q = realloc(NULL, 33);
    CHECK(q);
    free(q);

    void *big = malloc(5 << 20);
    CHECK(big);
    memset(big, 3, 5 << 20);
    big = realloc(big, 9 << 20);
    CHECK(big && ((unsigned char *)big)[(5 << 20) - 1] == 3);
    free(big);
    CHECK(malloc_trim(0) == 0 || malloc_trim(0) >= 0);   /* ours: collects, must not crash */
    puts("ok");
    return 0;
}
"#;

#[test]
fn c_malloc_family_semantics() {
    let dir = std::env::temp_dir().join(format!("lhalloc-c-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let src = dir.join("t.c");
    let bin = dir.join("t");
    std::fs::write(&src, PROGRAM).expect("write C source");
    let cc = Command::new("cc")
        .arg("-O1")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output();
    match cc {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("cc failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("no C compiler (cc: {e}): apt-get install -y build-essential"),
    }
    let out = Command::new(&bin)
        .env("LD_PRELOAD", preload_lib())
        .output()
        .expect("run the C program");
    assert!(
        out.status.success(),
        "{:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let _ = std::fs::remove_dir_all(&dir);
}
