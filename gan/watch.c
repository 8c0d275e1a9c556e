/*
 * gan/watch.c — watch rules (watch.h): parsing and printing them, and
 * deciding, from a run's history, which fire.
 *
 * "Fires when the condition becomes true" is computed from the history
 * alone: d_wins fires when the streak of low epochs reaches exactly its
 * length (a longer streak has already fired), mode_collapse when the newest
 * evaluation is below the bound and the one before was not, divergence when
 * the run of rises reaches exactly its length. No state is kept between calls.
 */
#include "gan/watch.h"

#include "gan/json_text.h"
#include "gan/trainer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[GAN_WATCH_KINDS] = {"d_wins", "mode_collapse", "divergence"};
static const char *const action_names[] = {"alert", "pause"};

const char *gan_watch_kind_name(gan_watch_kind k)
{
    return k >= 0 && k < GAN_WATCH_KINDS ? kind_names[k] : "unknown";
}

const char *gan_watch_action_name(gan_watch_action a)
{
    return a == GAN_WATCH_PAUSE ? action_names[1] : action_names[0];
}

static gan_watch_rule default_rule(gan_watch_kind kind)
{
    gan_watch_rule r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.action = GAN_WATCH_ALERT;
    r.d_g_z_below = 0.05;
    r.epochs = 3;
    r.modes_below = 8;
    r.evaluations = 3;
    return r;
}

void gan_watch_defaults(gan_watch *w)
{
    memset(w, 0, sizeof *w);
    for (int k = 0; k < GAN_WATCH_KINDS; k++)
        w->rules[w->n++] = default_rule((gan_watch_kind)k);
}

/* ---- the keys of a rule ------------------------------------------------------------------ */

typedef enum {
    KEY_KIND,
    KEY_ACTION,
    KEY_D_G_Z_BELOW,
    KEY_EPOCHS,
    KEY_MODES_BELOW,
    KEY_EVALS
} key_id;

typedef struct key_desc {
    const char *name;
    key_id id;
    unsigned kinds; /* bits (1 << kind) of the rule kinds it belongs to; 0: every kind */
    double min, max;
    bool is_int, open; /* open: (min, max) instead of [min, max] */
} key_desc;

static const key_desc keys[] = {
    {"kind", KEY_KIND, 0, 0, 0, false, false},
    {"action", KEY_ACTION, 0, 0, 0, false, false},
    {"d_g_z_below", KEY_D_G_Z_BELOW, 1u << GAN_WATCH_D_WINS, 0, 1, false, true},
    {"epochs", KEY_EPOCHS, 1u << GAN_WATCH_D_WINS, 1, 1000, true, false},
    {"modes_below", KEY_MODES_BELOW, 1u << GAN_WATCH_MODE_COLLAPSE, 1, 10, true, false},
    {"evaluations", KEY_EVALS, 1u << GAN_WATCH_MODE_COLLAPSE | 1u << GAN_WATCH_DIVERGENCE, 1, 100,
     true, false},
};

/* A threshold of rules of this kind (kind and action belong to every rule). */
static bool key_of(const key_desc *k, int kind)
{
    return k->kinds != 0 && (k->kinds & (1u << kind)) != 0;
}
enum { N_KEYS = sizeof keys / sizeof keys[0] };

static const key_desc *find_key(const char *name)
{
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static double key_value(const gan_watch_rule *r, key_id id)
{
    switch (id) {
    case KEY_D_G_Z_BELOW:
        return r->d_g_z_below;
    case KEY_EPOCHS:
        return r->epochs;
    case KEY_MODES_BELOW:
        return r->modes_below;
    case KEY_EVALS:
        return r->evaluations;
    default:
        return 0;
    }
}

static void set_key(gan_watch_rule *r, key_id id, double v)
{
    switch (id) {
    case KEY_D_G_Z_BELOW:
        r->d_g_z_below = v;
        break;
    case KEY_EPOCHS:
        r->epochs = (int)v;
        break;
    case KEY_MODES_BELOW:
        r->modes_below = (int)v;
        break;
    case KEY_EVALS:
        r->evaluations = (int)v;
        break;
    default:
        break;
    }
}

static bool in_range(const key_desc *k, double v)
{
    if (!isfinite(v) || (k->is_int && v != trunc(v)))
        return false;
    return k->open ? v > k->min && v < k->max : v >= k->min && v <= k->max;
}

static int fail_key_range(gan_error *err, int i, const key_desc *k, const char *got)
{
    char field[64];
    snprintf(field, sizeof field, "watch[%d].%s", i, k->name);
    if (k->is_int)
        return gan_fail(err, field, "%s must be an integer in %g..%g, got %s", field, k->min,
                        k->max, got);
    return gan_fail(err, field, "%s must be a number in %s%g, %g%s, got %s", field,
                    k->open ? "(" : "[", k->min, k->max, k->open ? ")" : "]", got);
}

/* A short rendering of a JSON value for an error message (a number as it was sent; UTF-8). */
static void value_text(const cJSON *v, char *buf, size_t size)
{
    gan_json_got(v, buf, size, 60);
}

static int name_index(const char *const *names, int n, const cJSON *v)
{
    if (!cJSON_IsString(v))
        return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], v->valuestring) == 0)
            return i;
    return -1;
}

/* One rule object, element i of the array. */
static int rule_from_cjson(gan_watch_rule *out, int i, const cJSON *o, gan_error *err)
{
    char field[64], got[80];
    snprintf(field, sizeof field, "watch[%d]", i);
    if (!cJSON_IsObject(o)) {
        value_text(o, got, sizeof got);
        return gan_fail(err, field, "%s must be an object with a \"kind\", got %s", field, got);
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    snprintf(field, sizeof field, "watch[%d].kind", i);
    if (!kind)
        return gan_fail(err, field,
                        "%s is missing; it must be one of d_wins, mode_collapse, "
                        "divergence",
                        field);
    int k = name_index(kind_names, GAN_WATCH_KINDS, kind);
    if (k < 0) {
        value_text(kind, got, sizeof got);
        return gan_fail(err, field, "%s must be one of d_wins, mode_collapse, divergence, got %s",
                        field, got);
    }
    gan_watch_rule r = default_rule((gan_watch_kind)k);
    const cJSON *m;
    cJSON_ArrayForEach(m, o)
    {
        const key_desc *d = find_key(m->string);
        if (!d) {
            char key[32];
            gan_utf8_clip(key, sizeof key, m->string, 30);
            snprintf(field, sizeof field, "watch[%d].%s", i, key);
            return gan_fail(err, field,
                            "%s is not a key of a watch rule; a rule has kind, action and its "
                            "kind's thresholds (d_wins: d_g_z_below, epochs; mode_collapse: "
                            "modes_below, evaluations; divergence: evaluations)",
                            field);
        }
        snprintf(field, sizeof field, "watch[%d].%s", i, d->name);
        if (d->id == KEY_KIND)
            continue;
        if (d->id == KEY_ACTION) {
            int a = name_index(action_names, 2, m);
            if (a < 0) {
                value_text(m, got, sizeof got);
                return gan_fail(err, field, "%s must be alert or pause, got %s", field, got);
            }
            r.action = (gan_watch_action)a;
            continue;
        }
        if (!key_of(d, k))
            return gan_fail(err, field,
                            "%s is not a threshold of a %s rule (d_wins: d_g_z_below, epochs; "
                            "mode_collapse: modes_below, evaluations; divergence: evaluations)",
                            field, kind_names[k]);
        int64_t n = 0; /* an integer key is judged on its digits: 3.0000000000000001 is not 3 */
        if (!cJSON_IsNumber(m) || !in_range(d, m->valuedouble) ||
            (d->is_int && !gan_json_integer(m, (int64_t)d->min, (int64_t)d->max, &n))) {
            value_text(m, got, sizeof got);
            return fail_key_range(err, i, d, got);
        }
        set_key(&r, d->id, d->is_int ? (double)n : m->valuedouble);
    }
    *out = r;
    return 0;
}

int gan_watch_from_cjson(gan_watch *w, const cJSON *v, gan_error *err)
{
    char got[80];
    if (!cJSON_IsArray(v)) {
        value_text(v, got, sizeof got);
        return gan_fail(err, "watch", "watch must be an array of rules (at most %d), got %s",
                        GAN_WATCH_MAX, got);
    }
    int n = cJSON_GetArraySize(v);
    if (n > GAN_WATCH_MAX)
        return gan_fail(err, "watch", "watch must be an array of at most %d rules, got %d",
                        GAN_WATCH_MAX, n);
    gan_watch next;
    memset(&next, 0, sizeof next);
    const cJSON *o;
    cJSON_ArrayForEach(o, v)
    {
        if (rule_from_cjson(&next.rules[next.n], next.n, o, err) != 0)
            return -1;
        next.n++;
    }
    *w = next;
    return 0;
}

cJSON *gan_watch_to_cjson(const gan_watch *w)
{
    cJSON *a = cJSON_CreateArray();
    if (!a)
        return NULL;
    for (int i = 0; i < w->n && i < GAN_WATCH_MAX; i++) {
        const gan_watch_rule *r = &w->rules[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(a, o)) {
            cJSON_Delete(o);
            cJSON_Delete(a);
            return NULL;
        }
        bool ok = cJSON_AddStringToObject(o, "kind", gan_watch_kind_name(r->kind)) &&
                  cJSON_AddStringToObject(o, "action", gan_watch_action_name(r->action));
        for (int k = 0; k < N_KEYS && ok; k++) /* exactly: cJSON's printer may drop digits */
            if (key_of(&keys[k], r->kind))
                ok = gan_json_add_double(o, keys[k].name, key_value(r, keys[k].id)) != NULL;
        if (!ok) {
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

int gan_watch_validate(const gan_watch *w, gan_error *err)
{
    if (w->n < 0 || w->n > GAN_WATCH_MAX)
        return gan_fail(err, "watch", "watch must be an array of at most %d rules, got %d",
                        GAN_WATCH_MAX, w->n);
    for (int i = 0; i < w->n; i++) {
        const gan_watch_rule *r = &w->rules[i];
        char field[64];
        if (r->kind < 0 || r->kind >= GAN_WATCH_KINDS) {
            snprintf(field, sizeof field, "watch[%d].kind", i);
            return gan_fail(err, field, "%s must be one of d_wins, mode_collapse, divergence",
                            field);
        }
        if (r->action != GAN_WATCH_ALERT && r->action != GAN_WATCH_PAUSE) {
            snprintf(field, sizeof field, "watch[%d].action", i);
            return gan_fail(err, field, "%s must be alert or pause", field);
        }
        for (int k = 0; k < N_KEYS; k++) {
            if (!key_of(&keys[k], r->kind))
                continue;
            double v = key_value(r, keys[k].id);
            if (!in_range(&keys[k], v)) {
                char got[40];
                snprintf(got, sizeof got, "%g", v);
                return fail_key_range(err, i, &keys[k], got);
            }
        }
    }
    return 0;
}

bool gan_watch_equal(const gan_watch *a, const gan_watch *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++) {
        const gan_watch_rule *x = &a->rules[i], *y = &b->rules[i];
        if (x->kind != y->kind || x->action != y->action)
            return false;
        for (int k = 0; k < N_KEYS; k++)
            if (key_of(&keys[k], x->kind) && key_value(x, keys[k].id) != key_value(y, keys[k].id))
                return false;
    }
    return true;
}

/* ---- firing ------------------------------------------------------------------------------ */

static gan_alert alert_of(const gan_watch_rule *r, int index, int epoch)
{
    gan_alert a;
    memset(&a, 0, sizeof a);
    a.kind = r->kind;
    a.action = r->action;
    a.rule = index;
    a.epoch = epoch;
    return a;
}

static const char *pause_note(const gan_watch_rule *r)
{
    return r->action == GAN_WATCH_PAUSE ? " The run is paused; resume it to go on." : "";
}

int gan_watch_after_epoch(const gan_watch *w, const gan_epoch_metrics *m, int n, gan_alert *out,
                          int max)
{
    int fired = 0;
    if (n <= 0)
        return 0;
    for (int i = 0; i < w->n && fired < max; i++) {
        const gan_watch_rule *r = &w->rules[i];
        if (r->kind != GAN_WATCH_D_WINS)
            continue;
        int streak = 0; /* epochs in a row, ending with the newest, below the threshold */
        while (streak < n && m[n - 1 - streak].d_g_z < r->d_g_z_below && streak <= r->epochs)
            streak++;
        if (streak != r->epochs)
            continue;
        gan_alert a = alert_of(r, i, m[n - 1].epoch);
        a.value = m[n - 1].d_g_z;
        a.threshold = r->d_g_z_below;
        a.count = streak;
        snprintf(a.message, sizeof a.message,
                 "The discriminator is winning: mean D(G(z)) was %.3g in epoch %d and below %g "
                 "for %d epoch%s in a row, so it rejects nearly every generated digit and the "
                 "generator learns little. A lower lr_d, label_smoothing or a restart with "
                 "another seed may help.%s",
                 a.value, a.epoch, r->d_g_z_below, streak, streak == 1 ? "" : "s", pause_note(r));
        out[fired++] = a;
    }
    return fired;
}

int gan_watch_after_evaluation(const gan_watch *w, const gan_watch_point *pts, int n,
                               gan_alert *out, int max)
{
    int fired = 0;
    if (n <= 0)
        return 0;
    const gan_watch_point *last = &pts[n - 1];
    for (int i = 0; i < w->n && fired < max; i++) {
        const gan_watch_rule *r = &w->rules[i];
        if (r->kind == GAN_WATCH_MODE_COLLAPSE) {
            int streak = 0; /* evaluations in a row, ending with the newest, below the bound */
            while (streak < n && pts[n - 1 - streak].modes < r->modes_below &&
                   streak <= r->evaluations)
                streak++;
            if (streak != r->evaluations)
                continue;
            gan_alert a = alert_of(r, i, last->epoch);
            a.value = last->modes;
            a.threshold = r->modes_below;
            a.count = streak;
            snprintf(a.message, sizeof a.message,
                     "Mode collapse: at epoch %d the digit classifier finds only %d of the 10 "
                     "digit classes in the generator's samples, fewer than %d for %d "
                     "evaluation%s in a row, so the generator draws a few digits whatever its "
                     "noise. A collapse this late rarely mends itself; a restart with another "
                     "seed or preset, or a lower lr_g, usually helps.%s",
                     last->epoch, last->modes, r->modes_below, streak, streak == 1 ? "" : "s",
                     pause_note(r));
            out[fired++] = a;
        } else if (r->kind == GAN_WATCH_DIVERGENCE) {
            int rises = 0; /* rises in a row, ending with the newest point */
            while (rises < n - 1 && pts[n - 1 - rises].fid > pts[n - 2 - rises].fid &&
                   rises <= r->evaluations)
                rises++;
            if (rises != r->evaluations)
                continue;
            const gan_watch_point *from = &pts[n - 1 - rises];
            gan_alert a = alert_of(r, i, last->epoch);
            a.value = last->fid;
            a.threshold = from->fid;
            a.count = rises;
            snprintf(a.message, sizeof a.message,
                     "Diverging: the Fréchet distance of the samples to real digits rose %d "
                     "evaluation%s in a row, from %.3g at epoch %d to %.3g at epoch %d, so the "
                     "samples are moving away from the data. The best checkpoint "
                     "(checkpoint?which=best) keeps the generator from before.%s",
                     rises, rises == 1 ? "" : "s", from->fid, from->epoch, last->fid, last->epoch,
                     pause_note(r));
            out[fired++] = a;
        }
    }
    return fired;
}

cJSON *gan_alert_to_cjson(const gan_alert *a)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = cJSON_AddStringToObject(o, "kind", gan_watch_kind_name(a->kind)) &&
              cJSON_AddStringToObject(o, "action", gan_watch_action_name(a->action)) &&
              cJSON_AddNumberToObject(o, "rule", a->rule) &&
              cJSON_AddNumberToObject(o, "epoch", a->epoch) &&
              cJSON_AddNumberToObject(o, "value", a->value) &&
              cJSON_AddNumberToObject(o, "threshold", a->threshold) &&
              cJSON_AddNumberToObject(o, "count", a->count) &&
              cJSON_AddStringToObject(o, "message", a->message);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int gan_alert_from_cjson(gan_alert *a, const cJSON *o)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(o, "action");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(o, "message");
    int k = name_index(kind_names, GAN_WATCH_KINDS, kind);
    int act = name_index(action_names, 2, action);
    if (k < 0 || act < 0 || !cJSON_IsString(message))
        return -1;
    memset(a, 0, sizeof *a);
    a->kind = (gan_watch_kind)k;
    a->action = (gan_watch_action)act;
    const cJSON *v;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "rule")))
        a->rule = v->valueint;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "epoch")))
        a->epoch = v->valueint;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "value")))
        a->value = v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "threshold")))
        a->threshold = v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "count")))
        a->count = v->valueint;
    snprintf(a->message, sizeof a->message, "%s", message->valuestring);
    return 0;
}

void gan_alert_json(const gan_alert *a, char *buf, size_t len)
{
    cJSON *o = gan_alert_to_cjson(a);
    if (!o || !cJSON_PrintPreallocated(o, buf, (int)len, false))
        snprintf(buf, len, "{\"kind\":\"%s\",\"epoch\":%d}", gan_watch_kind_name(a->kind),
                 a->epoch);
    cJSON_Delete(o);
}
