/* A host whose wall clock is wrong: LD_PRELOAD this, with CLOCK_AHEAD_SECONDS=300, and the
   process's wall clock (CLOCK_REALTIME: time.time(), datetime.now()) runs that far ahead while its
   monotonic clock, timers and sleeps stay true, as on a real machine with a wrong clock.
   libfaketime 0.9.10 fakes sleeps too and hangs Python's time.sleep (clock_nanosleep), hence this.
   Built by tests/cluster/harness.py with `cc -shared -fPIC`. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long offset(void) {
    const char *s = getenv("CLOCK_AHEAD_SECONDS");
    return s ? atol(s) : 0;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += offset();
    return rc;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0 && tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    return rc;
}

time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
