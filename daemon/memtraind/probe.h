/* probe.h: reading a submitted dataset's headers, off the loop.
 *
 * Planning a submit or plan request needs the dataset's sample counts,
 * which means opening its files; an open can block for as long as a
 * stalled network mount does, so memtraind never does it on the loop
 * thread. probe_start queues data_probe on libuv's threadpool; the thread
 * reads the files with the requesting client's rights (usercreds.h): when
 * memtraind runs as root the thread takes the client's fs uid, gid and
 * groups for the probe; otherwise every file the spec names must pass
 * data_check_reader for the client first. The answer comes back on the
 * loop through `done`. A probe that has not finished after PROBE_TIMEOUT_MS
 * is answered with an error ("dataset probe of PATH did not finish in 10 s")
 * and its result dropped when it comes. If the connection closes first,
 * done is never called; the probe's state (and `ud`, through ud_free) is
 * freed on the loop once the thread is done with it. */
#ifndef MT_PROBE_H
#define MT_PROBE_H

#include <stdint.h>

#include "daemon.h"
#include "data.h"
#include "memtrain/err.h"

#define PROBE_TIMEOUT_MS 10000

struct conn;

/* On the loop: rc 0 with *shape, or rc and the message in err. c is open. */
typedef void (*probe_done_fn)(struct conn *c, uint64_t req_id, void *ud, int rc,
                              const struct mt_data_shape *shape, const struct mt_err *err);

/* Probe ds (copied) for request req_id of c, as c's user. ud is handed to
 * done and then freed with ud_free (may be NULL), whatever happens. 0, or an
 * error already answered to the client (ud freed). */
int probe_start(struct conn *c, uint64_t req_id, const struct mt_data_spec *ds,
                probe_done_fn done, void *ud, void (*ud_free)(void *));

/* c is closing: its probes will answer no one. */
void probe_drop_conn(struct daemon *d, struct conn *c);

#endif
