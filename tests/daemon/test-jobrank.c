/* test-jobrank.c: what mtctl compare and plot rank stored jobs by
 * (client/jobrank.c) and the sparklines (client/spark.c), on made-up jobs.
 *
 * The Pareto front is checked against a sweep over the jobs sorted by
 * memory (a job is on the front when its accuracy beats every job with less
 * memory and is the best of those with the same memory), on random sets
 * with many ties; the order by memory puts jobs without a figure last; a
 * group's members are the jobs carrying its id, with the first job whether
 * the daemon gives it its own id or none; the sparkline's blocks, scale
 * and resampling are checked character by character. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jobfig.h"
#include "spark.h"

static Memtrain__Response fetched;   /* stands for a fetched job's Show */

/* A job with the given test accuracies and peak total (0 = none known). */
static void make_job(struct job_fig *f, uint64_t id, const double *acc, int n, uint64_t peak)
{
    memset(f, 0, sizeof *f);
    f->id = id;
    f->show = &fetched;
    report_row_init(&f->row);
    for (int e = 0; e < n; e++) {
        struct report_epoch ep = {.epoch = e + 1, .test_accuracy = acc[e]};
        assert_int_equal(report_row_add_epoch(&f->row, &ep), 0);
    }
    f->row.mem.known = peak > 0;
    f->row.mem.peak_total = peak;
}

static void free_jobs(struct job_fig *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        report_row_deinit(&f[i].row);
}

static void test_pareto_by_hand(void **state)
{
    (void)state;
    struct job_fig f[6];
    make_job(&f[0], 1, (double[]){0.5, 0.9}, 2, 100);   /* the least memory */
    make_job(&f[1], 2, (double[]){0.95}, 1, 200);       /* more accurate, more memory */
    make_job(&f[2], 3, (double[]){0.9}, 1, 150);        /* job 1's accuracy, more memory */
    make_job(&f[3], 4, (double[]){0.95, 0.94}, 2, 200); /* equal to job 2: both stay */
    make_job(&f[4], 5, NULL, 0, 50);                    /* no epoch yet */
    make_job(&f[5], 6, (double[]){0.99}, 1, 0);         /* no peak known */
    unsigned char front[6];
    jobfig_pareto(f, 6, front);
    const unsigned char want[6] = {1, 1, 0, 1, 0, 0};
    assert_memory_equal(front, want, 6);
    assert_true(isnan(jobfig_best_accuracy(&f[4])));
    assert_true(jobfig_best_accuracy(&f[0]) == 0.9);
    assert_true(jobfig_last_accuracy(&f[3]) == 0.94);

    size_t order[6];
    f[1].show = NULL;   /* not fetched: left out */
    assert_int_equal(jobfig_order_by_peak(f, 6, order), 5);
    const size_t want_order[5] = {4, 0, 2, 3, 5};   /* 50, 100, 150, 200; unknown last */
    assert_memory_equal(order, want_order, sizeof want_order);
    free_jobs(f, 6);
}

/* The reference: sorted by memory, a job is on the front when its
 * accuracy is above every job's with less memory and the best among the
 * jobs with its memory. */
static void pareto_sweep(const double *acc, const uint64_t *mem, size_t n, unsigned char *front)
{
    for (size_t i = 0; i < n; i++) {
        double best_below = -INFINITY, best_same = -INFINITY;
        for (size_t k = 0; k < n; k++) {
            if (mem[k] < mem[i])
                best_below = fmax(best_below, acc[k]);
            else if (mem[k] == mem[i])
                best_same = fmax(best_same, acc[k]);
        }
        front[i] = acc[i] > best_below && acc[i] == best_same;
    }
}

static void test_pareto_against_sweep(void **state)
{
    (void)state;
    srand(13);
    for (int trial = 0; trial < 300; trial++) {
        size_t n = 1 + (size_t)(rand() % 12);
        struct job_fig f[12];
        double acc[12];
        uint64_t mem[12];
        unsigned char front[12], want[12];
        for (size_t i = 0; i < n; i++) {
            acc[i] = (double)(rand() % 5) / 4;   /* few values: many ties */
            mem[i] = 1 + (uint64_t)(rand() % 6);
            make_job(&f[i], i + 1, &acc[i], 1, mem[i]);
        }
        jobfig_pareto(f, n, front);
        pareto_sweep(acc, mem, n, want);
        assert_memory_equal(front, want, n);
        free_jobs(f, n);
    }
}

static Memtrain__Job *job(Memtrain__Job *j, uint64_t id, uint64_t group)
{
    memtrain__job__init(j);
    j->id = id;
    j->group_id = group;
    return j;
}

static void test_group_members(void **state)
{
    (void)state;
    Memtrain__Job j[7];
    uint64_t ids[7];
    /* the first job without a group id: 4 leads 5 and 7; 6 is another group */
    Memtrain__Job *a[] = {job(&j[0], 7, 4), job(&j[1], 6, 6), job(&j[2], 5, 4),
                          job(&j[3], 4, 0), job(&j[4], 3, 0)};
    assert_int_equal(jobfig_group_members(a, 5, 4, ids), 3);
    assert_true(ids[0] == 4 && ids[1] == 5 && ids[2] == 7);
    /* a lone job is no group */
    assert_int_equal(jobfig_group_members(a, 5, 3, ids), 0);
    /* 6 alone with its own id: a group of one */
    assert_int_equal(jobfig_group_members(a, 5, 6, ids), 1);
    assert_true(ids[0] == 6);
    /* the first job carrying its own id */
    Memtrain__Job *b[] = {job(&j[0], 12, 10), job(&j[1], 11, 10), job(&j[2], 10, 10),
                          job(&j[3], 9, 0)};
    assert_int_equal(jobfig_group_members(b, 4, 10, ids), 3);
    assert_true(ids[0] == 10 && ids[1] == 11 && ids[2] == 12);
}

static void test_spark_line(void **state)
{
    (void)state;
    char buf[128];
    const double v[] = {0, 0.5, 1, NAN, 0.999};
    assert_string_equal(spark_line(buf, sizeof buf, v, 5, 0, 1, 10),
                        "\u2581\u2585\u2588 \u2588");
    /* below and above the range: clamped */
    assert_string_equal(spark_line(buf, sizeof buf, (double[]){-3, 7}, 2, 0, 1, 10),
                        "\u2581\u2588");
    /* more values than cells: each cell shows the last value of its share */
    const double ramp[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    assert_string_equal(spark_line(buf, sizeof buf, ramp, 8, 0, 8, 4),
                        "\u2582\u2584\u2586\u2588");
    /* one value, or a flat series: half height */
    assert_string_equal(spark_line(buf, sizeof buf, ramp + 3, 1, 3, 3, 4), "\u2584");
    assert_string_equal(spark_line(buf, sizeof buf, ramp, 0, 0, 1, 4), "");
    assert_string_equal(spark_line(buf, sizeof buf, ramp, 8, 0, 8, 0), "");
    /* a short buffer ends on a character boundary */
    assert_string_equal(spark_line(buf, 8, ramp, 8, 0, 8, 8), "\u2581\u2582");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pareto_by_hand),
        cmocka_unit_test(test_pareto_against_sweep),
        cmocka_unit_test(test_group_members),
        cmocka_unit_test(test_spark_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
