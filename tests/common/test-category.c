/* test-category.c: the memory category names, in the arena's order. They are
 * JSON keys of memtrain-run and row labels of mtctl: renaming one breaks
 * their readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "memtrain/category.h"

static void test_names_in_order(void **state)
{
    (void)state;
    static const char *const want[] = {
        "params", "grads", "optimizer", "activations", "workspace", "data",
    };
    assert_int_equal(MT_MEM_NCAT, sizeof want / sizeof want[0]);
    assert_string_equal(mt_mem_cat_name(MT_MEM_PARAMS), "params");
    assert_string_equal(mt_mem_cat_name(MT_MEM_OPTIM), "optimizer");
    assert_string_equal(mt_mem_cat_name(MT_MEM_ACTS), "activations");
    for (int c = 0; c < MT_MEM_NCAT; c++)
        assert_string_equal(mt_mem_cat_name((enum mt_mem_cat)c), want[c]);
}

static void test_out_of_range(void **state)
{
    (void)state;
    assert_string_equal(mt_mem_cat_name(MT_MEM_NCAT), "?");
    assert_string_equal(mt_mem_cat_name((enum mt_mem_cat)-1), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_in_order),
        cmocka_unit_test(test_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
