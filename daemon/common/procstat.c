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
