/*
 * tests/unit/test_config.c — gan/config: defaults, every field's range edges, type errors,
 * request-body errors, JSON round trip, merge patches and their atomicity.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gan/config.h"

static void assert_config_equal(const gan_config *a, const gan_config *b)
{
    assert_string_equal(a->preset, b->preset);
    assert_string_equal(a->dataset, b->dataset);
    assert_int_equal(a->batch_size, b->batch_size);
    assert_int_equal(a->epochs, b->epochs);
    assert_int_equal(a->latent_dim, b->latent_dim);
    assert_int_equal(a->g_hidden, b->g_hidden);
    assert_int_equal(a->g_output, b->g_output);
    assert_int_equal(a->d_units, b->d_units);
    assert_int_equal(a->d_pieces, b->d_pieces);
    /* Doubles bit for bit: a round trip must not lose the last digit. */
    assert_memory_equal(&a->d_dropout, &b->d_dropout, sizeof(double));
    assert_memory_equal(&a->lr_d, &b->lr_d, sizeof(double));
    assert_memory_equal(&a->lr_g, &b->lr_g, sizeof(double));
    assert_memory_equal(&a->beta1, &b->beta1, sizeof(double));
    assert_memory_equal(&a->beta2, &b->beta2, sizeof(double));
    assert_int_equal(a->g_loss, b->g_loss);
    assert_int_equal(a->d_steps, b->d_steps);
    assert_true(a->seed == b->seed);
    assert_int_equal(a->sample_every, b->sample_every);
    assert_int_equal(a->checkpoint_every, b->checkpoint_every);
    /* and every other field, through the printed form (which is exact) */
    char *ja = gan_config_to_json(a), *jb = gan_config_to_json(b);
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, haystack ? haystack : "(null)");
}

static gan_config seed_config(void)
{
    gan_config c;
    gan_error err;
    assert_int_equal(gan_config_preset(&c, "seed", &err), 0);
    return c;
}

/* A one-field body: {"<field>": <value>}. */
static int parse_one(gan_config *c, const char *field, const char *value, gan_error *err)
{
    char body[512];
    snprintf(body, sizeof body, "{\"%s\": %s}", field, value);
    return gan_config_from_json(c, body, 0, err);
}

static void test_empty_object_is_seed_defaults(void **state)
{
    (void)state;
    gan_config c;
    gan_error err;
    assert_int_equal(gan_config_from_json(&c, "{}", 0, &err), 0);
    assert_string_equal(c.preset, "seed");
    assert_string_equal(c.dataset, "mnist");
    assert_int_equal(c.batch_size, 1024);
    assert_int_equal(c.epochs, 500);
    assert_int_equal(c.latent_dim, 100);
    assert_int_equal(c.g_hidden, 1200);
    assert_int_equal(c.g_output, GAN_G_OUTPUT_RELU);
    assert_int_equal(c.d_units, 240);
    assert_int_equal(c.d_pieces, 5);
    assert_true(c.d_dropout == 0.8);
    assert_true(c.lr_d == 1e-3);
    assert_true(c.lr_g == 1e-3);
    assert_true(c.beta1 == 0.9);
    assert_true(c.beta2 == 0.999);
    assert_int_equal(c.g_loss, GAN_G_LOSS_NONSATURATING);
    assert_int_equal(c.d_steps, 1);
    assert_true(c.seed == 1);
    assert_int_equal(c.sample_every, 1);
    assert_int_equal(c.checkpoint_every, 5);
    assert_int_equal(gan_config_validate(&c, &err), 0);

    gan_config s = seed_config();
    assert_config_equal(&c, &s);
    assert_int_equal(gan_config_from_json(&c, " {\"preset\": \"seed\"}\n", 0, &err), 0);
    assert_config_equal(&c, &s);
}

static void test_presets(void **state)
{
    (void)state;
    assert_string_equal(gan_config_presets[0], "seed");
    assert_string_equal(gan_config_presets[1], "paper");
    assert_string_equal(gan_config_presets[2], "stable");
    assert_null(gan_config_presets[3]);

    /* paper: the pylearn2 configuration; a request may still override its fields */
    gan_config p;
    gan_error perr;
    assert_int_equal(gan_config_from_json(&p, "{\"preset\":\"paper\",\"epochs\":7}", 0, &perr), 0);
    assert_string_equal(p.preset, "paper");
    assert_int_equal(p.batch_size, 100);
    assert_int_equal(p.epochs, 7);
    assert_int_equal(p.g_output, GAN_G_OUTPUT_SIGMOID);
    assert_int_equal(p.noise, GAN_NOISE_UNIFORM);
    assert_int_equal(p.optimizer, GAN_OPT_SGD);
    assert_true(p.d_input_dropout == 0.2 && p.d_dropout == 0.5 && p.d_final_dropout == 0.5);
    assert_true(p.lr_d == 0.1 && p.lr_decay == 1.000004 && p.lr_min == 1e-6);
    assert_true(fabs(gan_config_lr_at(&p, 0.1, 1000) - 0.1 / pow(1.000004, 1000)) < 1e-15);
    assert_true(gan_config_lr_at(&p, 0.1, 100000000) == 1e-6);
    assert_true(gan_config_momentum_at(&p, 0) == 0.5);
    assert_true(fabs(gan_config_momentum_at(&p, 125) - 0.6) < 1e-12);
    assert_true(gan_config_momentum_at(&p, 400) == 0.7);

    /* stable: the winner of docs/stable-preset.md; Adam, sigmoid output, G init ±0.1 */
    gan_config st;
    assert_int_equal(gan_config_from_json(&st, "{\"preset\":\"stable\",\"seed\":3}", 0, &perr), 0);
    assert_string_equal(st.preset, "stable");
    assert_int_equal(st.batch_size, 32);
    assert_int_equal(st.epochs, 10);
    assert_int_equal(st.seed, 3);
    assert_int_equal(st.optimizer, GAN_OPT_ADAM);
    assert_int_equal(st.g_output, GAN_G_OUTPUT_SIGMOID);
    assert_int_equal(st.g_activation, GAN_G_ACT_LEAKY_RELU);
    assert_int_equal(st.noise, GAN_NOISE_NORMAL);
    assert_true(st.lr_d == 2e-4 && st.lr_g == 2e-4 && st.beta1 == 0.5 && st.beta2 == 0.999);
    assert_true(st.d_dropout == 0.5 && st.d_input_dropout == 0 && st.d_final_dropout == 0);
    assert_true(st.label_smoothing == 0.1 && st.g_init_range == 0.1 && st.d_init_range == 0);
    assert_true(st.g_ema == 0.9995);
    assert_int_equal(st.latent_dim, 100);
    assert_int_equal(st.g_hidden, 1200);
    assert_int_equal(st.d_units, 240);
    assert_int_equal(st.d_pieces, 5);
    assert_int_equal(gan_config_validate(&st, &perr), 0);

    gan_config c = seed_config(), before = c;
    gan_error err;
    assert_int_equal(gan_config_preset(&c, "paper-typo", &err), -1);
    assert_string_equal(err.field, "preset");
    assert_contains(err.message, "paper-typo");
    assert_contains(err.message, "seed");
    assert_config_equal(&c, &before);

    assert_int_equal(parse_one(&c, "preset", "\"nope\"", &err), -1);
    assert_string_equal(err.field, "preset");
    assert_contains(err.message, "known presets are: seed, paper, stable");
    assert_int_equal(parse_one(&c, "preset", "3", &err), -1);
    assert_string_equal(err.field, "preset");
    assert_contains(err.message, "\"seed\"");
    assert_config_equal(&c, &before);
}

/* ---- every field at its edges ------------------------------------------------------------ */

typedef struct range_case {
    const char *field;
    const char *min_ok, *max_ok; /* JSON values accepted */
    const char *below, *above;   /* JSON values just outside, rejected */
    const char *range;           /* what the error must say */
} range_case;

#define S63 "\"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_\""
#define S64 "\"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.\""

static const range_case range_cases[] = {
    {"preset", "\"seed\"", "\"seed\"", "\"Seed\"", "\"\"", "seed"},
    {"dataset", "\"a\"", S63, "\"\"", S64, "1..63 characters"},
    {"batch_size", "1", "65536", "0", "65537", "an integer in 1..65536"},
    {"epochs", "1", "1000000", "0", "1000001", "an integer in 1..1000000"},
    {"latent_dim", "1", "4096", "0", "4097", "an integer in 1..4096"},
    {"g_hidden", "1", "16384", "0", "16385", "an integer in 1..16384"},
    {"g_output", "\"relu\"", "\"sigmoid\"", "\"RELU\"", "\"tanh\"", "\"relu\", \"sigmoid\""},
    {"d_units", "1", "16384", "0", "16385", "an integer in 1..16384"},
    {"d_pieces", "1", "64", "0", "65", "an integer in 1..64"},
    {"d_dropout", "0", "0.9999999999999999", "-5e-324", "1", "a number in [0, 1)"},
    {"lr_d", "5e-324", "10", "0", "10.000000000000002", "a number in (0, 10]"},
    {"lr_g", "5e-324", "10", "-0", "10.000000000000002", "a number in (0, 10]"},
    {"beta1", "0", "0.9999999999999999", "-5e-324", "1", "a number in [0, 1)"},
    {"beta2", "-0", "0.9999999999999999", "-1", "1", "a number in [0, 1)"},
    {"g_loss", "\"nonsaturating\"", "\"minimax\"", "\"Minimax\"", "\"wgan\"",
     "\"nonsaturating\", \"minimax\""},
    {"d_steps", "1", "100", "0", "101", "an integer in 1..100"},
    {"seed", "0", "9007199254740992", "-1", "9007199254740994",
     "an integer in 0..9007199254740992"},
    {"sample_every", "0", "1000000", "-1", "1000001", "an integer in 0..1000000"},
    {"checkpoint_every", "1", "1000000", "0", "1000001", "an integer in 1..1000000"},
    {"evaluate_every", "0", "1000000", "-1", "1000001", "an integer in 0..1000000"},
    {"precision", "\"fp32\"", "\"tf32\"", "\"FP32\"", "\"fp16\"", "\"fp32\", \"tf32\""},
    {"noise", "\"normal\"", "\"uniform\"", "\"Normal\"", "\"gauss\"", "\"normal\", \"uniform\""},
    {"d_input_dropout", "0", "0.9999999999999999", "-5e-324", "1", "a number in [0, 1)"},
    {"d_final_dropout", "0", "0.9999999999999999", "-5e-324", "1", "a number in [0, 1)"},
    {"g_activation", "\"relu\"", "\"leaky_relu\"", "\"ReLU\"", "\"elu\"",
     "\"relu\", \"leaky_relu\""},
    {"label_smoothing", "0", "0.49999999999999994", "-5e-324", "0.5", "a number in [0, 0.5)"},
    {"g_init_range", "0", "10", "-5e-324", "10.000000000000002", "a number in [0, 10]"},
    {"d_max_norm", "0", "100", "-5e-324", "100.00000000000001", "a number in [0, 100]"},
    {"d_init_range", "0", "10", "-5e-324", "10.000000000000002", "a number in [0, 10]"},
    {"optimizer", "\"adam\"", "\"sgd\"", "\"Adam\"", "\"rmsprop\"", "\"adam\", \"sgd\""},
    {"device", "\"auto\"", "\"cuda\"", "\"GPU\"", "\"gpu\"", "\"auto\", \"cpu\", \"cuda\""},
    {"momentum", "0", "0.9999999999999999", "-5e-324", "1", "a number in [0, 1)"},
    {"momentum_final", "0", "0.9999999999999999", "-5e-324", "1", "a number in [0, 1)"},
    {"momentum_epochs", "0", "1000000", "-1", "1000001", "an integer in 0..1000000"},
    {"lr_decay", "1", "2", "0.9999999999999999", "2.0000000000000004", "a number in [1, 2]"},
    {"lr_min", "0", "10", "-5e-324", "10.000000000000002", "a number in [0, 10]"},
    {"g_ema", "0", "0.9999999999999999", "-5e-324", "1", "a number in [0, 1)"},
};
enum { N_RANGE_CASES = sizeof range_cases / sizeof range_cases[0] };

/* The field's value in gan_config_to_json(c) equals the JSON value text, exactly. */
static void assert_field_is(const gan_config *c, const char *field, const char *value)
{
    char *json = gan_config_to_json(c);
    assert_non_null(json);
    cJSON *o = cJSON_Parse(json);
    cJSON *want = cJSON_Parse(value);
    assert_non_null(o);
    assert_non_null(want);
    const cJSON *got = cJSON_GetObjectItemCaseSensitive(o, field);
    assert_non_null(got);
    if (cJSON_IsNumber(want)) {
        assert_true(cJSON_IsNumber(got));
        if (got->valuedouble != want->valuedouble)
            fail_msg("%s: stored %.17g, sent %s", field, got->valuedouble, value);
    } else {
        assert_true(cJSON_IsString(want) && cJSON_IsString(got));
        assert_string_equal(got->valuestring, want->valuestring);
    }
    cJSON_Delete(want);
    cJSON_Delete(o);
    free(json);
}

static void test_every_field_range_edges(void **state)
{
    (void)state;
    for (int i = 0; i < N_RANGE_CASES; i++) {
        const range_case *rc = &range_cases[i];
        gan_config c;
        gan_error err;
        const char *ok[] = {rc->min_ok, rc->max_ok};
        for (int k = 0; k < 2; k++) {
            if (parse_one(&c, rc->field, ok[k], &err) != 0)
                fail_msg("%s = %s rejected: %s", rc->field, ok[k], err.message);
            assert_int_equal(gan_config_validate(&c, &err), 0);
            assert_field_is(&c, rc->field, ok[k]);
        }
        const char *bad[] = {rc->below, rc->above};
        for (int k = 0; k < 2; k++) {
            gan_config before = seed_config();
            c = before;
            memset(&err, 0, sizeof err);
            if (parse_one(&c, rc->field, bad[k], &err) != -1)
                fail_msg("%s = %s accepted", rc->field, bad[k]);
            assert_string_equal(err.field, rc->field);
            assert_contains(err.message, rc->range);
            assert_config_equal(&c, &before); /* out untouched on error */
        }
    }
}

static void test_edge_values_stored(void **state)
{
    (void)state;
    gan_config c;
    gan_error err;
    assert_int_equal(parse_one(&c, "seed", "9007199254740992", &err), 0);
    assert_true(c.seed == 9007199254740992ull);
    assert_int_equal(parse_one(&c, "seed", "1e3", &err), 0); /* integral, any spelling */
    assert_true(c.seed == 1000);
    assert_int_equal(parse_one(&c, "beta2", "-0", &err), 0);
    assert_false(signbit(c.beta2)); /* -0 is stored as 0 */
    assert_int_equal(parse_one(&c, "g_output", "\"sigmoid\"", &err), 0);
    assert_int_equal(c.g_output, GAN_G_OUTPUT_SIGMOID);
    assert_int_equal(parse_one(&c, "g_loss", "\"minimax\"", &err), 0);
    assert_int_equal(c.g_loss, GAN_G_LOSS_MINIMAX);
}

/* ---- wrong types ------------------------------------------------------------------------- */

static void test_wrong_types(void **state)
{
    (void)state;
    static const struct {
        const char *field, *value, *range;
    } cases[] = {
        {"batch_size", "1.5", "an integer in 1..65536"},
        {"batch_size", "true", "an integer in 1..65536"},
        {"batch_size", "\"64\"", "an integer in 1..65536"},
        {"batch_size", "null", "an integer in 1..65536"},
        {"batch_size", "[64]", "an integer in 1..65536"},
        {"batch_size", "{\"n\": 64}", "an integer in 1..65536"},
        {"batch_size", "1e400", "an integer in 1..65536"},
        {"epochs", "false", "an integer in 1..1000000"},
        {"seed", "1.5", "an integer in 0..9007199254740992"},
        {"seed", "\"1\"", "an integer in 0..9007199254740992"},
        {"lr_d", "\"0.001\"", "a number in (0, 10]"},
        {"lr_d", "true", "a number in (0, 10]"},
        {"lr_g", "1e400", "a number in (0, 10]"},
        {"beta1", "null", "a number in [0, 1)"},
        {"g_output", "0", "one of \"relu\", \"sigmoid\""},
        {"g_loss", "[\"minimax\"]", "one of \"nonsaturating\", \"minimax\""},
        {"dataset", "5", "1..63 characters"},
        {"dataset", "\"../etc\"", "1..63 characters"},
        {"dataset", "\"a b\"", "1..63 characters"},
        {"preset", "null", "seed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gan_config c;
        gan_error err;
        if (parse_one(&c, cases[i].field, cases[i].value, &err) != -1)
            fail_msg("%s = %s accepted", cases[i].field, cases[i].value);
        assert_string_equal(err.field, cases[i].field);
        assert_contains(err.message, cases[i].range);
    }

    gan_config c;
    gan_error err;
    assert_int_equal(gan_config_from_json(&c, "{\"batch_size\": \"abc\"}", 0, &err), -1);
    assert_string_equal(err.field, "batch_size");
    assert_string_equal(err.message, "batch_size must be an integer in 1..65536, got \"abc\"");
    assert_int_equal(gan_config_from_json(&c, "{\"lr_d\": -1}", 0, &err), -1);
    assert_string_equal(err.message, "lr_d must be a number in (0, 10], got -1");
}

/* ---- request bodies ---------------------------------------------------------------------- */

static void test_unknown_field(void **state)
{
    (void)state;
    gan_config c;
    gan_error err;
    assert_int_equal(gan_config_from_json(&c, "{\"batch_size\": 64, \"foo\": 1}", 0, &err), -1);
    assert_string_equal(err.field, "foo");
    assert_contains(err.message, "unknown field 'foo'; known fields are: preset, dataset, ");
    assert_contains(err.message, "checkpoint_every");
    /* Names are case-sensitive. */
    assert_int_equal(parse_one(&c, "Batch_Size", "64", &err), -1);
    assert_string_equal(err.field, "Batch_Size");
}

static void test_malformed_json(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *where;
    } cases[] = {
        {"{\"batch_size\": }", "byte offset 15"},
        {"{\"batch_size\": 64", "byte offset 17"},
        {"{} x", "byte offset 3"},
        {"", "byte offset 0"},
        {"{'a': 1}", "byte offset "}, /* cJSON points near, not at, the quote */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gan_config c;
        gan_error err;
        assert_int_equal(gan_config_from_json(&c, cases[i].body, 0, &err), -1);
        assert_string_equal(err.field, "");
        assert_contains(err.message, "request body must be a JSON object");
        assert_contains(err.message, "not valid JSON");
        assert_contains(err.message, cases[i].where);
    }

    /* A length-delimited body: what follows len bytes is not part of it. */
    gan_config c;
    gan_error err;
    const char body[] = "{\"epochs\": 7}garbage";
    assert_int_equal(gan_config_from_json(&c, body, 13, &err), 0);
    assert_int_equal(c.epochs, 7);
    assert_int_equal(gan_config_from_json(&c, body, 14, &err), -1);
    assert_contains(err.message, "byte offset 13");
    const char with_nul[] = "{}\0{}";
    assert_int_equal(gan_config_from_json(&c, with_nul, sizeof with_nul - 1, &err), -1);
    assert_contains(err.message, "NUL byte");
}

static void test_non_object_body(void **state)
{
    (void)state;
    static const char *const bodies[] = {"[]", "[{}]", "1", "\"{}\"", "null", "true"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        gan_config c;
        gan_error err;
        assert_int_equal(gan_config_from_json(&c, bodies[i], 0, &err), -1);
        assert_string_equal(err.field, "");
        assert_contains(err.message, "request body must be a JSON object");
        unsigned changed = 99;
        c = seed_config();
        assert_int_equal(gan_config_patch(&c, bodies[i], 0, &changed, &err), -1);
        assert_string_equal(err.field, "");
        assert_int_equal(changed, 0);
    }
}

/* ---- validate --------------------------------------------------------------------------- */

static void test_validate(void **state)
{
    (void)state;
    gan_error err;
    gan_config c = seed_config();
    assert_int_equal(gan_config_validate(&c, &err), 0);

    static const struct {
        const char *field, *range;
    } want[] = {
        {"batch_size", "1..65536"}, {"lr_d", "(0, 10]"},
        {"beta2", "[0, 1)"},        {"seed", "0..9007199254740992"},
        {"dataset", "1..63"},       {"dataset", "1..63"},
        {"preset", "seed"},         {"g_output", "\"relu\""},
        {"d_dropout", "[0, 1)"},    {"sample_every", "0..1000000"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        c = seed_config();
        switch (i) {
        case 0:
            c.batch_size = 0;
            break;
        case 1:
            c.lr_d = NAN;
            break;
        case 2:
            c.beta2 = 1.0;
            break;
        case 3:
            c.seed = 9007199254740993ull;
            break;
        case 4:
            c.dataset[0] = '\0';
            break;
        case 5:
            memset(c.dataset, 'a', sizeof c.dataset);
            break; /* not terminated */
        case 6:
            snprintf(c.preset, sizeof c.preset, "paper-typo");
            break;
        case 7:
            c.g_output = (gan_g_output)7;
            break;
        case 8:
            c.d_dropout = INFINITY;
            break;
        case 9:
            c.sample_every = -1;
            break;
        }
        assert_int_equal(gan_config_validate(&c, &err), -1);
        assert_string_equal(err.field, want[i].field);
        assert_contains(err.message, want[i].range);
    }
    c = seed_config();
    c.batch_size = 0;
    assert_int_equal(gan_config_validate(&c, &err), -1);
    assert_string_equal(err.message, "batch_size must be an integer in 1..65536, got 0");
}

/* ---- to_json ----------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    gan_error err;
    gan_config c = seed_config();
    char *json = gan_config_to_json(&c);
    assert_non_null(json);
    assert_contains(json, "\"preset\":\"seed\"");
    assert_contains(json, "\"dataset\":\"mnist\"");
    assert_contains(json, "\"g_output\":\"relu\"");
    assert_contains(json, "\"g_loss\":\"nonsaturating\"");
    assert_contains(json, "\"lr_d\":0.001");
    assert_contains(json, "\"seed\":1,");
    gan_config back;
    assert_int_equal(gan_config_from_json(&back, json, 0, &err), 0);
    assert_config_equal(&back, &c);
    free(json);

    /* Every field off its default, with doubles that a 15-digit print would not keep. */
    snprintf(c.dataset, sizeof c.dataset, "fashion-mnist_v1.2");
    c.batch_size = 65536;
    c.epochs = 3;
    c.latent_dim = 4096;
    c.g_hidden = 7;
    c.g_output = GAN_G_OUTPUT_SIGMOID;
    c.d_units = 16384;
    c.d_pieces = 64;
    c.d_dropout = 0.1 + 0.2; /* 0.30000000000000004 */
    c.lr_d = 5e-324;
    c.lr_g = 2.0 / 3.0;
    c.beta1 = nextafter(1.0, 0.0);
    c.beta2 = 1e-300;
    c.g_loss = GAN_G_LOSS_MINIMAX;
    c.d_steps = 100;
    c.seed = 1000000000000000ull; /* cJSON alone would print 1e+15 */
    c.sample_every = 0;
    c.checkpoint_every = 1000000;
    assert_int_equal(gan_config_validate(&c, &err), 0);
    json = gan_config_to_json(&c);
    assert_non_null(json);
    assert_contains(json, "\"seed\":1000000000000000,");
    assert_contains(json, "\"d_dropout\":0.30000000000000004");
    assert_int_equal(gan_config_from_json(&back, json, 0, &err), 0);
    assert_config_equal(&back, &c);
    free(json);

    c.seed = 9007199254740992ull;
    json = gan_config_to_json(&c);
    assert_contains(json, "\"seed\":9007199254740992,");
    assert_int_equal(gan_config_from_json(&back, json, 0, &err), 0);
    assert_config_equal(&back, &c);
    free(json);
}

/* ---- patch ------------------------------------------------------------------------------- */

static void test_patch_mutable(void **state)
{
    (void)state;
    gan_error err;
    gan_config c = seed_config();
    unsigned changed = 0;
    assert_int_equal(
        gan_config_patch(&c, "{\"lr_d\": 0.01, \"batch_size\": 512}", 0, &changed, &err), 0);
    assert_int_equal(changed, GAN_F_LR_D | GAN_F_BATCH_SIZE);
    assert_true(c.lr_d == 0.01);
    assert_int_equal(c.batch_size, 512);
    assert_true(c.lr_g == 1e-3);

    c = seed_config();
    const char *all = "{\"batch_size\": 64, \"epochs\": 9, \"lr_d\": 0.5, \"lr_g\": 0.25,"
                      " \"beta1\": 0.5, \"beta2\": 0.99, \"g_loss\": \"minimax\", \"d_steps\": 3,"
                      " \"sample_every\": 0, \"checkpoint_every\": 2, \"evaluate_every\": 4,"
                      " \"watch_every\": 2, \"watch\": [{\"kind\": \"d_wins\", \"epochs\": 5}]}";
    assert_int_equal(gan_config_patch(&c, all, 0, &changed, &err), 0);
    assert_int_equal(changed, GAN_F_MUTABLE);
    assert_int_equal(c.batch_size, 64);
    assert_int_equal(c.epochs, 9);
    assert_true(c.lr_d == 0.5 && c.lr_g == 0.25 && c.beta1 == 0.5 && c.beta2 == 0.99);
    assert_int_equal(c.g_loss, GAN_G_LOSS_MINIMAX);
    assert_int_equal(c.d_steps, 3);
    assert_int_equal(c.sample_every, 0);
    assert_int_equal(c.checkpoint_every, 2);
    assert_int_equal(c.latent_dim, 100);

    /* The same values again: nothing changes. */
    gan_config before = c;
    assert_int_equal(gan_config_patch(&c, all, 0, &changed, &err), 0);
    assert_int_equal(changed, 0);
    assert_config_equal(&c, &before);

    c = seed_config();
    assert_int_equal(
        gan_config_patch(&c, "{\"lr_d\": 0.001, \"g_loss\": \"nonsaturating\"}", 0, &changed, &err),
        0);
    assert_int_equal(changed, 0);
    assert_int_equal(gan_config_patch(&c, "{}", 0, &changed, &err), 0);
    assert_int_equal(changed, 0);
    before = seed_config();
    assert_config_equal(&c, &before);

    /* A later value for the same field wins; only a real change counts. */
    assert_int_equal(gan_config_patch(&c, "{\"d_steps\": 5, \"d_steps\": 1}", 0, &changed, &err),
                     0);
    assert_int_equal(changed, 0);
    assert_int_equal(c.d_steps, 1);
}

static void test_patch_immutable_rejected(void **state)
{
    (void)state;
    static const struct {
        const char *field, *value;
    } fixed[] = {
        {"preset", "\"seed\""}, {"dataset", "\"other\""},    {"latent_dim", "50"},
        {"g_hidden", "10"},     {"g_output", "\"sigmoid\""}, {"d_units", "10"},
        {"d_pieces", "2"},      {"d_dropout", "0.5"},        {"seed", "2"},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        gan_config c = seed_config(), before = c;
        gan_error err;
        unsigned changed = 99;
        char body[256], msg[128];
        snprintf(body, sizeof body, "{\"lr_d\": 0.5, \"%s\": %s}", fixed[i].field, fixed[i].value);
        assert_int_equal(gan_config_patch(&c, body, 0, &changed, &err), -1);
        assert_string_equal(err.field, fixed[i].field);
        snprintf(msg, sizeof msg, "%s cannot be changed after a run is created", fixed[i].field);
        assert_string_equal(err.message, msg);
        assert_int_equal(changed, 0);
        assert_config_equal(&c, &before);
    }
}

static void test_patch_bad_value_is_atomic(void **state)
{
    (void)state;
    gan_config c = seed_config(), before = c;
    gan_error err;
    unsigned changed = 99;
    /* A valid field before the bad one must not be applied either. */
    assert_int_equal(gan_config_patch(&c, "{\"lr_d\": 0.01, \"batch_size\": 0}", 0, &changed, &err),
                     -1);
    assert_string_equal(err.field, "batch_size");
    assert_contains(err.message, "1..65536");
    assert_int_equal(changed, 0);
    assert_config_equal(&c, &before);

    assert_int_equal(
        gan_config_patch(&c, "{\"g_loss\": \"minimax\", \"beta2\": 1}", 0, &changed, &err), -1);
    assert_string_equal(err.field, "beta2");
    assert_contains(err.message, "[0, 1)");
    assert_config_equal(&c, &before);

    assert_int_equal(gan_config_patch(&c, "{\"epochs\": 10, \"d_steps\": 1.5}", 0, &changed, &err),
                     -1);
    assert_string_equal(err.field, "d_steps");
    assert_config_equal(&c, &before);

    assert_int_equal(gan_config_patch(&c, "{\"epochs\": 10, \"bogus\": 1}", 0, &changed, &err), -1);
    assert_string_equal(err.field, "bogus");
    assert_contains(err.message, "unknown field 'bogus'");
    assert_config_equal(&c, &before);

    assert_int_equal(gan_config_patch(&c, "{\"epochs\": 10,", 0, &changed, &err), -1);
    assert_string_equal(err.field, "");
    assert_config_equal(&c, &before);
}

static void test_patch_null_rejected(void **state)
{
    (void)state;
    gan_config c = seed_config(), before = c;
    gan_error err;
    unsigned changed = 99;
    assert_int_equal(gan_config_patch(&c, "{\"epochs\": 10, \"lr_g\": null}", 0, &changed, &err),
                     -1);
    assert_string_equal(err.field, "lr_g");
    assert_contains(err.message, "lr_g cannot be removed");
    assert_contains(err.message, "(0, 10]");
    assert_int_equal(changed, 0);
    assert_config_equal(&c, &before);
}

/* ---- names ------------------------------------------------------------------------------- */

static void test_names(void **state)
{
    (void)state;
    static const struct {
        unsigned bit;
        const char *name;
    } bits[] = {
        {GAN_F_BATCH_SIZE, "batch_size"},
        {GAN_F_EPOCHS, "epochs"},
        {GAN_F_LR_D, "lr_d"},
        {GAN_F_LR_G, "lr_g"},
        {GAN_F_BETA1, "beta1"},
        {GAN_F_BETA2, "beta2"},
        {GAN_F_G_LOSS, "g_loss"},
        {GAN_F_D_STEPS, "d_steps"},
        {GAN_F_SAMPLE_EVERY, "sample_every"},
        {GAN_F_CHECKPOINT_EVERY, "checkpoint_every"},
        {GAN_F_EVALUATE_EVERY, "evaluate_every"},
        {GAN_F_WATCH_EVERY, "watch_every"},
        {GAN_F_WATCH, "watch"},
    };
    unsigned all = 0;
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        assert_non_null(gan_field_name(bits[i].bit));
        assert_string_equal(gan_field_name(bits[i].bit), bits[i].name);
        all |= bits[i].bit;
    }
    assert_int_equal(all, GAN_F_MUTABLE);
    assert_null(gan_field_name(0));
    assert_null(gan_field_name(GAN_F_LR_D | GAN_F_LR_G));
    assert_null(gan_field_name(1u << 13));

    assert_string_equal(gan_g_output_name(GAN_G_OUTPUT_RELU), "relu");
    assert_string_equal(gan_g_output_name(GAN_G_OUTPUT_SIGMOID), "sigmoid");
    assert_string_equal(gan_g_loss_name(GAN_G_LOSS_NONSATURATING), "nonsaturating");
    assert_string_equal(gan_g_loss_name(GAN_G_LOSS_MINIMAX), "minimax");
    assert_string_equal(gan_g_loss_name((gan_g_loss)9), "invalid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_object_is_seed_defaults),
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_every_field_range_edges),
        cmocka_unit_test(test_edge_values_stored),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_unknown_field),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_non_object_body),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_patch_mutable),
        cmocka_unit_test(test_patch_immutable_rejected),
        cmocka_unit_test(test_patch_bad_value_is_atomic),
        cmocka_unit_test(test_patch_null_rejected),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
