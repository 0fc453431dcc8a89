/* procstat.h: what the kernel says of a process's memory, from the Vm*
 * lines of /proc/<pid>/status. The one reader behind the engine's epoch
 * report (rss_peak, rss_now), the worker's memory samples and hard limit,
 * and the daemon's view of its running workers. */
#ifndef MEMTRAIN_PROCSTAT_H
#define MEMTRAIN_PROCSTAT_H

#include <stdint.h>

#include "memtrain/err.h"

/* Bytes (the kernel counts kB; these are kB * 1024). */
struct mt_procstat {
    uint64_t rss;   /* VmRSS: resident now */
    uint64_t hwm;   /* VmHWM: the peak of VmRSS so far */
    uint64_t data;  /* VmData: the data address space, what RLIMIT_DATA counts */
};

/* Read /proc/<pid>/status, or /proc/self/status when pid is 0. A field whose
 * line is missing (a kernel thread, a zombie) is 0. Returns 0, or MT_E_IO
 * when the file cannot be opened (no such process, /proc not mounted or
 * hidden): then every field is 0 and err names the file. */
int mt_procstat_read(int pid, struct mt_procstat *ps, struct mt_err *err);

/* A process's identity beyond its pid, from /proc/<pid>/stat: its start
 * time (clock ticks after boot, field 22) and its command name (field 2,
 * at most 15 bytes). A later process that reuses the pid has another start
 * time. Returns 0, or MT_E_IO when there is no such process. */
int mt_proc_identity(int pid, uint64_t *start, char comm[16]);

#endif
