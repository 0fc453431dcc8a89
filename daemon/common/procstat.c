/* procstat.c: VmRSS, VmHWM and VmData from /proc (include/memtrain/procstat.h). */
#include "memtrain/procstat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int mt_procstat_read(int pid, struct mt_procstat *ps, struct mt_err *err)
{
    char path[64], line[256];
    memset(ps, 0, sizeof *ps);
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/status", pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "r");
    if (!f)
        return mt_err_set(err, MT_E_IO, "%s: %s", path, strerror(errno));
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            ps->rss = kb * 1024;
        else if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            ps->hwm = kb * 1024;
        else if (sscanf(line, "VmData: %llu kB", &kb) == 1)
            ps->data = kb * 1024;
    }
    fclose(f);
    return 0;
}

int mt_proc_identity(int pid, uint64_t *start, char comm[16])
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return MT_E_IO;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses,
     * so it ends at the last ')'. */
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close || close < open)
        return MT_E_IO;
    size_t len = (size_t)(close - open - 1);
    if (len > 15)
        len = 15;
    memcpy(comm, open + 1, len);
    comm[len] = '\0';
    /* fields 3.. follow; the start time is field 22, the 20th after ')' */
    char *p = close + 1;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (!p || sscanf(p, " %llu", (unsigned long long *)start) != 1)
        return MT_E_IO;
    return 0;
}
