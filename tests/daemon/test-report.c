/* test-report.c: the reproduction report's table (daemon/report), which
 * memtrain-report and `mtctl report` both print through.
 *
 * The two CSV headers are compared with the schema written out here and
 * in docs/rules/report.md, and rows of both kinds (a memtrain-report run
 * with every figure, a stored job that failed before its first epoch, a
 * stored job's epoch with the figures the daemon does not keep) with
 * their exact text, so a column cannot be renamed, moved or dropped in one
 * place only. Every line has as many fields as its header. The markdown
 * rows are checked to line up: ncols + 1 bars whatever a cell holds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reporttable.h"

/* The schema (docs/rules/report.md, "CSV columns"). */
static const char summary_head[] =
    "job_id,name,label,rule,table,network,optimizer,state,message,epochs_planned,epochs_done,"
    "best_error_pct,best_epoch,last_error_pct,paper_error_pct,paper_count_scope,"
    "paper_count_forward,paper_count_gradient,paper_count_update,formula_extra_forward,"
    "formula_extra_gradient,formula_extra_update,paper_forward_mb,paper_gradient_mb,"
    "paper_update_mb,phase_peak_forward,phase_peak_gradient,phase_peak_update,"
    "kept_activations,bp_kept_activations,ratio_to_bp,peak_total,params,grads,"
    "optimizer_bytes,workspace,data,rss_peak,seconds_per_epoch,steps_per_epoch";
static const char epochs_head[] =
    "job_id,label,rule,table,network,optimizer,epochs_planned,epoch,loss,train_accuracy,"
    "test_loss,test_accuracy,test_error_pct,seconds,eval_seconds,samples_per_second,lr,"
    "params,grads,optimizer_bytes,kept_activations,workspace,data,peak_total,"
    "phase_peak_forward,phase_peak_gradient,phase_peak_update,rss_peak,"
    "paper_count_forward,paper_count_gradient,paper_count_update,rule_metrics";

static const struct papermem_paper paper_bpbin = {
    "BP+BW+BA", "bp", 1, 4, 3.11, 10.00, {1.53, 49.53, 96.06}};

/* A memtrain-report run of bp+bw+ba: two epochs, every figure known. */
static void run_row(struct report_row *r)
{
    report_row_init(r);
    snprintf(r->label, sizeof r->label, "bp+bw+ba");
    snprintf(r->rule, sizeof r->rule, "bp");
    r->table = 1;
    snprintf(r->network, sizeof r->network, "784-2000x4-10 relu");
    snprintf(r->optimizer, sizeof r->optimizer, "adam lr 0.0001, constant");
    r->state = "ok";
    r->epochs_planned = 2;
    r->epochs_done = 2;
    r->pm.scope = PAPERMEM_ALL;
    r->pm.bytes[0] = 1500000;
    r->pm.bytes[1] = 49500000;
    r->pm.bytes[2] = 96000000;
    r->paper = &paper_bpbin;
    r->paper_error_pct = paper_bpbin.mnist_err;
    r->bp_kept_activations = 800;
    r->steps_per_epoch = 600;
    for (int k = 0; k < 2; k++) {
        struct report_epoch e = {
            .epoch = k + 1, .loss = 2.5 - k, .train_accuracy = 0.5, .test_loss = 2.25,
            .test_accuracy = k ? 0.875 : 0.75, .seconds = 1.5 + k, .eval_seconds = 0.25,
            .samples_per_second = 40000, .lr = 0.001,
            .mem = {.known = 1, .params = 1000, .grads = 2000, .optimizer = 3000,
                    .kept_activations = 400, .workspace = 500, .data = 600,
                    .peak_total = 7500, .phase_peak = {7000, 7400, 7300},
                    .rss_peak = 1048576},
            .n_metrics = 2,
            .metrics = {{"stage", k + 1.0}, {"live", 0.5}}};
        assert_int_equal(report_row_add_epoch(r, &e), 0);
    }
    r->mem = r->ep[1].mem;
}

/* A stored job that failed before its first epoch: figures unknown. */
static void job_row(struct report_row *r)
{
    report_row_init(r);
    r->job_id = 12;
    r->name = "say \"hi\", ok";
    snprintf(r->label, sizeof r->label, "fa");
    snprintf(r->rule, sizeof r->rule, "fa");
    snprintf(r->network, sizeof r->network, "784-256-10 relu");
    r->state = "FAILED";
    snprintf(r->message, sizeof r->message, "worker killed\nby signal 9");
    r->epochs_planned = 5;
}

/* A stored job's epoch: no test loss, evaluation time or memory. */
static void job_epoch_row(struct report_row *r)
{
    report_row_init(r);
    r->job_id = 7;
    snprintf(r->label, sizeof r->label, "bp");
    snprintf(r->rule, sizeof r->rule, "bp");
    snprintf(r->network, sizeof r->network, "784-64-10 relu");
    r->state = "RUNNING";
    r->epochs_planned = 3;
    r->epochs_done = 1;
    struct report_epoch e = {.epoch = 1, .loss = 0.5, .train_accuracy = 0.25,
                             .test_loss = NAN, .test_accuracy = 0.5, .seconds = 0.125,
                             .eval_seconds = NAN, .samples_per_second = 1000, .lr = 0.01};
    assert_int_equal(report_row_add_epoch(r, &e), 0);
}

/* What fn printed, as one malloc'd string. */
static char *printed(void (*fn)(FILE *, const struct report_row *const *, size_t),
                     const struct report_row *const *rows, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fn(f, rows, n);
    assert_int_equal(fclose(f), 0);
    return buf;
}

/* Line i (0-based) of text, copied into line. */
static void line_at(const char *text, int i, char *line, size_t len)
{
    for (; i > 0 && text; i--) {
        text = strchr(text, '\n');
        if (text)
            text++;
    }
    assert_non_null(text);
    size_t n = strcspn(text, "\n");
    assert_true(n < len);
    memcpy(line, text, n);
    line[n] = '\0';
}

/* CSV fields of a line (quoted commas do not count). */
static int csv_fields(const char *line)
{
    int n = 1, quoted = 0;
    for (; *line; line++) {
        if (*line == '"')
            quoted = !quoted;
        else if (*line == ',' && !quoted)
            n++;
    }
    return n;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static void test_csv_headers_are_the_schema(void **state)
{
    (void)state;
    assert_string_equal(report_csv_summary_head, summary_head);
    assert_string_equal(report_csv_epochs_head, epochs_head);
    assert_int_equal(csv_fields(summary_head), 40);
    assert_int_equal(csv_fields(epochs_head), 32);
}

static void test_summary_csv_rows_of_a_run_and_a_job(void **state)
{
    (void)state;
    struct report_row a, b;
    run_row(&a);
    job_row(&b);
    const struct report_row *rows[] = {&a, &b};
    char *out = printed(report_csv_summary, rows, 2);
    char line[2048];
    assert_int_equal(count_lines(out), 3);
    line_at(out, 0, line, sizeof line);
    assert_string_equal(line, summary_head);
    line_at(out, 1, line, sizeof line);
    assert_string_equal(line,
        ",\"\",bp+bw+ba,bp,1,\"784-2000x4-10 relu\",\"adam lr 0.0001, constant\",ok,\"\",2,2,"
        "12.5000,2,12.5000,3.11,All,1500000,49500000,96000000,0,0,0,1.53,49.53,96.06,"
        "7000,7400,7300,400,800,0.5,7500,1000,2000,3000,500,600,1048576,2,600");
    assert_int_equal(csv_fields(line), 40);
    line_at(out, 2, line, sizeof line);
    assert_string_equal(line,
        "12,\"say \"\"hi\"\", ok\",fa,fa,,\"784-256-10 relu\",\"\",FAILED,"
        "\"worker killed by signal 9\",5,0,,,,,n/a,,,,,,,,,,,,,,,,,,,,,,,,");
    assert_int_equal(csv_fields(line), 40);
    free(out);
    report_row_deinit(&a);
    report_row_deinit(&b);
}

static void test_epochs_csv_rows_of_a_run_and_a_job(void **state)
{
    (void)state;
    struct report_row a, c;
    run_row(&a);
    job_epoch_row(&c);
    const struct report_row *rows[] = {&a, &c};
    char *out = printed(report_csv_epochs, rows, 2);
    char line[2048];
    assert_int_equal(count_lines(out), 4);
    line_at(out, 0, line, sizeof line);
    assert_string_equal(line, epochs_head);
    line_at(out, 1, line, sizeof line);
    assert_string_equal(line,
        ",bp+bw+ba,bp,1,\"784-2000x4-10 relu\",\"adam lr 0.0001, constant\",2,1,2.5,0.5,2.25,"
        "0.75,25.000000,1.5,0.25,40000,0.001,1000,2000,3000,400,500,600,7500,7000,7400,7300,"
        "1048576,1500000,49500000,96000000,\"stage=1;live=0.5\"");
    line_at(out, 2, line, sizeof line);
    assert_int_equal(csv_fields(line), 32);
    assert_non_null(strstr(line, ",2,2,1.5,0.5,2.25,0.875,12.500000,2.5,"));
    line_at(out, 3, line, sizeof line);
    assert_string_equal(line,
        "7,bp,bp,,\"784-64-10 relu\",\"\",3,1,0.5,0.25,,0.5,50.000000,0.125,,1000,0.01,"
        ",,,,,,,,,,,,,,\"\"");
    assert_int_equal(csv_fields(line), 32);
    free(out);
    report_row_deinit(&a);
    report_row_deinit(&c);
}

static void test_markdown_rows_line_up(void **state)
{
    (void)state;
    static const char *const head[] = {"A", "B|C", "D"};
    static const char *const cells[] = {"1", "", NULL, "x|y", "two\nlines", "z"};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    report_md_table(f, 3, head, cells, 2);
    assert_int_equal(fclose(f), 0);
    assert_string_equal(buf, "| A | B/C | D |\n"
                             "|---|---|---|\n"
                             "| 1 | | - |\n"
                             "| x/y | two lines | z |\n");
    for (int i = 0; i < 4; i++) {
        char line[256];
        int bars = 0;
        line_at(buf, i, line, sizeof line);
        for (const char *p = line; *p; p++)
            bars += *p == '|';
        assert_int_equal(bars, 4);
    }
    free(buf);
}

static void test_figures_of_a_row(void **state)
{
    (void)state;
    struct report_row a, b;
    char cell[32];
    run_row(&a);
    job_row(&b);
    assert_int_equal(report_best_epoch(&a), 1);
    assert_int_equal(report_best_epoch(&b), -1);
    assert_true(report_mean_seconds(&a) == 2.0);
    assert_true(isnan(report_mean_seconds(&b)));
    const struct report_row *rows[] = {&b, &a};
    assert_int_equal(report_max_epochs(rows, 2), 2);
    assert_string_equal(report_curve_cell(cell, sizeof cell, &a, 0), "25.00");
    assert_string_equal(report_curve_cell(cell, sizeof cell, &a, 2), "");
    assert_string_equal(report_mb(cell, sizeof cell, 123456789), "123.5");
    assert_string_equal(report_mb(cell, sizeof cell, 1500000), "1.50");
    assert_string_equal(report_mb(cell, sizeof cell, 5600), "0.006");
    assert_string_equal(report_mb3(cell, sizeof cell, 1.5e6, 49.5e6, 96e6),
                        "1.50 / 49.50 / 96.00");
    report_row_deinit(&a);
    report_row_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_headers_are_the_schema),
        cmocka_unit_test(test_summary_csv_rows_of_a_run_and_a_job),
        cmocka_unit_test(test_epochs_csv_rows_of_a_run_and_a_job),
        cmocka_unit_test(test_markdown_rows_line_up),
        cmocka_unit_test(test_figures_of_a_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
