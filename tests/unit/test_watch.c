/*
 * tests/unit/test_watch.c — watch rules: parsing (every bad rule names its
 * field), printing, and when each kind fires: once per streak, from the
 * history alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "gan/config.h"
#include "gan/trainer.h"
#include "gan/watch.h"

static int parse(gan_watch *w, const char *json, gan_error *err)
{
    cJSON *v = cJSON_Parse(json);
    assert_non_null(v);
    int rc = gan_watch_from_cjson(w, v, err);
    cJSON_Delete(v);
    return rc;
}

static void test_defaults_and_round_trip(void **state)
{
    (void)state;
    gan_watch w;
    gan_watch_defaults(&w);
    assert_int_equal(w.n, 3);
    assert_int_equal(gan_watch_validate(&w, NULL), 0);
    cJSON *a = gan_watch_to_cjson(&w);
    char *s = cJSON_PrintUnformatted(a);
    assert_string_equal(
        s, "[{\"kind\":\"d_wins\",\"action\":\"alert\",\"d_g_z_below\":0.05,"
           "\"epochs\":3},{\"kind\":\"mode_collapse\",\"action\":\"alert\","
           "\"modes_below\":8,\"evaluations\":3},{\"kind\":\"divergence\",\"action\":\"alert\","
           "\"evaluations\":3}]");
    gan_watch back;
    gan_error err;
    cJSON *printed = cJSON_Parse(s); /* the numbers are raw text until printed */
    assert_int_equal(gan_watch_from_cjson(&back, printed, &err), 0);
    assert_true(gan_watch_equal(&w, &back));
    cJSON_Delete(printed);
    cJSON_free(s);
    cJSON_Delete(a);

    /* absent thresholds take the defaults; an empty list watches nothing */
    assert_int_equal(parse(&w, "[{\"kind\":\"mode_collapse\",\"action\":\"pause\"}]", &err), 0);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.rules[0].modes_below, 8);
    assert_int_equal(w.rules[0].action, GAN_WATCH_PAUSE);
    assert_int_equal(parse(&w, "[]", &err), 0);
    assert_int_equal(w.n, 0);
}

static void test_bad_rules_name_their_field(void **state)
{
    (void)state;
    static const struct {
        const char *json, *field;
    } cases[] = {
        {"{}", "watch"},
        {"[1,2,3,4,5,6,7,8,9]", "watch"},
        {"[3]", "watch[0]"},
        {"[{}]", "watch[0].kind"},
        {"[{\"kind\":\"dwins\"}]", "watch[0].kind"},
        {"[{\"kind\":\"d_wins\"},{\"kind\":\"d_wins\",\"epochs\":0}]", "watch[1].epochs"},
        {"[{\"kind\":\"d_wins\",\"epochs\":2.5}]", "watch[0].epochs"},
        {"[{\"kind\":\"d_wins\",\"d_g_z_below\":1}]", "watch[0].d_g_z_below"},
        {"[{\"kind\":\"d_wins\",\"d_g_z_below\":\"low\"}]", "watch[0].d_g_z_below"},
        {"[{\"kind\":\"mode_collapse\",\"modes_below\":11}]", "watch[0].modes_below"},
        {"[{\"kind\":\"divergence\",\"evaluations\":0}]", "watch[0].evaluations"},
        {"[{\"kind\":\"divergence\",\"epochs\":3}]", "watch[0].epochs"},
        {"[{\"kind\":\"d_wins\",\"evaluations\":3}]", "watch[0].evaluations"},
        {"[{\"kind\":\"mode_collapse\",\"evaluations\":0}]", "watch[0].evaluations"},
        {"[{\"kind\":\"d_wins\",\"action\":\"stop\"}]", "watch[0].action"},
        {"[{\"kind\":\"d_wins\",\"limit\":3}]", "watch[0].limit"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gan_watch w;
        gan_watch_defaults(&w);
        gan_watch before = w;
        gan_error err;
        memset(&err, 0, sizeof err);
        assert_int_equal(parse(&w, cases[i].json, &err), -1);
        assert_string_equal(err.field, cases[i].field);
        assert_non_null(strstr(err.message, cases[i].field));
        assert_true(gan_watch_equal(&w, &before)); /* unchanged on error */
    }

    /* through a config: the same field names, and a patch changes a live run's rules */
    gan_config c;
    gan_error err;
    assert_int_equal(
        gan_config_from_json(&c, "{\"watch\":[{\"kind\":\"mode_collapse\",\"modes_below\":0}]}", 0,
                             &err),
        -1);
    assert_string_equal(err.field, "watch[0].modes_below");
    assert_int_equal(gan_config_from_json(&c, "{}", 0, &err), 0);
    unsigned changed = 0;
    assert_int_equal(gan_config_patch(&c,
                                      "{\"watch\":[{\"kind\":\"d_wins\",\"action\":\"pause\"}]}", 0,
                                      &changed, &err),
                     0);
    assert_int_equal(changed, GAN_F_WATCH);
    assert_int_equal(c.watch.n, 1);
    assert_int_equal(c.watch.rules[0].action, GAN_WATCH_PAUSE);
}

static gan_epoch_metrics epoch_with(int epoch, double d_g_z)
{
    gan_epoch_metrics m;
    memset(&m, 0, sizeof m);
    m.epoch = epoch;
    m.d_g_z = d_g_z;
    return m;
}

static void test_d_wins_fires_once_per_streak(void **state)
{
    (void)state;
    gan_watch w;
    gan_error err;
    assert_int_equal(parse(&w, "[{\"kind\":\"d_wins\",\"d_g_z_below\":0.1,\"epochs\":2}]", &err),
                     0);
    const double d[] = {0.4, 0.05, 0.04, 0.03, 0.5, 0.02, 0.01};
    const int fires_at[] = {0, 0, 1, 0, 0, 0, 1}; /* the streak reaching 2 */
    gan_epoch_metrics m[7];
    for (int i = 0; i < 7; i++) {
        m[i] = epoch_with(i + 1, d[i]);
        gan_alert a[4];
        int n = gan_watch_after_epoch(&w, m, i + 1, a, 4);
        assert_int_equal(n, fires_at[i]);
        if (n) {
            assert_int_equal(a[0].kind, GAN_WATCH_D_WINS);
            assert_int_equal(a[0].epoch, i + 1);
            assert_int_equal(a[0].count, 2);
            assert_true(a[0].value == d[i]);
            assert_non_null(strstr(a[0].message, "discriminator is winning"));
        }
    }
}

static void test_mode_collapse_fires_when_modes_drop(void **state)
{
    (void)state;
    gan_watch w;
    gan_error err;
    assert_int_equal(parse(&w,
                           "[{\"kind\":\"mode_collapse\",\"modes_below\":8,\"evaluations\":2,"
                           "\"action\":\"pause\"}]",
                           &err),
                     0);
    /* 2 in a row below 8: a first epoch's few classes alone do not fire */
    const int modes[] = {3, 9, 2, 1, 0, 10, 7, 7, 8};
    const int fires_at[] = {0, 0, 0, 1, 0, 0, 0, 1, 0};
    gan_watch_point p[9];
    for (int i = 0; i < 9; i++) {
        p[i] = (gan_watch_point){i + 1, modes[i], 10.0};
        gan_alert a[4];
        int n = gan_watch_after_evaluation(&w, p, i + 1, a, 4);
        assert_int_equal(n, fires_at[i]);
        if (n) {
            assert_int_equal(a[0].action, GAN_WATCH_PAUSE);
            assert_true(a[0].value == modes[i]);
            assert_int_equal(a[0].count, 2);
            assert_non_null(strstr(a[0].message, "Mode collapse"));
            assert_non_null(strstr(a[0].message, "paused"));
        }
    }
}

static void test_divergence_counts_rises_in_a_row(void **state)
{
    (void)state;
    gan_watch w;
    gan_error err;
    assert_int_equal(parse(&w, "[{\"kind\":\"divergence\",\"evaluations\":2}]", &err), 0);
    const double fid[] = {50, 40, 45, 47, 48, 30, 31, 35};
    const int fires_at[] = {0, 0, 0, 1, 0, 0, 0, 1};
    gan_watch_point p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = (gan_watch_point){i + 1, 10, fid[i]};
        gan_alert a[4];
        int n = gan_watch_after_evaluation(&w, p, i + 1, a, 4);
        assert_int_equal(n, fires_at[i]);
        if (n) {
            assert_int_equal(a[0].count, 2);
            assert_true(a[0].value == fid[i]);
            assert_true(a[0].threshold == fid[i - 2]);
        }
    }
    /* the alert's event data is one JSON object with the numbers */
    gan_alert a[1];
    assert_int_equal(gan_watch_after_evaluation(&w, p, 4, a, 1), 1);
    char buf[1024];
    gan_alert_json(&a[0], buf, sizeof buf);
    cJSON *o = cJSON_Parse(buf);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "kind")->valuestring, "divergence");
    assert_int_equal(cJSON_GetObjectItem(o, "epoch")->valueint, 4);
    assert_true(cJSON_GetObjectItem(o, "value")->valuedouble == 47);
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_round_trip),
        cmocka_unit_test(test_bad_rules_name_their_field),
        cmocka_unit_test(test_d_wins_fires_once_per_streak),
        cmocka_unit_test(test_mode_collapse_fires_when_modes_drop),
        cmocka_unit_test(test_divergence_counts_rises_in_a_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
