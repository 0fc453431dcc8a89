/* config.h: memtraind's settings, their defaults and memtraind.yaml.
 *
 * A struct mt_config starts from config_defaults (paths from the systemd or
 * XDG environment, sizes from the machine), then config_load_file overlays a
 * flat YAML mapping, then the daemon's command-line options overlay that, and
 * config_finish recomputes the derived defaults. On SIGHUP the daemon loads
 * the same file into a fresh struct (config_reload_file) and copies the
 * fields that are safe to change while jobs run (config_apply_reload).
 *
 * Strings in the struct are malloc'd and owned by it; config_free releases
 * them. Nothing here logs: failures come back as MT_E_* plus a message in
 * err that names the file, the line and the key:
 *     "memtraind.yaml:7: slots: expected a positive integer, got 'x'" */
#ifndef MT_CONFIG_H
#define MT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memtrain/err.h"

/* The default file when systemd gives no $CONFIGURATION_DIRECTORY. */
#define CONFIG_DEFAULT_FILE "/etc/memtrain/memtraind.yaml"

struct mt_config {
    /* The file to read: set by config_defaults to the default file, or by
     * config_load_file to the one given. config_required is 1 when the file
     * was named explicitly (a missing one is then an error). */
    char *config_path;
    int config_required;

    /* Fixed for the daemon's life (a reload reports but ignores changes). */
    char *socket_path;          /* the listening AF_UNIX socket */
    char *db_path;              /* the SQLite store */
    char *worker_path;          /* the memtrain-worker executable */
    uint64_t frame_max;         /* largest client frame, bytes */
    uint32_t max_connections;   /* accepted client connections at once */
    uint64_t output_buffer_max; /* bytes queued for all clients at once (frames + requests) */
    uint32_t idle_timeout_ms;   /* close a conn with no watch and no request this long */
    uint32_t frame_timeout_ms;  /* close a conn that leaves a frame half sent this long */
    char *metrics_textfile;     /* Prometheus text file (promfile.c); NULL = none */
    uint32_t metrics_interval_ms; /* rewrite it this often (and on state changes) */

    /* Live: a SIGHUP reload changes these. They act on jobs started, and
     * samples taken, after the change; running jobs keep what they got. */
    uint32_t slots;             /* jobs running at once, >= 1 */
    uint32_t threads_per_job;   /* OpenBLAS threads a job gets, >= 1 */
    int threads_auto;           /* 1: threads_per_job = online CPUs / slots */
    uint64_t memory_budget;     /* bytes for all running jobs' planned peaks */
    uint64_t max_job_memory;    /* largest memory_limit a job may ask; 0 = budget */
    uint64_t default_job_memory_limit; /* for a spec without one; 0 = the cap */
    uint64_t hard_limit_margin; /* added to a job's limit for RLIMIT_DATA */
    uint32_t cancel_grace_ms;   /* SIGTERM to SIGKILL for a cancelled worker */
    uint32_t step_every;        /* StepProgress every N steps; 0 = never */
    uint32_t memory_sample_ms;  /* worker memory sample period */
    uint32_t keep_checkpoints;  /* for a spec without keep_checkpoints, >= 1 */
    uint32_t checkpoint_every;  /* epochs, for a spec without one; 0 = only at the end */
    uint32_t share_results;     /* enum mt_share: who may read a job (access.h); applies
                                 * to requests after the change */
    /* retention: (a mapping in the file; retention.c) what ended jobs keep.
     * Applied at start and every retention_interval_ms. */
    int32_t retention_keep_checkpoints;   /* keep the newest N; -1 = what the job kept */
    uint64_t retention_checkpoints_max_age_ms; /* then none after this; 0 = never */
    uint64_t retention_jobs_max_age_ms;   /* the whole job after this; 0 = never */
    uint64_t retention_interval_ms;       /* default 1 day */
};

/* share_results: who besides a job's owner and root may read it (access.h). */
enum mt_share {
    MT_SHARE_OWNER = 0,         /* nobody (the default) */
    MT_SHARE_GROUP = 1,         /* members of the daemon's group */
};

/* "owner" or "group". */
const char *config_share_name(uint32_t share);

/* Fill every field with its default (see deploy/memtraind.yaml). Paths:
 *   socket: $RUNTIME_DIRECTORY/memtraind.sock, else
 *           $XDG_RUNTIME_DIR/memtrain/memtraind.sock, else
 *           /tmp/memtrain-<uid>/memtraind.sock (mt_socket_user_default,
 *           memtrain/sockpath.h: the list mtctl looks in)
 *   db:     $STATE_DIRECTORY/memtrain.db, else
 *           $XDG_STATE_HOME/memtrain/memtrain.db, else
 *           $HOME/.local/state/memtrain/memtrain.db (HOME from the password
 *           database when unset; db_path stays NULL if there is none, and
 *           config_finish then asks for one)
 *   file:   $CONFIGURATION_DIRECTORY/memtraind.yaml, else
 *           CONFIG_DEFAULT_FILE; config_path is NULL when that file does not
 *           exist, and config_required is 0
 *   worker: $MEMTRAIN_WORKER, else memtrain-worker beside the running
 *           executable, else <libexecdir>/memtrain-worker
 * Only the first entry of a colon-separated systemd directory list is used.
 * The struct is overwritten, not freed: call on a new or freed struct.
 * Returns 0, or MT_E_NOMEM when a string cannot be allocated (the struct is
 * then freed and zeroed). */
int config_defaults(struct mt_config *c);

/* Overlay the YAML file at `path` on c: a flat mapping of the field names
 * above (the path fields included; threads_per_job also takes "auto").
 * Sizes take mt_bytesize_parse's forms (memtrain/bytesize.h), durations
 * config_parse_duration's.
 * A path naming a file other than c->config_path is stored there and is
 * required (missing = error); NULL or c->config_path itself reads
 * c->config_path (nothing when NULL) under c->config_required, so the
 * default file may be absent. Ends with config_finish.
 * Returns 0, MT_E_IO (a required file missing or any file unreadable),
 * MT_E_INVAL (YAML syntax, an unknown key, a bad value, each as
 * "memtraind.yaml:7: slots: ..."), MT_E_NOMEM. On error c may hold the
 * fields read before the bad one; callers discard it (config_free). */
int config_load_file(struct mt_config *c, const char *path, struct mt_err *err);

/* Recompute derived defaults after fields changed (threads_per_job when
 * threads_auto) and check that they agree (max_job_memory and
 * default_job_memory_limit not above memory_budget). MT_E_INVAL naming
 * the field. config_load_file calls it; call it again after applying
 * command-line options. */
int config_finish(struct mt_config *c, struct mt_err *err);

/* The largest memory_limit (and plan) a job may have: max_job_memory, or
 * memory_budget when that is 0; its name for messages in *key. */
uint64_t config_job_cap(const struct mt_config *c, const char **key);

/* The memory_limit of a job whose spec has none: default_job_memory_limit,
 * else max_job_memory, so that under a configured cap every job runs under
 * the RLIMIT_DATA backstop; 0 (no limit) when neither is set. Not the
 * memory budget: a job of an unconfigured daemon keeps no limit, as before
 * (an ASan worker maps terabytes of shadow, more than any RLIMIT_DATA). */
uint64_t config_job_default_limit(const struct mt_config *c);

/* For SIGHUP: config_defaults into *fresh, then the file `live` was read
 * from when it was named explicitly, else the default file found now. On
 * error *fresh is already freed and `live` is untouched; on success the
 * caller frees *fresh after config_apply_reload. */
int config_reload_file(const struct mt_config *live, struct mt_config *fresh,
                       struct mt_err *err);

/* Copy the live fields of `fresh` into `live` and write a summary of what
 * changed into `changed` (e.g. "slots 1 -> 2; memory_budget 8.00 GiB ->
 * 12.00 GiB; socket_path differs but needs a restart"), or "no change".
 * Returns the number of live fields changed. Strings are not touched: both
 * structs keep their own. */
int config_apply_reload(struct mt_config *live, const struct mt_config *fresh,
                        char *changed, size_t len);

/* Release the owned strings and zero the struct. Accepts a zeroed struct. */
void config_free(struct mt_config *c);

/* "10s", "500ms", "1.5s", "2min", "1h", "250" (no unit: milliseconds) into
 * milliseconds, rounded to the nearest (the number grammar of byte sizes,
 * memtrain/bytesize.h). Units: ms, s, m or min, h. 0 or
 * MT_E_INVAL (empty, negative, unknown unit, over UINT32_MAX ms). */
int config_parse_duration(const char *text, uint64_t *ms);

/* mkdir -p: create `dir` and missing parents. Parents get 0755 (less the
 * umask), the last component exactly `mode`. An existing last component must
 * be a directory, and when it is not owned by the effective uid it must not
 * be writable by group or others (a squatted /tmp/memtrain-<uid>). Returns 0,
 * MT_E_IO or MT_E_PERM with the path and errno text. */
int config_ensure_dir(const char *dir, mode_t mode, struct mt_err *err);

/* config_ensure_dir on the directory part of `file` ("." for a bare name). */
int config_ensure_parent_dir(const char *file, mode_t mode, struct mt_err *err);

/* Online CPUs (at least 1). */
unsigned config_online_cpus(void);

#endif
