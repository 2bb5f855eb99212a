/* SPDX-License-Identifier: Apache-2.0 */
/* Description: weir-dataplane configuration: defaults, environment, flags
 * (flags win), pod ordinals and rejection of bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "dp_config.h"

static void test_defaults(void **state)
{
    dp_config_t cfg;

    dp_config_defaults(&cfg);
    assert_int_equal(cfg.role, DP_ROLE_NONE);
    assert_int_equal(cfg.kafka_port, 9092);
    assert_int_equal(cfg.http_port, 9400);
    assert_int_equal(cfg.replicas, 1);
    assert_string_equal(cfg.data_dir, "/var/lib/weir");
}

static void test_env_then_flags(void **state)
{
    char *env[] = {"PATH=/bin",
                   "WEIR_ROLE=store",
                   "WEIR_KAFKA_PORT=19092",
                   "WEIR_POD_NAME=weir-store-3",
                   "WEIR_REPLICAS=4",
                   "WEIR_ROLEX=ignored",
                   NULL};
    char *argv[] = {"weir-dataplane", "--kafka-port", "29092", "--data-dir=/d", NULL};
    dp_config_t cfg;
    char err[256];

    dp_config_defaults(&cfg);
    assert_int_equal(dp_config_apply_env(&cfg, env, err, sizeof(err)), 0);
    assert_int_equal(cfg.role, DP_ROLE_STORE);
    assert_int_equal(cfg.kafka_port, 19092);
    assert_int_equal(cfg.replica_index, 3);
    assert_int_equal(cfg.replicas, 4);
    assert_int_equal(dp_config_apply_args(&cfg, 4, argv, err, sizeof(err)), 0);
    assert_int_equal(cfg.kafka_port, 29092);
    assert_string_equal(cfg.data_dir, "/d");
}

static void test_store_options(void **state)
{
    char *env[] = {"WEIR_FLUSH=interval:250", "WEIR_AUTO_CREATE_TOPICS=false",
                   "WEIR_SEGMENT_BYTES=1048576", NULL};
    char *argv[] = {
        "weir-dataplane",       "--flush", "bytes:4096", "--retention-ms", "-1", "--sqpoll", "true",
        "--default-partitions", "6",       NULL};
    char *bad_flush[] = {"weir-dataplane", "--flush", "sometimes", NULL};
    char *bad_interval[] = {"weir-dataplane", "--flush", "interval:0", NULL};
    char *bad_bool[] = {"weir-dataplane", "--sqpoll", "yes", NULL};
    char *bad_segment[] = {"weir-dataplane", "--segment-bytes", "100", NULL};
    dp_config_t cfg;
    char err[256];

    dp_config_defaults(&cfg);
    assert_int_equal(cfg.flush, DP_CONFIG_FLUSH_DEFAULT);
    assert_int_equal(cfg.auto_create, -1);
    assert_int_equal(dp_config_apply_env(&cfg, env, err, sizeof(err)), 0);
    assert_int_equal(cfg.flush, DP_CONFIG_FLUSH_INTERVAL);
    assert_int_equal(cfg.flush_value, 250);
    assert_int_equal(cfg.auto_create, 0);
    assert_int_equal(cfg.segment_bytes, 1048576);
    assert_int_equal(dp_config_apply_args(&cfg, 9, argv, err, sizeof(err)), 0);
    assert_int_equal(cfg.flush, DP_CONFIG_FLUSH_BYTES); /* flags win */
    assert_int_equal(cfg.flush_value, 4096);
    assert_int_equal(cfg.retention_ms, -1);
    assert_int_equal(cfg.sqpoll, 1);
    assert_int_equal(cfg.default_partitions, 6);
    assert_int_equal(dp_config_apply_args(&cfg, 3, bad_flush, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "flush"));
    assert_int_equal(dp_config_apply_args(&cfg, 3, bad_interval, err, sizeof(err)), -EINVAL);
    assert_int_equal(dp_config_apply_args(&cfg, 3, bad_bool, err, sizeof(err)), -EINVAL);
    assert_int_equal(dp_config_apply_args(&cfg, 3, bad_segment, err, sizeof(err)), -EINVAL);
}

static void test_bad_values(void **state)
{
    char *env_port[] = {"WEIR_KAFKA_PORT=70000", NULL};
    char *env_role[] = {"WEIR_ROLE=broker", NULL};
    char *env_pod[] = {"WEIR_POD_NAME=weir-store", NULL};
    char *argv_unknown[] = {"weir-dataplane", "--bogus", NULL};
    char *argv_extra[] = {"weir-dataplane", "--role", "store", "extra", NULL};
    char *argv_missing[] = {"weir-dataplane", "--role", NULL};
    char *argv_workers[] = {"weir-dataplane", "--workers", "12x", NULL};
    dp_config_t cfg;
    char err[256];

    dp_config_defaults(&cfg);
    assert_int_equal(dp_config_apply_env(&cfg, env_port, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "WEIR_KAFKA_PORT"));
    assert_int_equal(dp_config_apply_env(&cfg, env_role, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "broker"));
    assert_int_equal(dp_config_apply_env(&cfg, env_pod, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "ordinal"));
    assert_int_equal(dp_config_apply_args(&cfg, 2, argv_unknown, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "--bogus"));
    assert_int_equal(dp_config_apply_args(&cfg, 4, argv_extra, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "extra"));
    assert_int_equal(dp_config_apply_args(&cfg, 2, argv_missing, err, sizeof(err)), -EINVAL);
    assert_int_equal(dp_config_apply_args(&cfg, 3, argv_workers, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "workers"));
}

static void test_processor_options(void **state)
{
    char *env[] = {"WEIR_ROLE=processor", "WEIR_SPEC=/etc/weir/pipeline.json", NULL};
    char *argv[] = {"weir-dataplane", "--checkpoint-dir", "/ckpt", "--pod-name", "proc-2", NULL};
    char *argv_port[] = {"weir-dataplane", "--http-port", "0", NULL};
    char *argv_empty[] = {"weir-dataplane", "--checkpoint-dir=", NULL};
    char *env_port[] = {"WEIR_HTTP_PORT=19401", NULL};
    dp_config_t cfg;
    char err[256];

    dp_config_defaults(&cfg);
    assert_null(cfg.checkpoint_dir);
    assert_int_equal(cfg.http_port_set, 0);
    assert_int_equal(dp_config_apply_env(&cfg, env, err, sizeof(err)), 0);
    assert_int_equal(cfg.role, DP_ROLE_PROCESSOR);
    assert_string_equal(cfg.spec_path, "/etc/weir/pipeline.json");
    assert_int_equal(dp_config_apply_args(&cfg, 5, argv, err, sizeof(err)), 0);
    assert_string_equal(cfg.checkpoint_dir, "/ckpt");
    assert_int_equal(cfg.replica_index, 2);
    assert_int_equal(cfg.http_port_set, 0); /* the default is not "given" */
    assert_int_equal(dp_config_apply_args(&cfg, 3, argv_port, err, sizeof(err)), 0);
    assert_int_equal(cfg.http_port, 0);
    assert_int_equal(cfg.http_port_set, 1);
    dp_config_defaults(&cfg);
    assert_int_equal(dp_config_apply_env(&cfg, env_port, err, sizeof(err)), 0);
    assert_int_equal(cfg.http_port, 19401);
    assert_int_equal(cfg.http_port_set, 1);
    assert_int_equal(dp_config_apply_args(&cfg, 2, argv_empty, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "checkpoint-dir"));
    assert_non_null(strstr(dp_config_usage, "--checkpoint-dir"));
}

static void test_help(void **state)
{
    char *argv[] = {"weir-dataplane", "--help", NULL};
    dp_config_t cfg;
    char err[64];

    dp_config_defaults(&cfg);
    assert_int_equal(dp_config_apply_args(&cfg, 2, argv, err, sizeof(err)), 1);
    assert_non_null(strstr(dp_config_usage, "WEIR_KAFKA_PORT"));
}

static void test_pod_ordinal(void **state)
{
    assert_int_equal(dp_config_pod_ordinal("weir-store-0"), 0);
    assert_int_equal(dp_config_pod_ordinal("my-proc-12"), 12);
    assert_int_equal(dp_config_pod_ordinal("noordinal"), -EINVAL);
    assert_int_equal(dp_config_pod_ordinal("a-b-"), -EINVAL);
    assert_int_equal(dp_config_pod_ordinal("a-+1"), -EINVAL);
    assert_int_equal(dp_config_pod_ordinal("a- 1"), -EINVAL);
    assert_int_equal(dp_config_pod_ordinal("a-99999999999"), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_then_flags),
        cmocka_unit_test(test_store_options),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_pod_ordinal),
        cmocka_unit_test(test_processor_options),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
