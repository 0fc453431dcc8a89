/* test-config.c: memtraind's settings, log lines and systemd notification
 * (daemon/memtraind/config.c, log.c, notify.c).
 *
 * Defaults follow the machine and the systemd/XDG environment; a good
 * memtraind.yaml sets every field; each kind of bad line is refused with a
 * message naming the file, the line and the key; sizes and durations parse
 * and refuse what they should; a reload copies only the live fields and says
 * what changed; directories are created with their mode and untrustworthy
 * ones refused; log lines carry journald's "<N>" prefix, one per line of a
 * multi-line message; notify_send reaches a datagram socket named by
 * $NOTIFY_SOCKET, by path or abstract name. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "notify.h"

static char tmpdir[128];

static const char *const env_vars[] = {
    "RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR", "STATE_DIRECTORY", "XDG_STATE_HOME",
    "CONFIGURATION_DIRECTORY", "MEMTRAIN_WORKER", "JOURNAL_STREAM", "NOTIFY_SOCKET",
};

/* Every test starts from an environment with none of the variables we read. */
static void clear_env(void)
{
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
}

static int group_setup(void **state)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test-config-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int each_setup(void **state)
{
    clear_env();
    return 0;
}

/* Write text to tmpdir/name; the path goes into out. */
static void write_file(char *out, size_t len, const char *name, const char *text)
{
    snprintf(out, len, "%s/%s", tmpdir, name);
    FILE *f = fopen(out, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static uint64_t meminfo_total(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    assert_non_null(f);
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
            break;
    fclose(f);
    assert_true(kb > 0);
    return (uint64_t)kb * 1024;
}

/* ------------------------------------------------------------------------ */
/* Defaults and paths                                                       */

static void test_defaults_are_sane(void **state)
{
    struct mt_config c;
    struct mt_err err = {0};
    setenv("HOME", "/home/tester", 1);
    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(c.slots, 1);
    assert_int_equal(c.threads_per_job, config_online_cpus());
    assert_true(c.threads_auto);
    uint64_t want = meminfo_total() / 10 * 8;
    assert_true(c.memory_budget > want - 1024 && c.memory_budget < want + 1024);
    assert_int_equal(c.max_job_memory, 0);
    assert_int_equal(c.default_job_memory_limit, 0);
    assert_int_equal(c.hard_limit_margin, 256u << 20);
    assert_int_equal(c.frame_max, 16u << 20);
    assert_int_equal(c.max_connections, 256);
    assert_int_equal(c.cancel_grace_ms, 10000);
    assert_int_equal(c.step_every, 10);
    assert_int_equal(c.memory_sample_ms, 1000);
    assert_int_equal(c.keep_checkpoints, 3);
    assert_int_equal(c.checkpoint_every, 0);
    assert_non_null(c.worker_path);
    assert_string_equal(c.db_path, "/home/tester/.local/state/memtrain/memtrain.db");
    assert_int_equal(config_finish(&c, &err), 0);

    /* auto threads follow slots; an explicit value stays */
    c.slots = config_online_cpus() * 2;
    assert_int_equal(config_finish(&c, &err), 0);
    assert_int_equal(c.threads_per_job, 1);
    c.threads_auto = 0;
    c.threads_per_job = 7;
    assert_int_equal(config_finish(&c, &err), 0);
    assert_int_equal(c.threads_per_job, 7);
    config_free(&c);
    assert_null(c.socket_path);
}

static void test_socket_path_follows_environment(void **state)
{
    struct mt_config c;
    char want[128];

    setenv("RUNTIME_DIRECTORY", "/run/memtraind", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    assert_int_equal(config_defaults(&c), 0);
    assert_string_equal(c.socket_path, "/run/memtraind/memtraind.sock");
    config_free(&c);

    setenv("RUNTIME_DIRECTORY", "/run/first:/run/second", 1);
    assert_int_equal(config_defaults(&c), 0);
    assert_string_equal(c.socket_path, "/run/first/memtraind.sock");
    config_free(&c);

    unsetenv("RUNTIME_DIRECTORY");
    assert_int_equal(config_defaults(&c), 0);
    assert_string_equal(c.socket_path, "/run/user/1000/memtrain/memtraind.sock");
    config_free(&c);

    unsetenv("XDG_RUNTIME_DIR");
    assert_int_equal(config_defaults(&c), 0);
    snprintf(want, sizeof want, "/tmp/memtrain-%lu/memtraind.sock", (unsigned long)geteuid());
    assert_string_equal(c.socket_path, want);
    config_free(&c);
}

static void test_db_path_follows_environment(void **state)
{
    struct mt_config c;
    setenv("HOME", "/home/tester", 1);

    setenv("STATE_DIRECTORY", "/var/lib/memtrain", 1);
    setenv("XDG_STATE_HOME", "/home/tester/state", 1);
    assert_int_equal(config_defaults(&c), 0);
    assert_string_equal(c.db_path, "/var/lib/memtrain/memtrain.db");
    config_free(&c);

    unsetenv("STATE_DIRECTORY");
    assert_int_equal(config_defaults(&c), 0);
    assert_string_equal(c.db_path, "/home/tester/state/memtrain/memtrain.db");
    config_free(&c);

    unsetenv("XDG_STATE_HOME");
    assert_int_equal(config_defaults(&c), 0);
    assert_string_equal(c.db_path, "/home/tester/.local/state/memtrain/memtrain.db");
    config_free(&c);
}

static void test_worker_path_from_environment(void **state)
{
    struct mt_config c;
    setenv("MEMTRAIN_WORKER", "/opt/memtrain/memtrain-worker", 1);
    assert_int_equal(config_defaults(&c), 0);
    assert_string_equal(c.worker_path, "/opt/memtrain/memtrain-worker");
    config_free(&c);
    unsetenv("MEMTRAIN_WORKER");
    assert_int_equal(config_defaults(&c), 0);
    assert_non_null(strstr(c.worker_path, "memtrain-worker"));
    config_free(&c);
}

static void test_default_file_may_be_absent_an_explicit_one_not(void **state)
{
    struct mt_config c;
    struct mt_err err = {0};
    char dir[192], path[256];

    /* $CONFIGURATION_DIRECTORY without the file: nothing to read, no error */
    snprintf(dir, sizeof dir, "%s/etc-empty", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    setenv("CONFIGURATION_DIRECTORY", dir, 1);
    assert_int_equal(config_defaults(&c), 0);
    assert_null(c.config_path);
    assert_int_equal(config_load_file(&c, NULL, &err), 0);
    assert_int_equal(c.slots, 1);
    config_free(&c);

    /* with the file: found, and read when load is given NULL */
    snprintf(dir, sizeof dir, "%s/etc-full", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    write_file(path, sizeof path, "etc-full/memtraind.yaml", "slots: 2\n");
    setenv("CONFIGURATION_DIRECTORY", dir, 1);
    assert_int_equal(config_defaults(&c), 0);
    assert_non_null(c.config_path);
    assert_string_equal(c.config_path, path);
    assert_int_equal(c.config_required, 0);
    assert_int_equal(config_load_file(&c, NULL, &err), 0);
    assert_int_equal(c.slots, 2);
    config_free(&c);

    /* a file named explicitly must exist */
    snprintf(path, sizeof path, "%s/no-such.yaml", tmpdir);
    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(config_load_file(&c, path, &err), MT_E_IO);
    assert_non_null(strstr(err.msg, "no-such.yaml"));
    assert_non_null(strstr(err.msg, "No such file"));
    config_free(&c);
}

/* ------------------------------------------------------------------------ */
/* The file                                                                 */

static const char good_yaml[] =
    "# memtraind.yaml used by test-config\n"
    "socket_path: /run/mt/test.sock\n"
    "db_path: '/var/lib/mt/test.db'\n"
    "worker_path: /usr/libexec/memtrain-worker\n"
    "slots: 2\n"
    "threads_per_job: 3\n"
    "memory_budget: 16G\n"
    "max_job_memory: 2.5GiB\n"
    "default_job_memory_limit: 512M\n"
    "hard_limit_margin: 128MiB\n"
    "frame_max: 1048576\n"
    "max_connections: 64\n"
    "cancel_grace_ms: 30s\n"
    "step_every: 0\n"
    "memory_sample_ms: 500ms\n"
    "keep_checkpoints: 5\n"
    "checkpoint_every: 2\n"
    "share_results: group\n";

static void test_good_file_sets_every_field(void **state)
{
    struct mt_config c;
    struct mt_err err = {0};
    char path[256];
    write_file(path, sizeof path, "good.yaml", good_yaml);
    assert_int_equal(config_defaults(&c), 0);
    int rc = config_load_file(&c, path, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_string_equal(c.config_path, path);
    assert_int_equal(c.config_required, 1);
    assert_string_equal(c.socket_path, "/run/mt/test.sock");
    assert_string_equal(c.db_path, "/var/lib/mt/test.db");
    assert_string_equal(c.worker_path, "/usr/libexec/memtrain-worker");
    assert_int_equal(c.slots, 2);
    assert_int_equal(c.threads_per_job, 3);
    assert_false(c.threads_auto);
    assert_int_equal(c.memory_budget, 16ull << 30);
    assert_int_equal(c.max_job_memory, 2684354560ull);
    assert_int_equal(c.default_job_memory_limit, 512ull << 20);
    assert_int_equal(c.hard_limit_margin, 128ull << 20);
    assert_int_equal(c.frame_max, 1048576);
    assert_int_equal(c.max_connections, 64);
    assert_int_equal(c.cancel_grace_ms, 30000);
    assert_int_equal(c.step_every, 0);
    assert_int_equal(c.memory_sample_ms, 500);
    assert_int_equal(c.keep_checkpoints, 5);
    assert_int_equal(c.checkpoint_every, 2);
    assert_int_equal(c.share_results, MT_SHARE_GROUP);
    config_free(&c);
}

static void test_empty_file_and_threads_auto(void **state)
{
    struct mt_config c;
    struct mt_err err = {0};
    char path[256];
    write_file(path, sizeof path, "empty.yaml", "# nothing set\n");
    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(config_load_file(&c, path, &err), 0);
    assert_int_equal(c.slots, 1);
    config_free(&c);

    write_file(path, sizeof path, "auto.yaml", "slots: 1024\nthreads_per_job: auto\n");
    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(config_load_file(&c, path, &err), 0);
    assert_true(c.threads_auto);
    assert_int_equal(c.threads_per_job, 1);
    config_free(&c);
}

/* deploy/memtraind.yaml as shipped (all comments) and with every "#key:"
 * line uncommented: both load, and the values it shows are the defaults
 * (memory_budget and the paths are examples). */
static void test_shipped_example_parses_and_shows_defaults(void **state)
{
    struct mt_config c, d;
    struct mt_err err = {0};
    char path[256];
    const char *example = MT_SOURCE_DIR "/deploy/memtraind.yaml";
    assert_int_equal(config_defaults(&c), 0);
    if (config_load_file(&c, example, &err))
        fail_msg("%s", err.msg);
    config_free(&c);

    FILE *in = fopen(example, "r");
    assert_non_null(in);
    snprintf(path, sizeof path, "%s/example.yaml", tmpdir);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    char line[512];
    int keys = 0;
    while (fgets(line, sizeof line, in)) {
        size_t k = strspn(line + 1, "abcdefghijklmnopqrstuvwxyz_");
        if (line[0] == '#' && k > 0 && line[1 + k] == ':') {
            fputs(line + 1, out);
            keys++;
        }
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(keys, 23);   /* every key config.c knows */

    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(config_defaults(&d), 0);
    if (config_load_file(&c, path, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(c.memory_budget, 16ull << 30);
    c.memory_budget = d.memory_budget;
    char changed[1024];
    assert_int_equal(config_apply_reload(&d, &c, changed, sizeof changed), 0);
    assert_int_equal(c.frame_max, d.frame_max);
    assert_int_equal(c.max_connections, d.max_connections);
    assert_int_equal(c.threads_auto, 1);
    config_free(&c);
    config_free(&d);
}

/* Load `yaml` as memtraind.yaml; it must fail with `code` and a message
 * containing `want`. */
static void expect_error(const char *yaml, int code, const char *want)
{
    struct mt_config c;
    struct mt_err err = {0};
    char path[256];
    write_file(path, sizeof path, "memtraind.yaml", yaml);
    assert_int_equal(config_defaults(&c), 0);
    int rc = config_load_file(&c, path, &err);
    config_free(&c);
    if (rc != code || !strstr(err.msg, want))
        fail_msg("for:\n%s\nwanted %d and \"%s\"; got %d and \"%s\"", yaml, code, want, rc,
                 err.msg);
}

static void test_unknown_key_names_key_and_line(void **state)
{
    expect_error("slots: 1\n\nbudget: 16G\n", MT_E_INVAL,
                 "memtraind.yaml:3: budget: unknown key (expected one of: socket_path, db_path, "
                 "worker_path, slots, threads_per_job, memory_budget, max_job_memory, "
                 "default_job_memory_limit, hard_limit_margin, frame_max, max_connections, "
                 "output_buffer_max, idle_timeout, frame_timeout, cancel_grace_ms, step_every, memory_sample_ms, keep_checkpoints, "
                 "checkpoint_every, share_results, retention, metrics_textfile, metrics_interval)");
}

static void test_bad_integer_names_key_and_line(void **state)
{
    expect_error("# a\n# b\n# c\n# d\n# e\n# f\nslots: x\n", MT_E_INVAL,
                 "memtraind.yaml:7: slots: expected a positive integer, got 'x'");
    expect_error("slots: 0\n", MT_E_INVAL, "memtraind.yaml:1: slots: expected a positive integer");
    expect_error("slots: -2\n", MT_E_INVAL, "slots: expected a positive integer, got '-2'");
    expect_error("slots: 1.5\n", MT_E_INVAL, "slots: expected a positive integer, got '1.5'");
    expect_error("slots: 5000\n", MT_E_INVAL, "slots: 5000 is outside 1 to 1024");
    expect_error("step_every: -1\n", MT_E_INVAL,
                 "step_every: expected a non-negative integer, got '-1'");
    expect_error("threads_per_job: many\n", MT_E_INVAL,
                 "threads_per_job: expected a positive integer or auto, got 'many'");
    expect_error("keep_checkpoints:\n", MT_E_INVAL, "keep_checkpoints: expected a positive "
                 "integer, got nothing");
    expect_error("share_results: everyone\n", MT_E_INVAL,
                 "memtraind.yaml:1: share_results: expected owner or group, got 'everyone'");
}

static void test_bad_size_names_key_and_line(void **state)
{
    expect_error("slots: 2\nmemory_budget: 16Q\n", MT_E_INVAL,
                 "memtraind.yaml:2: memory_budget: expected a byte count such as 512MiB, 2G "
                 "or 1e9, got '16Q'");
    expect_error("memory_budget: 0\n", MT_E_INVAL, "memtraind.yaml:1: memory_budget: 0 is "
                 "outside");
    expect_error("frame_max: 4G\n", MT_E_INVAL, "frame_max: 4G is outside 1.00 KiB to 1.00 GiB");
    expect_error("memory_budget: [1, 2]\n", MT_E_INVAL,
                 "memory_budget: expected a byte count such as 512MiB, 2G or 1e9, got a list");
}

static void test_bad_duration_names_key_and_line(void **state)
{
    expect_error("\ncancel_grace_ms: 10 parsecs\n", MT_E_INVAL,
                 "memtraind.yaml:2: cancel_grace_ms: expected a duration such as 10s, 500ms");
    expect_error("memory_sample_ms: 1ms\n", MT_E_INVAL,
                 "memory_sample_ms: 1ms is outside 10 ms to");
}

/* retention: a mapping of its own, in flow or block style; ages take days;
 * its mistakes name the section's key. */
static void test_retention_section(void **state)
{
    (void)state;
    struct mt_config c;
    struct mt_err err = {0};
    char path[256];
    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(c.retention_keep_checkpoints, -1);   /* off by default */
    assert_int_equal(c.retention_checkpoints_max_age_ms, 0);
    assert_int_equal(c.retention_jobs_max_age_ms, 0);
    assert_int_equal(c.retention_interval_ms, 86400000);
    write_file(path, sizeof path, "memtraind.yaml",
               "slots: 2\nretention:\n  finished_keep_checkpoints: 1\n"
               "  checkpoints_max_age: 30d\n  jobs_max_age: 1.5w\n  interval: 12h\n");
    if (config_load_file(&c, path, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(c.slots, 2);
    assert_int_equal(c.retention_keep_checkpoints, 1);
    assert_int_equal(c.retention_checkpoints_max_age_ms, 30ull * 86400000);
    assert_int_equal(c.retention_jobs_max_age_ms, 1.5 * 7 * 86400000);
    assert_int_equal(c.retention_interval_ms, 12ull * 3600000);
    config_free(&c);
    assert_int_equal(config_defaults(&c), 0);
    write_file(path, sizeof path, "memtraind.yaml",
               "retention: {finished_keep_checkpoints: 0, checkpoints_max_age: 0}\n");
    if (config_load_file(&c, path, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(c.retention_keep_checkpoints, 0);
    assert_int_equal(c.retention_checkpoints_max_age_ms, 0);
    config_free(&c);
    expect_error("retention: 5\n", MT_E_INVAL, "memtraind.yaml:1: retention: expected a mapping");
    expect_error("retention:\n  checkpoints_max_age: 30\n", MT_E_INVAL,
                 "memtraind.yaml:2: retention.checkpoints_max_age: expected an age such as 30d");
    expect_error("retention: {keep: 1}\n", MT_E_INVAL,
                 "retention.keep: unknown key (expected one of: finished_keep_checkpoints");
    expect_error("retention: {interval: 10ms}\n", MT_E_INVAL,
                 "retention.interval: 10ms is shorter than 1000 ms");
    expect_error("retention: {finished_keep_checkpoints: -1}\n", MT_E_INVAL,
                 "expected a non-negative integer or all up to 10000, got '-1'");
}

static void test_bad_structure_is_refused(void **state)
{
    expect_error("slots: 1\nslots: 2\n", MT_E_INVAL,
                 "memtraind.yaml:2: slots: given twice (first at line 1)");
    expect_error("- slots\n", MT_E_INVAL, "memtraind.yaml:1: expected a mapping of settings");
    expect_error("slots: \"1\n", MT_E_INVAL, "YAML syntax error");
    expect_error("slots: &x 1\nstep_every: *x\n", MT_E_INVAL, "aliases are not supported");
    expect_error("slots: 1\n---\nslots: 2\n", MT_E_INVAL,
                 "memtraind.yaml:2: more than one YAML document");
    expect_error("socket_path: ''\n", MT_E_INVAL, "socket_path: expected a path, got ''");
    expect_error("memory_budget: 1G\nmax_job_memory: 2G\n", MT_E_INVAL,
                 "max_job_memory: 2.00 GiB is above memory_budget 1.00 GiB");
    expect_error("socket_path: /tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
                 MT_E_INVAL, "is longer than the 107 an AF_UNIX address holds");
}

/* ------------------------------------------------------------------------ */
/* Sizes and durations                                                      */

/* Sizes use the one byte-count grammar (memtrain/bytesize.h, tested in
 * tests/engine/test-bytesize.c): a sample of its forms through a file. */
static void test_sizes_parse(void **state)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } good[] = {
        {"4096", 4096}, {"16G", 16ull << 30}, {"16g", 16ull << 30}, {"512M", 512ull << 20},
        {"2.5GiB", 2684354560ull}, {"1K", 1024}, {"100kB", 100000}, {"1e9", 1000000000},
        {"1.5 K", 1536}, {"7B", 7}, {"0.7", 1} /* rounds */,
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct mt_config c;
        struct mt_err err = {0};
        char path[256], yaml[64];
        snprintf(yaml, sizeof yaml, "hard_limit_margin: %s\n", good[i].text);
        write_file(path, sizeof path, "sizes.yaml", yaml);
        assert_int_equal(config_defaults(&c), 0);
        if (config_load_file(&c, path, &err) != 0 || c.hard_limit_margin != good[i].bytes)
            fail_msg("'%s': got %llu (%s), wanted %llu", good[i].text,
                     (unsigned long long)c.hard_limit_margin, err.msg,
                     (unsigned long long)good[i].bytes);
        config_free(&c);
    }
    expect_error("hard_limit_margin: 20EiB\n", MT_E_INVAL, "memtraind.yaml:1: "
                 "hard_limit_margin: '20EiB' is too large (at most 9223372036854775807 bytes)");
    expect_error("hard_limit_margin: -1\n", MT_E_INVAL, "memtraind.yaml:1: "
                 "hard_limit_margin: expected a byte count such as 512MiB, 2G or 1e9, got '-1'");
}

static void test_durations_parse(void **state)
{
    static const struct {
        const char *text;
        uint64_t ms;
    } good[] = {
        {"0", 0}, {"250", 250}, {"500ms", 500}, {"10s", 10000}, {"1.5s", 1500},
        {"2min", 120000}, {"2m", 120000}, {"1h", 3600000}, {"3 s", 3000}, {"0.0004s", 0},
    };
    static const char *const bad[] = {
        "", "-5s", "10 parsecs", "5d", "50000h", "s", "1.5.s", "10S",
    };
    uint64_t v;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        v = 12345;
        if (config_parse_duration(good[i].text, &v) != 0 || v != good[i].ms)
            fail_msg("'%s': got %llu, wanted %llu", good[i].text, (unsigned long long)v,
                     (unsigned long long)good[i].ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (config_parse_duration(bad[i], &v) != MT_E_INVAL)
            fail_msg("'%s' was accepted as %llu", bad[i], (unsigned long long)v);
}

/* ------------------------------------------------------------------------ */
/* Reload                                                                   */

static void test_reload_applies_only_live_fields(void **state)
{
    struct mt_config live, fresh;
    struct mt_err err = {0};
    char path[256], changed[1024];

    write_file(path, sizeof path, "reload.yaml",
               "socket_path: /run/a.sock\nslots: 1\nmemory_budget: 8G\nframe_max: 1M\n");
    assert_int_equal(config_defaults(&live), 0);
    assert_int_equal(config_load_file(&live, path, &err), 0);

    /* the same file again: nothing to do */
    assert_int_equal(config_reload_file(&live, &fresh, &err), 0);
    assert_int_equal(config_apply_reload(&live, &fresh, changed, sizeof changed), 0);
    assert_string_equal(changed, "no change");
    config_free(&fresh);

    write_file(path, sizeof path, "reload.yaml",
               "socket_path: /run/b.sock\nslots: 3\nmemory_budget: 12G\nframe_max: 2M\n"
               "cancel_grace_ms: 2s\nstep_every: 50\nmemory_sample_ms: 250\n"
               "max_job_memory: 6G\ndefault_job_memory_limit: 1G\n");
    assert_int_equal(config_reload_file(&live, &fresh, &err), 0);
    /* slots, budget, max, default, grace, step, sample; threads_per_job
     * (auto) too when online CPUs / 3 differs from online CPUs */
    unsigned cpus = config_online_cpus(), t3 = cpus / 3 ? cpus / 3 : 1;
    int n = config_apply_reload(&live, &fresh, changed, sizeof changed);
    assert_int_equal(n, 7 + (t3 != cpus));
    assert_int_equal(live.threads_per_job, t3);
    assert_int_equal(live.slots, 3);
    assert_int_equal(live.memory_budget, 12ull << 30);
    assert_int_equal(live.max_job_memory, 6ull << 30);
    assert_int_equal(live.default_job_memory_limit, 1ull << 30);
    assert_int_equal(live.cancel_grace_ms, 2000);
    assert_int_equal(live.step_every, 50);
    assert_int_equal(live.memory_sample_ms, 250);
    assert_string_equal(live.socket_path, "/run/a.sock");   /* fixed */
    assert_int_equal(live.frame_max, 1u << 20);             /* fixed */
    assert_non_null(strstr(changed, "slots 1 -> 3"));
    assert_non_null(strstr(changed, "memory_budget 8.00 GiB -> 12.00 GiB"));
    assert_non_null(strstr(changed, "cancel_grace_ms 10000 -> 2000"));
    assert_non_null(strstr(changed, "socket_path differs but needs a restart"));
    assert_non_null(strstr(changed, "frame_max differs but needs a restart"));
    assert_null(strstr(changed, "db_path"));
    config_free(&fresh);

    /* share_results is live */
    write_file(path, sizeof path, "reload.yaml",
               "socket_path: /run/b.sock\nslots: 3\nmemory_budget: 12G\nframe_max: 2M\n"
               "cancel_grace_ms: 2s\nstep_every: 50\nmemory_sample_ms: 250\n"
               "max_job_memory: 6G\ndefault_job_memory_limit: 1G\nshare_results: group\n");
    assert_int_equal(live.share_results, MT_SHARE_OWNER);
    assert_int_equal(config_reload_file(&live, &fresh, &err), 0);
    assert_int_equal(config_apply_reload(&live, &fresh, changed, sizeof changed), 1);
    assert_int_equal(live.share_results, MT_SHARE_GROUP);
    assert_non_null(strstr(changed, "share_results owner -> group"));
    config_free(&fresh);

    /* a broken file leaves the live config alone */
    write_file(path, sizeof path, "reload.yaml", "slots: lots\n");
    assert_int_equal(config_reload_file(&live, &fresh, &err), MT_E_INVAL);
    assert_non_null(strstr(err.msg, "reload.yaml:1: slots:"));
    assert_null(fresh.socket_path);
    assert_int_equal(live.slots, 3);

    /* a small buffer is cut, never overrun */
    char tiny[16];
    memset(tiny, 'x', sizeof tiny);
    struct mt_config other = live;
    other.slots = 9;
    other.step_every = 1;
    assert_int_equal(config_apply_reload(&live, &other, tiny, 8), 2);
    assert_int_equal(strlen(tiny), 7);
    assert_int_equal(tiny[8], 'x');
    config_free(&live);
}

/* ------------------------------------------------------------------------ */
/* Directories                                                              */

static void test_ensure_dir_creates_with_mode_and_refuses_unsafe(void **state)
{
    struct mt_err err = {0};
    char dir[256], file[300];
    struct stat st;
    mode_t old = umask(022);

    snprintf(dir, sizeof dir, "%s/a/b/c", tmpdir);
    assert_int_equal(config_ensure_dir(dir, 0700, &err), 0);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(config_ensure_dir(dir, 0700, &err), 0);   /* exists: fine */

    /* the mode is exact even when the umask would trim it */
    umask(077);
    snprintf(dir, sizeof dir, "%s/sockdir/", tmpdir);
    assert_int_equal(config_ensure_dir(dir, 0750, &err), 0);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0750);
    umask(022);

    snprintf(file, sizeof file, "%s/state/x/memtrain.db", tmpdir);
    assert_int_equal(config_ensure_parent_dir(file, 0700, &err), 0);
    snprintf(dir, sizeof dir, "%s/state/x", tmpdir);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* a file where the directory should be */
    write_file(file, sizeof file, "plain", "x");
    assert_int_equal(config_ensure_dir(file, 0700, &err), MT_E_IO);
    assert_non_null(strstr(err.msg, "is not a directory"));
    snprintf(dir, sizeof dir, "%s/plain/sub", tmpdir);
    assert_int_equal(config_ensure_dir(dir, 0700, &err), MT_E_IO);

    /* a directory others may write to (no sticky bit) */
    snprintf(dir, sizeof dir, "%s/open", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(config_ensure_dir(dir, 0750, &err), MT_E_PERM);
    assert_non_null(strstr(err.msg, "writable by everyone"));
    assert_int_equal(chmod(dir, 01777), 0);   /* like /tmp: fine */
    assert_int_equal(config_ensure_dir(dir, 0750, &err), 0);

    /* owned by someone else: only testable as root */
    if (geteuid() == 0) {
        snprintf(dir, sizeof dir, "%s/theirs", tmpdir);
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_int_equal(chown(dir, 65534, 65534), 0);
        assert_int_equal(config_ensure_dir(dir, 0750, &err), MT_E_PERM);
        assert_non_null(strstr(err.msg, "owned by uid 65534"));
    }
    umask(old);
}

/* ------------------------------------------------------------------------ */
/* Log lines                                                                */

struct capture {
    int saved, rd;
};

static void capture_begin(struct capture *cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stderr);
    cap->saved = dup(STDERR_FILENO);
    assert_true(cap->saved >= 0);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    close(p[1]);
    cap->rd = p[0];
}

/* Restore stderr; return what was written (malloc'd, NUL-terminated). */
static char *capture_end(struct capture *cap)
{
    dup2(cap->saved, STDERR_FILENO);
    close(cap->saved);
    size_t len = 0, size = 8192;
    char *buf = malloc(size);
    assert_non_null(buf);
    for (;;) {
        if (len + 1 == size) {
            buf = realloc(buf, size *= 2);
            assert_non_null(buf);
        }
        ssize_t n = read(cap->rd, buf + len, size - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(cap->rd);
    buf[len] = '\0';
    return buf;
}

static void test_log_journal_prefix_and_line_splitting(void **state)
{
    struct capture cap;
    capture_begin(&cap);
    log_init(LOG_DEBUG, 1);
    log_err("disk %s", "full");
    log_warn("first\nsecond\n\nfourth");
    log_notice("trailing newline ends the message\n");
    log_info("%d jobs", 3);
    log_debug("debug shown at LOG_DEBUG");
    log_init(LOG_INFO, 1);
    log_debug("debug hidden at LOG_INFO");
    errno = EAGAIN;
    log_info("errno survives");
    int e = errno;
    char *out = capture_end(&cap);
    assert_int_equal(e, EAGAIN);
    assert_string_equal(out,
                        "<3>disk full\n"
                        "<4>first\n<4>second\n<4>\n<4>fourth\n"
                        "<5>trailing newline ends the message\n"
                        "<6>3 jobs\n"
                        "<7>debug shown at LOG_DEBUG\n"
                        "<6>errno survives\n");
    free(out);
}

static void test_log_long_multiline_message(void **state)
{
    /* past both stack buffers: 300 lines of 20 characters */
    char *msg = malloc(300 * 21 + 1), *p = msg;
    assert_non_null(msg);
    for (int i = 0; i < 300; i++)
        p += sprintf(p, "%s%019d", i ? "\n" : "", i);
    struct capture cap;
    capture_begin(&cap);
    log_init(LOG_INFO, 1);
    log_info("%s", msg);
    char *out = capture_end(&cap);
    int lines = 0;
    for (char *l = out; *l; l = strchr(l, '\n') + 1) {
        char want[32];
        snprintf(want, sizeof want, "<6>%019d\n", lines);
        if (strncmp(l, want, strlen(want)) != 0)
            fail_msg("line %d: %.30s", lines, l);
        lines++;
    }
    assert_int_equal(lines, 300);
    free(out);
    free(msg);
}

static void test_log_readable_format_outside_the_journal(void **state)
{
    struct capture cap;
    regex_t re;
    char pattern[256];
    snprintf(pattern, sizeof pattern,
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} "
             "test-config\\[%ld\\]: warning: disk 3\n"
             "[0-9]{4}[0-9-]{6}T[0-9:]{8}\\.[0-9]{3} test-config\\[%ld\\]: warning: line two\n$",
             (long)getpid(), (long)getpid());
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    capture_begin(&cap);
    log_init(LOG_INFO, 0);
    int journal = log_journal_format();
    log_warn("disk %d\nline two", 3);
    char *out = capture_end(&cap);
    assert_false(journal);
    if (regexec(&re, out, 0, NULL, 0) != 0)
        fail_msg("unexpected line(s):\n%s", out);
    regfree(&re);
    free(out);
}

static void test_log_detects_journal_stream(void **state)
{
    struct capture cap;
    struct stat st;
    char js[64];
    capture_begin(&cap);
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    log_init(LOG_INFO, 0);
    int journal = log_journal_format();
    log_warn("to the journal");
    /* another stream's identity: readable again */
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    setenv("JOURNAL_STREAM", js, 1);
    log_init(LOG_INFO, 0);
    int journal2 = log_journal_format();
    char *out = capture_end(&cap);
    unsetenv("JOURNAL_STREAM");
    assert_true(journal);
    assert_false(journal2);
    assert_string_equal(out, "<4>to the journal\n");
    free(out);
}

/* ------------------------------------------------------------------------ */
/* sd_notify                                                                */

static int bind_dgram(struct sockaddr_un *sa, socklen_t len)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)sa, len), 0);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void expect_datagram(int fd, const char *want_prefix)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n < 0)
        fail_msg("no datagram: %s", strerror(errno));
    buf[n] = '\0';
    if (strncmp(buf, want_prefix, strlen(want_prefix)) != 0)
        fail_msg("got \"%s\", wanted \"%s...\"", buf, want_prefix);
}

static void test_notify_send_reaches_the_socket(void **state)
{
    /* unset: a no-op */
    assert_int_equal(notify_send("READY=1"), 0);

    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char path[256];
    snprintf(path, sizeof path, "%s/notify", tmpdir);
    assert_true(strlen(path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = bind_dgram(&sa, sizeof sa);
    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
    assert_int_equal(notify_send("READY=1"), 0);
    expect_datagram(fd, "READY=1");
    assert_int_equal(notify_sendf("STATUS=%d running, %d queued", 2, 1), 0);
    expect_datagram(fd, "STATUS=2 running, 1 queued");
    assert_int_equal(notify_reloading(), 0);
    expect_datagram(fd, "RELOADING=1\nMONOTONIC_USEC=");
    close(fd);
    unlink(sa.sun_path);

    /* nobody listening any more */
    assert_int_equal(notify_send("STOPPING=1"), -ENOENT);

    /* abstract names: "@name" */
    char name[64];
    snprintf(name, sizeof name, "@memtrain-test-notify-%ld", (long)getpid());
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path + 1, name + 1, strlen(name) - 1);
    fd = bind_dgram(&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name)));
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(notify_send("STOPPING=1"), 0);
    expect_datagram(fd, "STOPPING=1");
    close(fd);

    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(notify_send("READY=1"), -EINVAL);
    setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
    assert_int_equal(notify_send("READY=1"), -EAFNOSUPPORT);
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults_are_sane, each_setup),
        cmocka_unit_test_setup(test_socket_path_follows_environment, each_setup),
        cmocka_unit_test_setup(test_db_path_follows_environment, each_setup),
        cmocka_unit_test_setup(test_worker_path_from_environment, each_setup),
        cmocka_unit_test_setup(test_default_file_may_be_absent_an_explicit_one_not, each_setup),
        cmocka_unit_test_setup(test_good_file_sets_every_field, each_setup),
        cmocka_unit_test_setup(test_empty_file_and_threads_auto, each_setup),
        cmocka_unit_test_setup(test_shipped_example_parses_and_shows_defaults, each_setup),
        cmocka_unit_test_setup(test_unknown_key_names_key_and_line, each_setup),
        cmocka_unit_test_setup(test_bad_integer_names_key_and_line, each_setup),
        cmocka_unit_test_setup(test_bad_size_names_key_and_line, each_setup),
        cmocka_unit_test_setup(test_bad_duration_names_key_and_line, each_setup),
        cmocka_unit_test_setup(test_bad_structure_is_refused, each_setup),
        cmocka_unit_test_setup(test_retention_section, each_setup),
        cmocka_unit_test_setup(test_sizes_parse, each_setup),
        cmocka_unit_test(test_durations_parse),
        cmocka_unit_test_setup(test_reload_applies_only_live_fields, each_setup),
        cmocka_unit_test_setup(test_ensure_dir_creates_with_mode_and_refuses_unsafe, each_setup),
        cmocka_unit_test_setup(test_log_journal_prefix_and_line_splitting, each_setup),
        cmocka_unit_test_setup(test_log_long_multiline_message, each_setup),
        cmocka_unit_test_setup(test_log_readable_format_outside_the_journal, each_setup),
        cmocka_unit_test_setup(test_log_detects_journal_stream, each_setup),
        cmocka_unit_test_setup(test_notify_send_reaches_the_socket, each_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
