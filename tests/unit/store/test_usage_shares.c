/* test_usage_shares.c — the per-tenant counts of usage rows waiting for
 * the writer (store/usage_shares.h): adds and settles balance, a tenant
 * leaves the table at zero, and entries stay reachable through removals
 * in a table full of colliding runs (its linear-probing deletion). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/usage_shares.h"

static usage_rec row_of(const char *tenant_id)
{
    usage_rec u = {0};
    snprintf(u.tenant_id, sizeof u.tenant_id, "%s", tenant_id);
    return u;
}

static void test_adds_and_settles_balance(void **state)
{
    (void)state;
    usage_shares *s = usage_shares_new();
    size_t tenants = 99;
    assert_int_equal(usage_shares_of(s, "ten_a", &tenants), 0);
    assert_int_equal(tenants, 0);
    for (int i = 0; i < 7; i++) usage_shares_add(s, "ten_a");
    for (int i = 0; i < 2; i++) usage_shares_add(s, "ten_b");
    usage_shares_add(s, "");            /* no tenant: not counted */
    usage_shares_add(s, NULL);
    assert_int_equal(usage_shares_of(s, "ten_a", &tenants), 7);
    assert_int_equal(tenants, 2);
    assert_int_equal(usage_shares_of(s, "ten_b", NULL), 2);
    assert_int_equal(usage_shares_of(s, "ten_c", NULL), 0);

    /* a batch: runs of one tenant, and a row of a tenant never added */
    usage_rec batch[] = {row_of("ten_a"), row_of("ten_a"), row_of("ten_b"), row_of("ten_x"), row_of("ten_a")};
    usage_shares_settle(s, batch, 5);
    assert_int_equal(usage_shares_of(s, "ten_a", &tenants), 4);
    assert_int_equal(usage_shares_of(s, "ten_b", NULL), 1);
    assert_int_equal(tenants, 2);
    usage_rec last_b = row_of("ten_b");
    usage_shares_settle(s, &last_b, 1);
    assert_int_equal(usage_shares_of(s, "ten_b", &tenants), 0);
    assert_int_equal(tenants, 1);       /* ten_b left the table */
    /* more settled than added: the entry goes, nothing wraps */
    usage_rec five_a[5] = {row_of("ten_a"), row_of("ten_a"), row_of("ten_a"), row_of("ten_a"), row_of("ten_a")};
    usage_shares_settle(s, five_a, 5);
    assert_int_equal(usage_shares_of(s, "ten_a", &tenants), 0);
    assert_int_equal(tenants, 0);
    usage_shares_free(s);
}

#define MANY 600

/* Hundreds of tenants (the table grows and its runs collide), removed in
 * an order unlike the one they came in: every remaining tenant's count is
 * still found after each removal. */
static void test_many_tenants_removed_in_any_order(void **state)
{
    (void)state;
    usage_shares *s = usage_shares_new();
    char ids[MANY][ID_MAX];
    for (int i = 0; i < MANY; i++) {
        snprintf(ids[i], sizeof ids[i], "ten_%04d", i);
        for (int k = 0; k <= i % 3; k++) usage_shares_add(s, ids[i]);
    }
    size_t tenants = 0;
    usage_shares_of(s, ids[0], &tenants);
    assert_int_equal(tenants, MANY);
    int order[MANY];
    for (int i = 0; i < MANY; i++) order[i] = (i * 7919) % MANY;   /* 7919 is prime: a permutation */
    for (int n = 0; n < MANY; n++) {
        int gone = order[n];
        usage_rec r = row_of(ids[gone]);
        for (int k = 0; k <= gone % 3; k++) usage_shares_settle(s, &r, 1);
        assert_int_equal(usage_shares_of(s, ids[gone], &tenants), 0);
        assert_int_equal(tenants, (size_t)(MANY - n - 1));
        if (n % 50) continue;
        for (int m = n + 1; m < MANY; m++) {
            int left = order[m];
            assert_int_equal(usage_shares_of(s, ids[left], NULL), (uint64_t)(left % 3 + 1));
        }
    }
    usage_shares_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adds_and_settles_balance),
        cmocka_unit_test(test_many_tenants_removed_in_any_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
