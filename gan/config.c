/*
 * gan/config.c — run configuration: presets, JSON in and out, validation, merge patches.
 *
 * One table (fields[]) describes every field: its JSON name, type, place in gan_config,
 * allowed range and patch bit. Parsing, validation, printing and patching are loops over
 * that table, so a new field is a struct member plus one row, and every error message
 * names the same range the check uses.
 *
 * Numbers are exact both ways (gan/json_text.h): doubles are printed with the shortest
 * %.Ng that reads back as the same bits (cJSON's own printer accepts a near miss), the
 * seed as its digits, and an integer field is judged on the digits it was sent as, not
 * on cJSON's double of them (9007199254740993 is not 2^53, 2.0000000000000001 is not 2),
 * so a saved config reloads bit for bit and a resumed run trains with exactly its config.
 * Request bodies are copied to a NUL-terminated buffer so that trailing garbage after the
 * object is an error too. Every text an error quotes from the request is valid UTF-8,
 * cut on a character boundary.
 */
#include "gan/config.h"

#include "gan/json_text.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* ---- presets ---------------------------------------------------------------------------- */

/*
 * A preset is a function that sets fields on top of the seed defaults (NULL: none).
 * gan_config_presets[i] names preset_apply[i]; add a preset by adding to both.
 */
/*
 * The paper's own configuration (pylearn2 mnist.yaml): sigmoid
 * output, uniform noise, dropout keeping 80 % of the input and 50 % of the
 * hidden units, SGD with momentum 0.5 → 0.7 over 250 epochs and the learning
 * rate 0.1 decaying by 1.000004 per step (floor 1e-6), batch 100, and the
 * yaml's uniform initial weights (±0.05 in G, ±0.005 in D).
 */
static void preset_paper(gan_config *c)
{
    c->batch_size = 100;
    c->g_output = GAN_G_OUTPUT_SIGMOID;
    c->noise = GAN_NOISE_UNIFORM;
    c->d_input_dropout = 0.2;
    c->d_dropout = 0.5;
    c->d_final_dropout = 0.5;
    c->optimizer = GAN_OPT_SGD;
    c->lr_d = 0.1;
    c->lr_g = 0.1;
    c->momentum = 0.5;
    c->momentum_final = 0.7;
    c->momentum_epochs = 250;
    c->lr_decay = 1.000004;
    c->lr_min = 1e-6;
    c->g_init_range = 0.05;
    c->d_init_range = 0.005;
    c->d_max_norm = 1.9365;
}

/*
 * The winner of the search in docs/stable-preset.md: the seed's networks,
 * trained without mode collapse on a CPU in about ten minutes (10 epochs of
 * 50,000 digits at batch 32). What matters most is G's initial weights, uniform in ±0.1: with
 * PyTorch's default init the ReLU stack gives every z nearly the same image
 * and G collapses within the first epoch. Then Adam 2e-4 with β1 0.5, a
 * sigmoid output, leaky ReLU in G, D dropout 0.5 and label smoothing 0.1;
 * and samples drawn from an average of G's weights (g_ema), which removes
 * most of the speckle the last Adam steps leave.
 */
static void preset_stable(gan_config *c)
{
    c->batch_size = 32;
    c->epochs = 10; /* of MNIST's 50,000 training digits: about 15,600 steps */
    c->g_ema = 0.9995;
    c->g_output = GAN_G_OUTPUT_SIGMOID;
    c->g_activation = GAN_G_ACT_LEAKY_RELU;
    c->d_dropout = 0.5;
    c->label_smoothing = 0.1;
    c->lr_d = 2e-4;
    c->lr_g = 2e-4;
    c->beta1 = 0.5;
    c->g_init_range = 0.1;
}

const char *const gan_config_presets[] = {"seed", "paper", "stable", NULL};
static void (*const preset_apply[])(gan_config *c) = {
    NULL,          /* seed: the PyTorch reference run, i.e. exactly the defaults */
    preset_paper,  /* paper: Goodfellow et al.'s pylearn2 configuration */
    preset_stable, /* stable: no collapse in a short CPU run (docs/stable-preset.md) */
};
_Static_assert(sizeof preset_apply / sizeof preset_apply[0] ==
                   sizeof gan_config_presets / sizeof gan_config_presets[0] - 1,
               "every preset name needs an apply function and vice versa");

static void seed_defaults(gan_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->dataset, sizeof c->dataset, "mnist");
    c->batch_size = 1024;
    c->epochs = 500;
    c->latent_dim = 100;
    c->g_hidden = 1200;
    c->g_output = GAN_G_OUTPUT_RELU;
    c->d_units = 240;
    c->d_pieces = 5;
    c->d_dropout = 0.8;
    c->lr_d = 1e-3;
    c->lr_g = 1e-3;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->g_loss = GAN_G_LOSS_NONSATURATING;
    c->d_steps = 1;
    c->seed = 1;
    c->sample_every = 1;
    c->checkpoint_every = 5;
    c->evaluate_every = 0;
    c->watch_every = 1;
    gan_watch_defaults(&c->watch);
    c->noise = GAN_NOISE_NORMAL;
    c->optimizer = GAN_OPT_ADAM;
    c->momentum = 0.5;
    c->momentum_final = 0.7;
    c->momentum_epochs = 250;
    c->lr_decay = 1.0;
    c->lr_min = 0.0;
}

static int preset_index(const char *name)
{
    for (int i = 0; gan_config_presets[i]; i++)
        if (strcmp(gan_config_presets[i], name) == 0)
            return i;
    return -1;
}

/* "a, b, c" from a NULL-terminated list. */
static void join_names(char *buf, size_t size, const char *const *names, const char *quote)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; names[i] && used < size; i++) {
        int n =
            snprintf(buf + used, size - used, "%s%s%s%s", i ? ", " : "", quote, names[i], quote);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* ---- the field table ---------------------------------------------------------------------- */

typedef enum field_type {
    FT_PRESET, /* string naming a preset; applied before every other field */
    FT_NAME,   /* string of 1..GAN_NAME_MAX-1 characters [A-Za-z0-9_.-] */
    FT_INT,    /* int, JSON number without a fractional part */
    FT_U64,    /* uint64_t, JSON number without a fractional part, at most 2^53 */
    FT_DOUBLE, /* double, finite */
    FT_ENUM,   /* enum stored as int, JSON string from a NULL-terminated list */
    FT_WATCH,  /* gan_watch, a JSON array of rules (gan/watch.c parses and checks it) */
} field_type;

typedef struct field_desc {
    const char *name;
    field_type type;
    size_t offset;
    double min, max;               /* FT_INT, FT_U64, FT_DOUBLE */
    bool min_open, max_open;       /* FT_DOUBLE: bound excluded */
    const char *const *enum_names; /* FT_ENUM */
    unsigned bit;                  /* GAN_F_* of a mutable field, 0 for a fixed one */
} field_desc;

static const char *const g_output_names[] = {"relu", "sigmoid", NULL};
static const char *const g_loss_names[] = {"nonsaturating", "minimax", NULL};
static const char *const noise_names[] = {"normal", "uniform", NULL};
static const char *const precision_names[] = {"fp32", "tf32", NULL};
static const char *const device_names[] = {"auto", "cpu", "cuda", NULL};
static const char *const g_activation_names[] = {"relu", "leaky_relu", NULL};
static const char *const optimizer_names[] = {"adam", "sgd", NULL};

_Static_assert(sizeof(gan_g_output) == sizeof(int) && sizeof(gan_g_loss) == sizeof(int) &&
                   sizeof(gan_noise) == sizeof(int) && sizeof(gan_precision) == sizeof(int) &&
                   sizeof(gan_g_activation) == sizeof(int) &&
                   sizeof(gan_optimizer) == sizeof(int) && sizeof(gan_device) == sizeof(int),
               "enum fields are stored and read as int");

#define OFF(member) offsetof(gan_config, member)
/* clang-format off */
#define ROW_INT(member, lo, hi, bit) \
    {#member, FT_INT, OFF(member), lo, hi, false, false, NULL, bit}
#define ROW_DBL(member, lo_open, lo, hi, hi_open, bit) \
    {#member, FT_DOUBLE, OFF(member), lo, hi, lo_open, hi_open, NULL, bit}
#define ROW_ENUM(member, names, bit) \
    {#member, FT_ENUM, OFF(member), 0, 0, false, false, names, bit}
/* clang-format on */

/* In struct order, which is also the order of gan_config_to_json's output. */
static const field_desc fields[] = {
    {"preset", FT_PRESET, OFF(preset), 0, 0, false, false, NULL, 0},
    {"dataset", FT_NAME, OFF(dataset), 0, 0, false, false, NULL, 0},
    ROW_INT(batch_size, 1, 65536, GAN_F_BATCH_SIZE),
    ROW_INT(epochs, 1, 1000000, GAN_F_EPOCHS),
    ROW_INT(latent_dim, 1, 4096, 0),
    ROW_INT(g_hidden, 1, 16384, 0),
    ROW_ENUM(g_output, g_output_names, 0),
    ROW_INT(d_units, 1, 16384, 0),
    ROW_INT(d_pieces, 1, 64, 0),
    ROW_DBL(d_dropout, false, 0, 1, true, 0),
    ROW_DBL(lr_d, true, 0, 10, false, GAN_F_LR_D),
    ROW_DBL(lr_g, true, 0, 10, false, GAN_F_LR_G),
    ROW_DBL(beta1, false, 0, 1, true, GAN_F_BETA1),
    ROW_DBL(beta2, false, 0, 1, true, GAN_F_BETA2),
    ROW_ENUM(g_loss, g_loss_names, GAN_F_G_LOSS),
    ROW_INT(d_steps, 1, 100, GAN_F_D_STEPS),
    {"seed", FT_U64, OFF(seed), 0, 9007199254740992.0, false, false, NULL, 0},
    ROW_INT(sample_every, 0, 1000000, GAN_F_SAMPLE_EVERY),
    ROW_INT(checkpoint_every, 1, 1000000, GAN_F_CHECKPOINT_EVERY),
    ROW_INT(evaluate_every, 0, 1000000, GAN_F_EVALUATE_EVERY),
    ROW_INT(watch_every, 0, 1000000, GAN_F_WATCH_EVERY),
    {"watch", FT_WATCH, OFF(watch), 0, 0, false, false, NULL, GAN_F_WATCH},
    ROW_ENUM(precision, precision_names, 0),
    ROW_ENUM(device, device_names, 0),
    ROW_ENUM(noise, noise_names, 0),
    ROW_DBL(d_input_dropout, false, 0, 1, true, 0),
    ROW_DBL(d_final_dropout, false, 0, 1, true, 0),
    ROW_ENUM(g_activation, g_activation_names, 0),
    ROW_DBL(label_smoothing, false, 0, 0.5, true, 0),
    ROW_DBL(g_init_range, false, 0, 10, false, 0),
    ROW_DBL(d_init_range, false, 0, 10, false, 0),
    ROW_DBL(d_max_norm, false, 0, 100, false, 0),
    ROW_ENUM(optimizer, optimizer_names, 0),
    ROW_DBL(momentum, false, 0, 1, true, 0),
    ROW_DBL(momentum_final, false, 0, 1, true, 0),
    ROW_INT(momentum_epochs, 0, 1000000, 0),
    ROW_DBL(lr_decay, false, 1, 2, false, 0),
    ROW_DBL(lr_min, false, 0, 10, false, 0),
    ROW_DBL(g_ema, false, 0, 1, true, 0),
};
enum { N_FIELDS = sizeof fields / sizeof fields[0] };

static const field_desc *find_field(const char *name)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

static void *field_ptr(gan_config *c, const field_desc *f)
{
    return (char *)c + f->offset;
}

static const void *field_cptr(const gan_config *c, const field_desc *f)
{
    return (const char *)c + f->offset;
}

static int get_int(const gan_config *c, const field_desc *f)
{
    int v;
    memcpy(&v, field_cptr(c, f), sizeof v);
    return v;
}

static double get_double(const gan_config *c, const field_desc *f)
{
    double v;
    memcpy(&v, field_cptr(c, f), sizeof v);
    return v;
}

static uint64_t get_u64(const gan_config *c, const field_desc *f)
{
    uint64_t v;
    memcpy(&v, field_cptr(c, f), sizeof v);
    return v;
}

static int enum_count(const field_desc *f)
{
    int n = 0;
    while (f->enum_names[n])
        n++;
    return n;
}

static bool double_in_range(const field_desc *f, double d)
{
    if (!isfinite(d))
        return false;
    if (f->min_open ? !(d > f->min) : !(d >= f->min))
        return false;
    return f->max_open ? d < f->max : d <= f->max;
}

/* strlen bounded by size (strnlen is POSIX, not C11). */
static size_t bounded_len(const char *s, size_t size)
{
    const char *nul = memchr(s, '\0', size);
    return nul ? (size_t)(nul - s) : size;
}

static bool valid_name(const char *s, size_t size)
{
    size_t n = bounded_len(s, size);
    if (n == 0 || n >= size)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* What a field accepts, as in "<name> must be <this>". */
static void range_text(const field_desc *f, char *buf, size_t size)
{
    char names[256];
    switch (f->type) {
    case FT_PRESET:
        join_names(names, sizeof names, gan_config_presets, "\"");
        snprintf(buf, size, "a preset name, one of %s", names);
        break;
    case FT_NAME:
        snprintf(buf, size, "a string of 1..%d characters from A-Z a-z 0-9 _ . -",
                 GAN_NAME_MAX - 1);
        break;
    case FT_INT:
    case FT_U64:
        snprintf(buf, size, "an integer in %.17g..%.17g", f->min, f->max);
        break;
    case FT_DOUBLE:
        snprintf(buf, size, "a number in %c%g, %g%c", f->min_open ? '(' : '[', f->min, f->max,
                 f->max_open ? ')' : ']');
        break;
    case FT_ENUM:
        join_names(names, sizeof names, f->enum_names, "\"");
        snprintf(buf, size, "one of %s", names);
        break;
    case FT_WATCH:
        snprintf(buf, size, "an array of at most %d watch rules", GAN_WATCH_MAX);
        break;
    }
}

/* A JSON value as a short text for "got ...": its source text for a number, valid UTF-8. */
static void json_text(const cJSON *v, char *buf, size_t size)
{
    gan_json_got(v, buf, size, 60);
}

/* A stored value as a short text for "got ...". */
static void stored_text(const gan_config *c, const field_desc *f, char *buf, size_t size)
{
    switch (f->type) {
    case FT_PRESET:
    case FT_NAME: {
        const char *s = field_cptr(c, f);
        char copy[GAN_NAME_MAX];
        snprintf(copy, sizeof copy, "%.*s", (int)bounded_len(s, GAN_NAME_MAX - 1), s);
        cJSON *str = cJSON_CreateString(copy);
        if (str) {
            json_text(str, buf, size);
            cJSON_Delete(str);
        } else {
            snprintf(buf, size, "an unprintable value");
        }
        break;
    }
    case FT_INT:
    case FT_ENUM:
        snprintf(buf, size, "%d", get_int(c, f));
        break;
    case FT_U64:
        snprintf(buf, size, "%" PRIu64, get_u64(c, f));
        break;
    case FT_DOUBLE:
        gan_format_double(buf, size, get_double(c, f));
        break;
    case FT_WATCH:
        snprintf(buf, size, "%d rules", c->watch.n);
        break;
    }
}

static int fail_range(gan_error *err, const field_desc *f, const char *got)
{
    char range[320];
    range_text(f, range, sizeof range);
    return gan_fail(err, f->name, "%s must be %s, got %s", f->name, range, got);
}

static int fail_json_range(gan_error *err, const field_desc *f, const cJSON *v)
{
    char got[64];
    json_text(v, got, sizeof got);
    return fail_range(err, f, got);
}

/* Check a JSON value against f and store it in c. FT_PRESET is the caller's business. */
static int set_field(gan_config *c, const field_desc *f, const cJSON *v, gan_error *err)
{
    void *p = field_ptr(c, f);
    switch (f->type) {
    case FT_PRESET:
        return gan_fail(err, f->name, "internal error: preset set as a field");
    case FT_NAME:
        if (!cJSON_IsString(v) || !valid_name(v->valuestring, GAN_NAME_MAX))
            return fail_json_range(err, f, v);
        snprintf(p, GAN_NAME_MAX, "%s", v->valuestring);
        return 0;
    case FT_INT:
    case FT_U64: {
        int64_t n;
        if (!gan_json_integer(v, (int64_t)f->min, (int64_t)f->max, &n))
            return fail_json_range(err, f, v);
        if (f->type == FT_INT) {
            int i = (int)n;
            memcpy(p, &i, sizeof i);
        } else {
            uint64_t u = (uint64_t)n;
            memcpy(p, &u, sizeof u);
        }
        return 0;
    }
    case FT_DOUBLE: {
        if (!cJSON_IsNumber(v) || !double_in_range(f, v->valuedouble))
            return fail_json_range(err, f, v);
        double d = v->valuedouble == 0 ? 0.0 : v->valuedouble; /* no -0 */
        memcpy(p, &d, sizeof d);
        return 0;
    }
    case FT_ENUM:
        if (cJSON_IsString(v))
            for (int i = 0; f->enum_names[i]; i++)
                if (strcmp(f->enum_names[i], v->valuestring) == 0) {
                    memcpy(p, &i, sizeof i);
                    return 0;
                }
        return fail_json_range(err, f, v);
    case FT_WATCH:
        return gan_watch_from_cjson(&c->watch, v, err);
    }
    return gan_fail(err, f->name, "internal error: unknown field type");
}

static bool same_value(const gan_config *a, const gan_config *b, const field_desc *f)
{
    switch (f->type) {
    case FT_PRESET:
    case FT_NAME:
        return strncmp(field_cptr(a, f), field_cptr(b, f), GAN_NAME_MAX) == 0;
    case FT_INT:
    case FT_ENUM:
        return get_int(a, f) == get_int(b, f);
    case FT_U64:
        return get_u64(a, f) == get_u64(b, f);
    case FT_DOUBLE:
        return get_double(a, f) == get_double(b, f);
    case FT_WATCH:
        return gan_watch_equal(&a->watch, &b->watch);
    }
    return false;
}

/* ---- parsing a request body --------------------------------------------------------------- */

static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    return "something else";
}

/* Parse json (len bytes, or NUL-terminated when len is 0) that must be one JSON object. */
static cJSON *parse_object(const char *json, size_t len, gan_error *err)
{
    static const char must[] = "request body must be a JSON object";
    if (!json) {
        gan_fail(err, "", "%s; it is empty", must);
        return NULL;
    }
    if (len == 0)
        len = strlen(json);
    const char *nul = memchr(json, '\0', len);
    if (nul) {
        gan_fail(err, "", "%s; it contains a NUL byte at byte offset %zu", must,
                 (size_t)(nul - json));
        return NULL;
    }
    char *buf = malloc(len + 1);
    if (!buf) {
        gan_fail(err, "", "out of memory reading a %zu-byte request body", len);
        return NULL;
    }
    memcpy(buf, json, len);
    buf[len] = '\0';
    const char *end = NULL;
    cJSON *root = gan_json_parse(buf, len, &end, true);
    if (!root) {
        size_t at = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : len;
        gan_fail(err, "", "%s; it is not valid JSON (parsing stopped at byte offset %zu of %zu)",
                 must, at, len);
        free(buf);
        return NULL;
    }
    free(buf);
    if (!cJSON_IsObject(root)) {
        gan_fail(err, "", "%s, got %s", must, json_kind(root));
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static int fail_unknown_field(gan_error *err, const char *name)
{
    char known[400];
    size_t used = 0;
    known[0] = '\0';
    for (size_t i = 0; i < N_FIELDS && used < sizeof known; i++) {
        int n = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", fields[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    char shown[64];
    gan_utf8_clip(shown, sizeof shown, name, 60);
    return gan_fail(err, shown, "unknown field '%s'; known fields are: %s", shown, known);
}

/* ---- public functions ------------------------------------------------------------------- */

int gan_config_preset(gan_config *c, const char *preset, gan_error *err)
{
    int i = preset ? preset_index(preset) : -1;
    if (i < 0) {
        char known[256], shown[64];
        join_names(known, sizeof known, gan_config_presets, "");
        gan_utf8_clip(shown, sizeof shown, preset ? preset : "(none)", 60);
        return gan_fail(err, "preset", "unknown preset '%s'; known presets are: %s", shown, known);
    }
    seed_defaults(c);
    if (preset_apply[i])
        preset_apply[i](c);
    snprintf(c->preset, sizeof c->preset, "%s", gan_config_presets[i]);
    return 0;
}

int gan_config_from_json(gan_config *out, const char *json, size_t len, gan_error *err)
{
    cJSON *root = parse_object(json, len, err);
    if (!root)
        return -1;
    int rc = gan_config_from_cjson(out, root, err);
    cJSON_Delete(root);
    return rc;
}

int gan_config_from_cjson(gan_config *out, const cJSON *root, gan_error *err)
{
    if (!cJSON_IsObject(root))
        return gan_fail(err, "", "a config must be a JSON object, got %s", json_kind(root));

    /* The preset goes first, whatever its place in the object (the last one if repeated). */
    const cJSON *preset = NULL;
    const cJSON *m;
    for (m = root->child; m; m = m->next)
        if (strcmp(m->string, "preset") == 0)
            preset = m;

    gan_config c;
    if (preset && !cJSON_IsString(preset))
        return fail_json_range(err, find_field("preset"), preset);
    if (gan_config_preset(&c, preset ? preset->valuestring : "seed", err) < 0)
        return -1;

    cJSON_ArrayForEach(m, root)
    {
        const field_desc *f = find_field(m->string);
        if (!f)
            return fail_unknown_field(err, m->string);
        if (f->type != FT_PRESET && set_field(&c, f, m, err) < 0)
            return -1;
    }
    if (gan_config_validate(&c, err) < 0)
        return -1;
    *out = c;
    return 0;
}

int gan_config_validate(const gan_config *c, gan_error *err)
{
    for (size_t i = 0; i < N_FIELDS; i++) {
        const field_desc *f = &fields[i];
        bool ok = false;
        switch (f->type) {
        case FT_PRESET: {
            const char *s = field_cptr(c, f);
            ok = bounded_len(s, GAN_NAME_MAX) < GAN_NAME_MAX && preset_index(s) >= 0;
            break;
        }
        case FT_NAME:
            ok = valid_name(field_cptr(c, f), GAN_NAME_MAX);
            break;
        case FT_INT: {
            int v = get_int(c, f);
            ok = v >= f->min && v <= f->max;
            break;
        }
        case FT_U64:
            ok = get_u64(c, f) <= (uint64_t)f->max;
            break;
        case FT_DOUBLE:
            ok = double_in_range(f, get_double(c, f));
            break;
        case FT_ENUM: {
            int v = get_int(c, f);
            ok = v >= 0 && v < enum_count(f);
            break;
        }
        case FT_WATCH:
            if (gan_watch_validate(&c->watch, err) != 0)
                return -1;
            ok = true;
            break;
        }
        if (!ok) {
            char got[80];
            stored_text(c, f, got, sizeof got);
            return fail_range(err, f, got);
        }
    }
    return 0;
}

cJSON *gan_config_to_cjson(const gan_config *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    for (size_t i = 0; i < N_FIELDS; i++) {
        const field_desc *f = &fields[i];
        char num[64];
        cJSON *item = NULL;
        switch (f->type) {
        case FT_PRESET:
        case FT_NAME: {
            const char *s = field_cptr(c, f);
            snprintf(num, sizeof num, "%.*s", (int)bounded_len(s, GAN_NAME_MAX - 1), s);
            item = cJSON_AddStringToObject(o, f->name, num);
            break;
        }
        case FT_INT:
            item = cJSON_AddNumberToObject(o, f->name, get_int(c, f));
            break;
        case FT_U64: /* digits, never 9.00719925474099e+15: cJSON would print a double */
            item = gan_json_add_u64(o, f->name, get_u64(c, f));
            break;
        case FT_DOUBLE: /* the shortest text that reads back as the same bits */
            item = gan_json_add_double(o, f->name, get_double(c, f));
            break;
        case FT_ENUM: {
            int v = get_int(c, f);
            if (v >= 0 && v < enum_count(f))
                item = cJSON_AddStringToObject(o, f->name, f->enum_names[v]);
            else
                item = cJSON_AddNullToObject(o, f->name);
            break;
        }
        case FT_WATCH: {
            cJSON *a = gan_watch_to_cjson(&c->watch);
            item = a && cJSON_AddItemToObject(o, f->name, a) ? a : NULL;
            if (!item)
                cJSON_Delete(a);
            break;
        }
        }
        if (!item) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

char *gan_config_to_json(const gan_config *c)
{
    cJSON *o = gan_config_to_cjson(c);
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

int gan_config_patch(gan_config *c, const char *json, size_t len, unsigned *changed, gan_error *err)
{
    if (changed)
        *changed = 0;
    cJSON *root = parse_object(json, len, err);
    if (!root)
        return -1;

    gan_config next = *c;
    int rc = -1;
    const cJSON *m;
    cJSON_ArrayForEach(m, root)
    {
        const field_desc *f = find_field(m->string);
        if (!f) {
            fail_unknown_field(err, m->string);
            goto out;
        }
        if (!f->bit) {
            gan_fail(err, f->name, "%s cannot be changed after a run is created", f->name);
            goto out;
        }
        if (cJSON_IsNull(m)) {
            char range[320];
            range_text(f, range, sizeof range);
            gan_fail(err, f->name, "%s cannot be removed; give it a value, %s", f->name, range);
            goto out;
        }
        if (set_field(&next, f, m, err) < 0)
            goto out;
    }
    if (gan_config_validate(&next, err) < 0)
        goto out;

    unsigned diff = 0;
    for (size_t i = 0; i < N_FIELDS; i++)
        if (fields[i].bit && !same_value(c, &next, &fields[i]))
            diff |= fields[i].bit;
    *c = next;
    if (changed)
        *changed = diff;
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

const char *gan_field_name(unsigned bit)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (fields[i].bit && fields[i].bit == bit)
            return fields[i].name;
    return NULL;
}

const char *gan_field_applies(unsigned bit, bool fresh)
{
    return fresh ? "now" : (bit & GAN_F_AT_EPOCH) ? "next_epoch" : "next_iteration";
}

const char *gan_g_output_name(gan_g_output o)
{
    return (unsigned)o < sizeof g_output_names / sizeof g_output_names[0] - 1 ? g_output_names[o]
                                                                              : "invalid";
}

const char *gan_g_loss_name(gan_g_loss l)
{
    return (unsigned)l < sizeof g_loss_names / sizeof g_loss_names[0] - 1 ? g_loss_names[l]
                                                                          : "invalid";
}

const char *gan_device_name(gan_device d)
{
    return device_names[d];
}

double gan_config_lr_at(const gan_config *c, double lr, int64_t step)
{
    if (c->lr_decay == 1.0)
        return lr;
    double v = lr / pow(c->lr_decay, (double)step);
    return v > c->lr_min ? v : c->lr_min;
}

double gan_config_momentum_at(const gan_config *c, int epoch)
{
    if (c->momentum_epochs <= 0 || epoch >= c->momentum_epochs)
        return c->momentum_epochs <= 0 ? c->momentum : c->momentum_final;
    return c->momentum + (c->momentum_final - c->momentum) * epoch / c->momentum_epochs;
}

float gan_config_g_slope(const gan_config *c)
{
    return c->g_activation == GAN_G_ACT_LEAKY_RELU ? 0.2f : 0.0f;
}
