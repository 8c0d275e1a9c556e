/*
 * gan/watch.h — watch rules: what gand looks for in a run's records to tell
 * whether the GAN is learning, and what it does when a rule fires.
 *
 * Three kinds, each with its own thresholds:
 *  - d_wins: mean D(G(z)) in the G steps (`d_g_z`) below `d_g_z_below` for
 *    `epochs` epochs in a row: D rejects every sample and G learns little;
 *  - mode_collapse: `evaluations` watched evaluations in a row find fewer
 *    than `modes_below` of the ten digit classes in G's samples (see
 *    gan/sample_metrics.h) — in a row, since a G that learns well covers few
 *    classes in its first epoch too;
 *  - divergence: the Fréchet distance of the watched evaluations rose
 *    `evaluations` times in a row.
 * An `action` says what follows: `alert` (an event, a counter) or `pause`
 * (the same, and the run pauses with the alert as its reason).
 *
 * A rule is a pure function of the run's history — its epoch records and the
 * metrics of its evaluations, oldest first — evaluated when a record is
 * added. It fires when its condition becomes true (a streak reaches its
 * length, a count drops below its bound) and again only after the condition
 * was false in between. So `gand train` and the daemon fire the same alerts at
 * the same epochs, and a daemon that restarts, reading the history back,
 * neither repeats an alert nor forgets a streak.
 */
#ifndef GAND_GAN_WATCH_H
#define GAND_GAN_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "gan/error.h"

typedef enum gan_watch_kind {
    GAN_WATCH_D_WINS,
    GAN_WATCH_MODE_COLLAPSE,
    GAN_WATCH_DIVERGENCE,
    GAN_WATCH_KINDS
} gan_watch_kind;

typedef enum gan_watch_action { GAN_WATCH_ALERT, GAN_WATCH_PAUSE } gan_watch_action;

typedef struct gan_watch_rule {
    gan_watch_kind kind;
    gan_watch_action action;
    double d_g_z_below; /* d_wins: (0, 1), default 0.05 */
    int epochs;         /* d_wins: 1..1000, default 3 */
    int modes_below;    /* mode_collapse: 1..10, default 8 */
    int evaluations;    /* mode_collapse: evaluations in a row; divergence: rises in a row;
                           1..100, default 3 */
} gan_watch_rule;

enum { GAN_WATCH_MAX = 8 };

/* A run's rules, in the order given. */
typedef struct gan_watch {
    int n;
    gan_watch_rule rules[GAN_WATCH_MAX];
} gan_watch;

/* The default rules: one of each kind, action alert. */
void gan_watch_defaults(gan_watch *w);

/*
 * Parse the JSON value of a config's `watch` field: an array of at most
 * GAN_WATCH_MAX objects, each with `kind`, optionally `action` (default alert)
 * and its kind's thresholds (absent ones take the defaults above). Unknown
 * keys, a threshold of another kind and values out of range are errors
 * naming the field: "watch[1].modes_below must be an integer in 1..10, got 0".
 * On error *w is unchanged.
 */
struct cJSON;
int gan_watch_from_cjson(gan_watch *w, const struct cJSON *v, gan_error *err);
/* The rules as a JSON array (each with its kind's thresholds only); NULL on OOM. */
struct cJSON *gan_watch_to_cjson(const gan_watch *w);
/* Range checks of every rule (err names the field as above). */
int gan_watch_validate(const gan_watch *w, gan_error *err);
bool gan_watch_equal(const gan_watch *a, const gan_watch *b);

const char *gan_watch_kind_name(gan_watch_kind k);
const char *gan_watch_action_name(gan_watch_action a);

/* What an evaluation contributes to the rules: its epoch, modes and Fréchet distance. */
typedef struct gan_watch_point {
    int epoch;
    int modes;
    double fid;
} gan_watch_point;

/* A rule that fired. */
typedef struct gan_alert {
    gan_watch_kind kind;
    gan_watch_action action;
    int rule;          /* its index in the run's watch list */
    int epoch;         /* the epoch whose record (or evaluation) fired it */
    double value;      /* d_wins: d_g_z of that epoch; mode_collapse: modes; divergence: fid */
    double threshold;  /* d_g_z_below, modes_below, or the Fréchet distance the rises began at */
    int count;         /* epochs (d_wins), evaluations (mode_collapse), rises in a row */
    char message[400]; /* a sentence a newcomer understands */
} gan_alert;

/*
 * The rules that fire on the newest of n epoch records (oldest first): at
 * most max alerts into out; returns how many.
 */
struct gan_epoch_metrics; /* gan/trainer.h */
int gan_watch_after_epoch(const gan_watch *w, const struct gan_epoch_metrics *m, int n,
                          gan_alert *out, int max);
/* The same for the newest of n evaluation points (oldest first). */
int gan_watch_after_evaluation(const gan_watch *w, const gan_watch_point *pts, int n,
                               gan_alert *out, int max);

/*
 * The alert as a one-line JSON object (the `alert` event's data):
 * {"kind","action","rule","epoch","value","threshold","count","message"}.
 */
void gan_alert_json(const gan_alert *a, char *buf, size_t len);
/* The same as a cJSON object (NULL on OOM), and read back from one (-1: not an alert). */
struct cJSON *gan_alert_to_cjson(const gan_alert *a);
int gan_alert_from_cjson(gan_alert *a, const struct cJSON *o);

#endif
