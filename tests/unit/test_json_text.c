/*
 * tests/unit/test_json_text.c — gan/json_text: exact numbers both ways, integers judged on
 * their digits, and UTF-8 that stays valid when it is cleaned and cut.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gan/config.h"
#include "gan/json_text.h"

/* ---- numbers ------------------------------------------------------------------------------ */

static void test_shortest_double(void **state)
{
    (void)state;
    static const struct {
        double d;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1e-300, "1e-300"},
        {5e-324, "5e-324"},                                 /* the smallest subnormal */
        {0.00012345678901234567, "0.00012345678901234567"}, /* 17 significant digits */
        {9007199254740992.0, "9007199254740992"},
        {1.000004, "1.000004"},
        {0.0, "0"},
        {2e-4, "0.0002"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[40];
        gan_format_double(buf, sizeof buf, cases[i].d);
        assert_string_equal(buf, cases[i].text);
        assert_true(strtod(buf, NULL) == cases[i].d);
    }
    char buf[40];

    /* 17 significant digits of learning rates, and random doubles, read back bit for bit */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d))
            continue;
        gan_format_double(buf, sizeof buf, d);
        double back = strtod(buf, NULL);
        assert_memory_equal(&back, &d, sizeof d);
    }
}

/* What cJSON prints of the item: the text a client or run.json sees. */
static void assert_prints(cJSON *item, const char *want)
{
    assert_non_null(item);
    char *s = cJSON_PrintUnformatted(item);
    assert_string_equal(s, want);
    cJSON_free(s);
    cJSON_Delete(item);
}

static void test_exact_items(void **state)
{
    (void)state;
    /* what cJSON 1.7.15 alone prints: the loss this module exists for */
    cJSON *plain = cJSON_CreateNumber(9007199254740992.0);
    char *s = cJSON_PrintUnformatted(plain);
    assert_string_not_equal(s, "9007199254740992");
    cJSON_free(s);
    cJSON_Delete(plain);

    assert_prints(gan_json_u64(9007199254740992ull), "9007199254740992");
    assert_prints(gan_json_u64(UINT64_MAX), "18446744073709551615");
    assert_prints(gan_json_double(0.1 + 0.2), "0.30000000000000004");
    assert_prints(gan_json_double(5e-324), "5e-324");
    assert_prints(gan_json_double(NAN), "null");
    assert_prints(gan_json_double(INFINITY), "null");
}

static void test_literals_kept(void **state)
{
    (void)state;
    const char *text = "{\"a\": 9007199254740993, \"s\": \"-1 2e5 \\\" 7\", \"n\": [1e-400, "
                       "{\"k\": -0.5}, true, null, 2.0000000000000001], \"a\": 3}";
    cJSON *o = gan_json_parse(text, strlen(text), NULL, false);
    assert_non_null(o);
    const cJSON *a = o->child;
    assert_string_equal(gan_json_literal(a), "9007199254740993");
    assert_null(gan_json_literal(a->next)); /* a string: its digits are not numbers */
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "n");
    assert_string_equal(gan_json_literal(cJSON_GetArrayItem(n, 0)), "1e-400");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(n, 1), "k");
    assert_string_equal(gan_json_literal(k), "-0.5");
    assert_string_equal(gan_json_literal(cJSON_GetArrayItem(n, 4)), "2.0000000000000001");
    assert_string_equal(gan_json_literal(o->child->next->next->next), "3"); /* the second "a" */
    /* printing ignores the kept text */
    char *s = cJSON_PrintUnformatted(k);
    assert_string_equal(s, "-0.5");
    cJSON_free(s);
    cJSON *dup = cJSON_Duplicate(o, true);
    cJSON_Delete(dup);
    cJSON_Delete(o);

    /* require_null_terminated: trailing bytes are an error, as with cJSON_ParseWithOpts */
    const char *end = NULL;
    assert_null(gan_json_parse("{\"a\": 1} x", 10, &end, true));
    assert_non_null(o = gan_json_parse("{\"a\": 1} ", 9, &end, true));
    cJSON_Delete(o);
}

/* gan_json_integer on a literal, as parsed from "[<lit>]". */
static bool integer_of(const char *lit, int64_t min, int64_t max, int64_t *out)
{
    char text[128];
    snprintf(text, sizeof text, "[%s]", lit);
    cJSON *a = gan_json_parse(text, strlen(text), NULL, false);
    assert_non_null(a);
    bool ok = gan_json_integer(a->child, min, max, out);
    cJSON_Delete(a);
    return ok;
}

static void test_integers_on_their_digits(void **state)
{
    (void)state;
    const int64_t two53 = (int64_t)1 << 53;
    static const struct {
        const char *lit;
        int64_t value;
    } ok[] = {
        {"9007199254740992", (int64_t)1 << 53},
        {"0", 0},
        {"-0", 0},
        {"0e400", 0},
        {"1e3", 1000},
        {"7.0", 7},
        {"7.000e0", 7},
        {"65.536e3", 65536},
        {"0.5e1", 5},
        {"-9007199254740992", -((int64_t)1 << 53)},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = -99;
        if (!integer_of(ok[i].lit, -two53, two53, &v))
            fail_msg("%s refused", ok[i].lit);
        assert_true(v == ok[i].value);
    }
    static const char *const bad[] = {
        "9007199254740993",   /* 2^53 + 1: cJSON's double is 2^53 */
        "9007199254740992.5", /* rounds to 2^53 as a double */
        "2.0000000000000001", /* 2.0 as a double */
        "1.5",
        "1e-400",
        "123456789012345678e-10",
        "1e19",
        "1e400",
        "-9007199254740993",
        "18446744073709551617",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v;
        if (integer_of(bad[i], -two53, two53, &v))
            fail_msg("%s accepted as %lld", bad[i], (long long)v);
    }
    int64_t v;
    assert_false(integer_of("65537", 1, 65536, &v));
    assert_true(integer_of("65536", 1, 65536, &v) && v == 65536);
    assert_false(integer_of("0", 1, 65536, &v));

    /* without a literal (a tree cJSON made), judged on the double */
    cJSON *d = cJSON_CreateNumber(3.0);
    assert_true(gan_json_integer(d, 0, 10, &v) && v == 3);
    cJSON_Delete(d);
    d = cJSON_CreateString("3");
    assert_false(gan_json_integer(d, 0, 10, &v));
    cJSON_Delete(d);
}

static void test_config_numbers_exact(void **state)
{
    (void)state;
    gan_config c;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_config_from_json(&c, "{\"seed\": 9007199254740993}", 0, &err), -1);
    assert_string_equal(err.field, "seed");
    assert_non_null(strstr(err.message, "got 9007199254740993"));
    assert_int_equal(gan_config_from_json(&c, "{\"epochs\": 2.0000000000000001}", 0, &err), -1);
    assert_string_equal(err.field, "epochs");
    assert_int_equal(gan_config_from_json(&c, "{\"lr_d\": 1e-400}", 0, &err), -1);
    assert_non_null(strstr(err.message, "got 1e-400")); /* as sent, not cJSON's 0 */
    assert_int_equal(gan_config_from_json(&c, "{\"batch_size\": 6.5536e4}", 0, &err), 0);
    assert_int_equal(c.batch_size, 65536);

    /* run.json's path: parsed by cJSON, then read from the tree, never printed again */
    const char *body = "{\"seed\": 9007199254740992, \"lr_d\": 0.30000000000000004, "
                       "\"lr_min\": 5e-324, \"lr_g\": 0.00012345678901234567}";
    assert_int_equal(gan_config_from_json(&c, body, 0, &err), 0);
    char *json = gan_config_to_json(&c);
    cJSON *tree = cJSON_Parse(json);
    gan_config back;
    assert_int_equal(gan_config_from_cjson(&back, tree, &err), 0);
    assert_true(back.seed == 9007199254740992ull);
    assert_memory_equal(&back.lr_d, &c.lr_d, sizeof(double));
    assert_memory_equal(&back.lr_g, &c.lr_g, sizeof(double));
    assert_memory_equal(&back.lr_min, &c.lr_min, sizeof(double));
    assert_true(c.lr_min == 5e-324);
    char *again = gan_config_to_json(&back);
    assert_string_equal(again, json);
    assert_non_null(strstr(json, "\"lr_min\":5e-324"));
    assert_non_null(strstr(json, "\"lr_g\":0.00012345678901234567"));
    free(again);
    free(json);
    cJSON_Delete(tree);
    assert_int_equal(gan_config_from_cjson(&back, NULL, &err), -1);
}

/* ---- UTF-8 -------------------------------------------------------------------------------- */

static void test_utf8_valid(void **state)
{
    (void)state;
    static const char *const good[] = {"", "abc", "é", "€", "\xF0\x9F\x98\x80", "\xEF\xBF\xBD"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(gan_utf8_valid(good[i], strlen(good[i])));
    static const char *const bad[] = {
        "\xFF",
        "\xC3",             /* cut */
        "\xC0\xAF",         /* overlong '/' */
        "\xE0\x80\xAF",     /* overlong */
        "\xED\xA0\x80",     /* a surrogate */
        "\xF4\x90\x80\x80", /* above U+10FFFF */
        "\x80",
        "a\xE2\x82", /* cut euro */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (gan_utf8_valid(bad[i], strlen(bad[i])))
            fail_msg("bad case %zu accepted", i);
}

static void test_utf8_clip(void **state)
{
    (void)state;
    char buf[64];
    /* invalid bytes become U+FFFD, one each */
    assert_true(gan_utf8_clip(buf, sizeof buf,
                              "a\xFF\xFE"
                              "b",
                              60));
    assert_string_equal(buf, "a\xEF\xBF\xBD\xEF\xBF\xBD"
                             "b");
    assert_true(gan_utf8_clip(buf, sizeof buf, "\xC3(", 60)); /* a lead byte without its tail */
    assert_string_equal(buf, "\xEF\xBF\xBD(");

    /* 40 two-byte characters cut at 60 bytes: on a boundary, with "..." */
    char e40[81] = "";
    for (int i = 0; i < 40; i++)
        strcat(e40, "\xC3\xA9");
    assert_false(gan_utf8_clip(buf, sizeof buf, e40, 60));
    assert_true(strlen(buf) <= 60);
    assert_true(gan_utf8_valid(buf, strlen(buf)));
    assert_string_equal(buf + strlen(buf) - 3, "...");
    assert_int_equal((strlen(buf) - 3) % 2, 0);
    /* every cut of a 3- and 4-byte string stays valid */
    const char *mixed = "\xE2\x82\xAC\xF0\x9F\x98\x80x\xE2\x82\xAC\xF0\x9F\x98\x80\xFF";
    for (size_t max = 0; max < 20; max++) {
        char small[32];
        gan_utf8_clip(small, sizeof small, mixed, max);
        assert_true(strlen(small) <= max);
        assert_true(gan_utf8_valid(small, strlen(small)));
    }
    char *dup = gan_utf8_dup("\xFF\xFF\xFF\xC3\xA9");
    assert_string_equal(dup, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xC3\xA9");
    free(dup);

    /* a snprintf cut: trimmed back to a boundary; stray bytes are not trim's business */
    char cut[] = "ab\xE2\x82\xAC\xE2\x82"; /* "ab€" and 2 bytes of a second €, as a cut leaves */
    gan_utf8_trim(cut);
    assert_string_equal(cut, "ab\xE2\x82\xAC");
    char whole[] = "ab\xC3\xA9";
    gan_utf8_trim(whole);
    assert_string_equal(whole, "ab\xC3\xA9");
    char stray[] = "a\x80";
    gan_utf8_trim(stray);
    assert_string_equal(stray, "a\x80");

    /* an error message that quotes a long multibyte field name stays UTF-8 */
    gan_config c;
    gan_error err;
    char body[256];
    snprintf(body, sizeof body, "{\"%s\": 1}", e40);
    assert_int_equal(gan_config_from_json(&c, body, 0, &err), -1);
    assert_true(gan_utf8_valid(err.message, strlen(err.message)));
    assert_true(gan_utf8_valid(err.field, strlen(err.field)));
    assert_int_equal(gan_config_from_json(&c, "{\"dataset\": \"\xFF\xFE\"}", 0, &err), -1);
    assert_true(gan_utf8_valid(err.message, strlen(err.message)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shortest_double),
        cmocka_unit_test(test_exact_items),
        cmocka_unit_test(test_literals_kept),
        cmocka_unit_test(test_integers_on_their_digits),
        cmocka_unit_test(test_config_numbers_exact),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_clip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
