/* clock.h: wall-clock time as memtrain stores and shows it.
 *
 * Every timestamp in a job's row, its metrics and its logs is Unix time in
 * milliseconds; the daemon, the worker and mtctl read the clock here. */
#ifndef MEMTRAIN_CLOCK_H
#define MEMTRAIN_CLOCK_H

#include <stdint.h>

/* Unix time now (CLOCK_REALTIME), in milliseconds. */
int64_t mt_now_ms(void);

#endif
