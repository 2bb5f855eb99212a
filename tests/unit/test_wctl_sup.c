/* SPDX-License-Identifier: Apache-2.0 */
/* Description: weirctl's supervisor (wctl_sup) with real /bin/sh children:
 * output lines tagged with "proc", restarts with backoff until it gives up,
 * permanent exit codes, tiered stop (highest tier first), SIGKILL after the
 * grace period, and SIGTERM to weirctl read from the signalfd. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "wctl_sup.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A child that exits 0 on SIGTERM. */
#define POLITE "trap 'echo bye; exit 0' TERM; echo hello; while :; do sleep 0.05; done"

static char *slurp(FILE *f)
{
    long n;
    char *s;

    fflush(f);
    n = ftell(f);
    s = calloc(1, (size_t)n + 1);
    assert_non_null(s);
    rewind(f);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fseek(f, 0, SEEK_END);
    return s;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static wctl_sup_t *sup(FILE *out, int grace_ms)
{
    wctl_sup_opts_t o = {.out = out,
                         .backoff_min_ms = 20,
                         .backoff_max_ms = 80,
                         .max_failures = 3,
                         .stop_grace_ms = grace_ms};
    wctl_sup_t *s = wctl_sup_new(&o);

    assert_non_null(s);
    return s;
}

static int add_sh(wctl_sup_t *s, const char *name, const char *script, int tier)
{
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    const char *env[] = {"WCTL_TEST=1", NULL};
    wctl_child_spec_t c = {.name = name, .argv = argv, .env = env, .tier = tier};
    int idx = wctl_sup_add(s, &c);

    assert_true(idx >= 0);
    return idx;
}

/* Polls until `needle` shows up in the output (5 s at most). */
static void wait_output(wctl_sup_t *s, FILE *out, const char *needle)
{
    for (int i = 0; i < 100; i++) {
        char *all;
        int found;

        wctl_sup_poll(s, 50);
        all = slurp(out);
        found = strstr(all, needle) != NULL;
        free(all);
        if (found)
            return;
    }
    fail_msg("no \"%s\" in the output", needle);
}

static void test_output_and_stop(void **state)
{
    FILE *out = tmpfile();
    wctl_sup_t *s = sup(out, 5000);
    char *all;
    int a, b;

    (void)state;
    a = add_sh(s, "low", POLITE, 0);
    b = add_sh(s, "high",
               "trap 'echo bye; exit 0' TERM; echo "
               "\"{\\\"msg\\\":\\\"json\\\",\\\"env\\\":\\\"$WCTL_TEST\\\"}\"; "
               "while :; do sleep 0.05; done",
               2);
    wait_output(s, out, "\"proc\":\"high\",\"ts\":");
    wait_output(s, out, "{\"proc\":\"low\"");
    assert_true(wctl_sup_pid(s, a) > 0);
    assert_true(wctl_sup_pid(s, b) > 0);
    assert_int_equal(wctl_sup_stop(s), 0);
    assert_int_equal(wctl_sup_pid(s, a), 0);
    all = slurp(out);
    assert_non_null(strstr(all, "\"proc\":\"low\",\"ts\":"));
    assert_non_null(strstr(all, "\"msg\":\"hello\""));
    assert_non_null(strstr(all, "\"msg\":\"json\",\"env\":\"1\""));
    /* The higher tier is stopped (and says bye) before the lower one is signalled. */
    assert_true(strstr(all, "\"msg\":\"stopping\",\"child\":\"high\"") <
                strstr(all, "\"msg\":\"stopping\",\"child\":\"low\""));
    assert_true(strstr(all, "\"msg\":\"stopped\",\"child\":\"high\"") <
                strstr(all, "\"msg\":\"stopping\",\"child\":\"low\""));
    assert_int_equal(count(all, "\"status\":\"exit 0\""), 2);
    free(all);
    wctl_sup_free(s);
    fclose(out);
}

static void test_restart_then_give_up(void **state)
{
    FILE *out = tmpfile();
    wctl_sup_t *s = sup(out, 1000);
    wctl_sup_state_t st = WCTL_SUP_RUNNING;
    char *all;
    int idx;

    (void)state;
    idx = add_sh(s, "flaky", "echo run; exit 3", 1);
    for (int i = 0; i < 100 && st == WCTL_SUP_RUNNING; i++)
        st = wctl_sup_poll(s, 50);
    assert_int_equal(st, WCTL_SUP_FAILED);
    assert_string_equal(wctl_sup_failed_child(s), "flaky");
    /* max_failures 3: the fourth fast failure gives up; three restarts. */
    assert_int_equal(wctl_sup_restarts(s, idx), 3);
    all = slurp(out);
    assert_int_equal(count(all, "\"msg\":\"run\""), 4);
    assert_int_equal(count(all, "\"msg\":\"child exited, restarting\""), 3);
    assert_non_null(strstr(all, "\"restart_in_ms\":20"));
    assert_non_null(strstr(all, "\"restart_in_ms\":40"));
    assert_non_null(strstr(all, "\"restart_in_ms\":80"));
    assert_non_null(strstr(all, "\"msg\":\"child keeps failing, giving up\",\"child\":\"flaky\""));
    free(all);
    assert_int_equal(wctl_sup_stop(s), 0);
    wctl_sup_free(s);
    fclose(out);
}

static void test_permanent_failure(void **state)
{
    FILE *out = tmpfile();
    wctl_sup_t *s = sup(out, 1000);
    wctl_sup_state_t st = WCTL_SUP_RUNNING;
    int idx;
    char *all;

    (void)state;
    idx = add_sh(s, "bad-spec", "exit 65", 2);
    for (int i = 0; i < 100 && st == WCTL_SUP_RUNNING; i++)
        st = wctl_sup_poll(s, 50);
    assert_int_equal(st, WCTL_SUP_FAILED);
    assert_int_equal(wctl_sup_restarts(s, idx), 0);
    all = slurp(out);
    assert_non_null(strstr(all, "child failed permanently, giving up"));
    free(all);
    wctl_sup_free(s);
    fclose(out);
}

/* A child with no TERM handler dies of the SIGTERM it is sent: a clean stop. */
static void test_default_sigterm_is_clean(void **state)
{
    FILE *out = tmpfile();
    wctl_sup_t *s = sup(out, 5000);
    char *all;

    (void)state;
    add_sh(s, "plain", "echo up; exec sleep 30", 0);
    wait_output(s, out, "\"msg\":\"up\"");
    assert_int_equal(wctl_sup_stop(s), 0);
    all = slurp(out);
    assert_non_null(strstr(all, "\"status\":\"signal 15"));
    assert_null(strstr(all, "did not stop in time"));
    free(all);
    wctl_sup_free(s);
    fclose(out);
}

static void test_kill_after_grace(void **state)
{
    FILE *out = tmpfile();
    wctl_sup_t *s = sup(out, 300);
    char *all;

    (void)state;
    add_sh(s, "stubborn", "trap '' TERM; echo up; while :; do sleep 0.05; done", 0);
    wait_output(s, out, "\"msg\":\"up\"");
    assert_int_equal(wctl_sup_stop(s), 1);
    all = slurp(out);
    assert_non_null(
        strstr(all, "\"msg\":\"did not stop in time, killing\",\"child\":\"stubborn\""));
    assert_non_null(strstr(all, "\"status\":\"signal 9"));
    free(all);
    wctl_sup_free(s);
    fclose(out);
}

static void test_signal(void **state)
{
    FILE *out = tmpfile();
    wctl_sup_t *s = sup(out, 2000);
    wctl_sup_state_t st = WCTL_SUP_RUNNING;
    char *all;

    (void)state;
    add_sh(s, "worker", POLITE, 0);
    wait_output(s, out, "\"msg\":\"hello\"");
    /* Blocked by wctl_sup_new: it waits in the signalfd. */
    kill(getpid(), SIGTERM);
    for (int i = 0; i < 100 && st == WCTL_SUP_RUNNING; i++)
        st = wctl_sup_poll(s, 50);
    assert_int_equal(st, WCTL_SUP_SIGNALED);
    assert_int_equal(wctl_sup_stop(s), 0);
    all = slurp(out);
    assert_non_null(strstr(all, "\"msg\":\"signal received, stopping\""));
    assert_non_null(strstr(all, "\"msg\":\"bye\""));
    free(all);
    wctl_sup_free(s);
    fclose(out);
}

static void test_exec_failure(void **state)
{
    FILE *out = tmpfile();
    wctl_sup_t *s = sup(out, 1000);
    const char *argv[] = {"/nonexistent/weir-binary", NULL};
    wctl_child_spec_t c = {.name = "missing", .argv = argv};
    wctl_sup_state_t st = WCTL_SUP_RUNNING;
    char *all;

    (void)state;
    assert_true(wctl_sup_add(s, &c) >= 0);
    for (int i = 0; i < 100 && st == WCTL_SUP_RUNNING; i++)
        st = wctl_sup_poll(s, 50);
    /* exec failure is exit 127: permanent. */
    assert_int_equal(st, WCTL_SUP_FAILED);
    all = slurp(out);
    assert_non_null(strstr(all, "\"msg\":\"exec failed\",\"argv0\":\"/nonexistent/weir-binary\""));
    free(all);
    wctl_sup_free(s);
    fclose(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_and_stop),   cmocka_unit_test(test_restart_then_give_up),
        cmocka_unit_test(test_permanent_failure), cmocka_unit_test(test_default_sigterm_is_clean),
        cmocka_unit_test(test_kill_after_grace),  cmocka_unit_test(test_signal),
        cmocka_unit_test(test_exec_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
