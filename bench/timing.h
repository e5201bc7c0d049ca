/* bench/timing.h: the one timing rule every C and C++ reference program uses, mirrored by
 * bench/timing.lua for the Lua side. An operation is run in batches; a batch grows until it
 * takes at least BENCH_MIN_BATCH_NS of process CPU time; RUNS batches are timed and the median
 * ns/op is reported. CPU time (not wall time) so a busy neighbour on the core costs less. */
#ifndef BENCH_TIMING_H
#define BENCH_TIMING_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define BENCH_MIN_BATCH_NS 100000000LL /* 0.1 s */
#define BENCH_RUNS 7

static inline int64_t bench_cpu_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median ns per call of op(ctx) over `runs` batches (runs <= 31). */
static inline double bench_median_ns(void (*op)(void *), void *ctx, int runs)
{
  double per[32];
  long n = 1;
  if (runs > 31) runs = 31;
  for (;;) { /* calibrate: warm up and size the batch */
    int64_t t0 = bench_cpu_ns();
    for (long i = 0; i < n; i++) op(ctx);
    int64_t dt = bench_cpu_ns() - t0;
    if (dt >= BENCH_MIN_BATCH_NS / 4) {
      n = (long)((double)n * BENCH_MIN_BATCH_NS / (double)(dt > 0 ? dt : 1)) + 1;
      break;
    }
    n *= 4;
  }
  for (int r = 0; r < runs; r++) {
    int64_t t0 = bench_cpu_ns();
    for (long i = 0; i < n; i++) op(ctx);
    per[r] = (double)(bench_cpu_ns() - t0) / (double)n;
  }
  qsort(per, (size_t)runs, sizeof per[0], bench_cmp_double);
  return per[runs / 2];
}

#endif
