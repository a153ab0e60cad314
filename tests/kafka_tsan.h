/*
 * kafka_tsan.h: lets ThreadSanitizer see librdkafka's threads and locks, for the test programs
 * that run librdkafka (include it in exactly one file of each).
 *
 * Debian's librdkafka is built on C11 threads (thrd_create, mtx_lock, cnd_wait), and glibc
 * implements those by calling its pthread internals directly, past ThreadSanitizer's
 * interceptors: TSan then crashes at the first allocation of a librdkafka thread it never saw
 * start, and would not see librdkafka's locks either. Under -fsanitize=thread this header
 * defines the C11 thread functions in the test program on top of the intercepted pthread
 * functions; the dynamic linker binds librdkafka's calls to them. Without TSan it is empty. It
 * must never change what a program does, only what TSan can see of it.
 */
#ifndef RV_KAFKA_TSAN_H
#define RV_KAFKA_TSAN_H

#if defined(__SANITIZE_THREAD__)

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

typedef struct kt_start_s {
    thrd_start_t fn;
    void *arg;
} kt_start_t;

static void *kt_trampoline(void *p) {
    kt_start_t s = *(kt_start_t *)p;
    free(p);
    return (void *)(intptr_t)s.fn(s.arg);
}

static int kt_result(int r) {
    return r == 0 ? thrd_success : r == ENOMEM ? thrd_nomem : r == EBUSY ? thrd_busy
           : r == ETIMEDOUT ? thrd_timedout : thrd_error;
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg) {
    kt_start_t *s = malloc(sizeof *s);
    if (!s) {
        return thrd_nomem;
    }
    s->fn = fn;
    s->arg = arg;
    int r = pthread_create(thr, NULL, kt_trampoline, s);
    if (r) {
        free(s);
    }
    return kt_result(r);
}

int thrd_join(thrd_t thr, int *res) {
    void *ret = NULL;
    int r = pthread_join(thr, &ret);
    if (!r && res) {
        *res = (int)(intptr_t)ret;
    }
    return kt_result(r);
}

int thrd_detach(thrd_t thr) {
    return kt_result(pthread_detach(thr));
}

_Noreturn void thrd_exit(int res) {
    pthread_exit((void *)(intptr_t)res);
}

int mtx_init(mtx_t *m, int type) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (type & mtx_recursive) {
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    }
    int r = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return kt_result(r);
}

int mtx_lock(mtx_t *m) {
    return kt_result(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m) {
    return kt_result(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts) {
    return kt_result(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}

int mtx_unlock(mtx_t *m) {
    return kt_result(pthread_mutex_unlock((pthread_mutex_t *)m));
}

void mtx_destroy(mtx_t *m) {
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c) {
    return kt_result(pthread_cond_init((pthread_cond_t *)c, NULL));
}

int cnd_signal(cnd_t *c) {
    return kt_result(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c) {
    return kt_result(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m) {
    return kt_result(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts) {
    return kt_result(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

void cnd_destroy(cnd_t *c) {
    pthread_cond_destroy((pthread_cond_t *)c);
}

void call_once(once_flag *flag, void (*fn)(void)) {
    pthread_once((pthread_once_t *)flag, fn);
}

#endif

#endif
