/* Time and memory figures every layer reports (load time, tokens per second, peak RSS). */
#ifndef BN_CLOCK_H
#define BN_CLOCK_H

#include <stdint.h>

/* Monotonic clock in milliseconds. */
double bn_now_ms(void);
/* Peak resident set size of this process in KiB (getrusage), 0 when unknown. */
uint64_t bn_peak_rss_kib(void);

#endif
