/* Description: worker buffer pool: classes, reuse without malloc, budget. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "dp_pool.h"

static void test_classes_and_reuse(void **state)
{
    dp_pool_t pool;
    size_t cap;
    void *a, *b;

    dp_pool_init(&pool, 1 << 20);
    a = dp_pool_alloc(&pool, 1, &cap);
    assert_non_null(a);
    assert_int_equal(cap, 4096);
    assert_int_equal((uintptr_t)a % 64, 0);
    memset(a, 0xab, cap);
    dp_pool_free(&pool, a);
    b = dp_pool_alloc(&pool, 4000, &cap);
    assert_ptr_equal(a, b); /* the cached block comes back */
    assert_int_equal(pool.stats.mallocs, 1);
    dp_pool_free(&pool, b);
    a = dp_pool_alloc(&pool, 4097, &cap);
    assert_int_equal(cap, 8192);
    assert_int_equal(pool.stats.mallocs, 2);
    dp_pool_free(&pool, a);
    dp_pool_free(&pool, NULL);
    assert_int_equal(pool.stats.live_bytes, 0);
    dp_pool_dispose(&pool);
}

static void test_budget(void **state)
{
    dp_pool_t pool;
    void *blocks[8];

    dp_pool_init(&pool, 64 * 1024);
    for (int i = 0; i < 4; i++) {
        blocks[i] = dp_pool_alloc(&pool, 16 * 1024, NULL);
        assert_non_null(blocks[i]);
    }
    assert_null(dp_pool_alloc(&pool, 1, NULL)); /* over budget */
    assert_int_equal(pool.stats.denied, 1);
    assert_int_equal(dp_pool_available(&pool), 0);
    /* Cached blocks of another class are dropped to make room. */
    dp_pool_free(&pool, blocks[0]);
    dp_pool_free(&pool, blocks[1]);
    blocks[0] = dp_pool_alloc(&pool, 32 * 1024, NULL);
    assert_non_null(blocks[0]);
    assert_int_equal(pool.stats.cached_bytes, 0);
    assert_null(dp_pool_alloc(&pool, (size_t)1 << 30, NULL)); /* larger than any class */
    dp_pool_free(&pool, blocks[0]);
    dp_pool_free(&pool, blocks[2]);
    dp_pool_free(&pool, blocks[3]);
    dp_pool_dispose(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes_and_reuse),
        cmocka_unit_test(test_budget),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
