/*
 * daemon/datasets.c — data sets: probing the configured files, loading them for the worker, GET
 * /api/v1/datasets.
 */
#include "daemon/registry_internal.h"

const dataset_info *dataset_find(const gand_registry *reg, const char *name)
{
    for (int i = 0; i < reg->ndatasets; i++)
        if (strcmp(reg->datasets[i].entry.name, name) == 0)
            return &reg->datasets[i];
    return NULL;
}

/* ---- data sets ---------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read only an IDX3 header (gzip or plain): the image count of 28×28 images; -1 with why. */
static int idx3_probe(const char *path, char *why, size_t len)
{
    gzFile f = gzopen(path, "rb");
    uint8_t h[16];
    if (!f) {
        str_printf(why, len, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    int got = gzread(f, h, sizeof h);
    gzclose(f);
    if (got != (int)sizeof h || be32(h) != 0x00000803u) {
        str_printf(why, len, "%s is not an IDX3 image file", path);
        return -1;
    }
    uint32_t n = be32(h + 4), rows = be32(h + 8), cols = be32(h + 12);
    if (n == 0 || n > INT_MAX || rows != GAN_IMAGE_ROWS || cols != GAN_IMAGE_COLS) {
        str_printf(why, len, "%s holds %u images of %u×%u; gand needs 28×28", path, n, rows, cols);
        return -1;
    }
    return (int)n;
}

/* "NAME/BASENAME": how a data set's file is named to clients (never the server path). */
static void data_name(const char *name, const char *path, char *out, size_t len)
{
    const char *base = strrchr(path, '/');
    str_printf(out, len, "%s/%s", name, base ? base + 1 : path);
}

/* The data set's digit classifier, loaded now (host memory): a bad file is said at start-up. */
static void dataset_probe_classifier(dataset_info *d)
{
    if (!d->entry.classifier_path[0]) {
        str_printf(d->classifier_error, sizeof d->classifier_error,
                   "it has no digit classifier (set [datasets] %s.classifier = PATH; gand "
                   "classifier train makes one)",
                   d->entry.name);
        return;
    }
    gan_error err;
    if (gan_classifier_load(d->entry.classifier_path, &d->classifier, &err) != 0) {
        str_printf(d->classifier_error, sizeof d->classifier_error,
                   "its classifier cannot be used: %s", err.message);
        return;
    }
    data_name(d->entry.name, d->entry.classifier_path, d->classifier_name,
              sizeof d->classifier_name);
    d->has_classifier = true;
}

/* The image count, and which images are trained on and which are held out. */
void dataset_probe(dataset_info *d)
{
    int n = idx3_probe(d->entry.path, d->error, sizeof d->error);
    if (n < 0)
        return;
    d->images = n;
    d->rows = GAN_IMAGE_ROWS;
    d->cols = GAN_IMAGE_COLS;
    d->holdout = d->entry.holdout > 0 ? d->entry.holdout : 0;
    if (d->holdout >= n) {
        str_printf(d->error, sizeof d->error,
                   "holdout %d is not less than the %d images of %s: nothing is left to train on",
                   d->holdout, n, d->entry.path);
        return;
    }
    d->train_images = n - d->holdout;
    d->ok = true;
    data_name(d->entry.name, d->entry.path, d->train_name, sizeof d->train_name);
    d->has_test = d->entry.test_path[0] != '\0';
    int t = 0;
    if (d->has_test) {
        data_name(d->entry.name, d->entry.test_path, d->test_name, sizeof d->test_name);
        char why[sizeof d->eval_error];
        t = idx3_probe(d->entry.test_path, why, sizeof why);
        d->test_images = t > 0 ? t : 0;
        if (t < (d->holdout > 0 ? 1 : 2)) {
            str_printf(d->eval_error, sizeof d->eval_error, "its test file cannot be used: %s",
                       t < 0 ? why : "it holds too few images");
            return;
        }
    }
    gan_split_make(n, d->holdout, t, &d->split, NULL);
    if (!gan_split_evaluable(&d->split)) {
        str_printf(d->eval_error, sizeof d->eval_error,
                   "it holds out %s (set [datasets] %s.holdout = N, N ≥ 2, or %s.test = PATH "
                   "in gand.conf)",
                   d->holdout ? "only one image" : "no images", d->entry.name, d->entry.name);
        return;
    }
    dataset_probe_classifier(d);
    str_printf(d->valid_name, sizeof d->valid_name, "%s",
               d->split.valid_in_test ? d->test_name : d->train_name);
    str_printf(d->eval_name, sizeof d->eval_name, "%s",
               d->split.test_in_test ? d->test_name : d->train_name);
    d->eval_ok = true;
}

static dataset_info *dataset_find_mut(gand_registry *reg, const char *name)
{
    for (int i = 0; i < reg->ndatasets; i++)
        if (strcmp(reg->datasets[i].entry.name, name) == 0)
            return &reg->datasets[i];
    return NULL;
}

/* Load a file once; it must still hold the images its header said at start-up. */
static int load_checked(const char *path, int expect, gan_dataset *out, bool *loaded,
                        gan_error *err)
{
    if (*loaded)
        return 0;
    if (gan_idx_load_images(path, out, err) != 0)
        return -1;
    if (out->count != expect) {
        gan_fail(err, "dataset",
                 "%s now holds %d images, not the %d it held when gand started; "
                 "restart gand after changing a data set's file",
                 path, out->count, expect);
        gan_dataset_free(out);
        return -1;
    }
    *loaded = true;
    return 0;
}

/* The worker's copy of a data set's training file, loaded on first use (worker thread only). */
dataset_info *worker_dataset(gand_registry *reg, const char *name, gan_error *err)
{
    dataset_info *d = dataset_find_mut(reg, name);
    if (!d) {
        gan_fail(err, "dataset", "data set '%s' is not configured in this daemon", name);
        return NULL;
    }
    if (!d->ok) {
        gan_fail(err, "dataset", "data set '%s' cannot be used: %s", name, d->error);
        return NULL;
    }
    if (!d->is_loaded) {
        if (load_checked(d->entry.path, d->images, &d->loaded, &d->is_loaded, err) != 0)
            return NULL;
        log_info("data set %s: %d images loaded from %s (%d to train on)", name, d->loaded.count,
                 d->entry.path, d->train_images);
    }
    return d;
}

/* A data set ready to evaluate on: its training file, and its test file when it has one. */
dataset_info *worker_eval_dataset(gand_registry *reg, const char *name, gan_error *err)
{
    dataset_info *d = worker_dataset(reg, name, err);
    if (!d)
        return NULL;
    if (!d->eval_ok) {
        gan_fail(err, "dataset", "data set '%s' cannot be evaluated on: %s", name, d->eval_error);
        return NULL;
    }
    if (d->has_test && !d->test_is_loaded) {
        if (load_checked(d->entry.test_path, d->test_images, &d->test_loaded, &d->test_is_loaded,
                         err) != 0)
            return NULL;
        log_info("data set %s: %d test images loaded from %s", name, d->test_loaded.count,
                 d->entry.test_path);
    }
    return d;
}

/*
 * With the scored images' labels ([datasets] NAME.labels, NAME.test_labels),
 * how many of them the classifier gets right: said once, when it is first
 * used, so that a classifier that does not fit its data set is noticed.
 */
static void judge_accuracy(dataset_info *d, gk_backend *be)
{
    bool in_test = d->split.test_in_test;
    const char *path = in_test ? d->entry.test_labels_path : d->entry.labels_path;
    gan_dataset *ds = in_test ? &d->test_loaded : &d->loaded;
    if (!path[0])
        return;
    gan_error err;
    double acc;
    int n = d->split.test_end - d->split.test_begin;
    if ((!ds->labels && gan_idx_load_labels(path, ds, &err) != 0) ||
        gan_classifier_accuracy(be, &d->classifier,
                                ds->pixels + (size_t)d->split.test_begin * GAN_IMAGE_PIXELS,
                                ds->labels + d->split.test_begin, n, &acc, &err) != 0) {
        log_warning("data set %s: the classifier's accuracy cannot be measured: %s", d->entry.name,
                    err.message);
        return;
    }
    log_info("data set %s: the classifier %s reads %.2f %% of the %d scored images right",
             d->entry.name, d->classifier_name, 100.0 * acc, n);
    if (acc < 0.9)
        log_warning("data set %s: a classifier that reads only %.1f %% of its digits right makes "
                    "its metrics (fid, modes, precision, recall) say little; train one on this "
                    "data set with gand classifier train",
                    d->entry.name, 100.0 * acc);
}

/*
 * The classifier's reference of a data set's test images, made on first use
 * (worker thread only, after worker_eval_dataset); NULL when it has no classifier.
 */
const gan_eval_classifier *worker_judge(gand_registry *reg, dataset_info *d, gk_backend *be,
                                        gan_error *err)
{
    if (!d->has_classifier)
        return NULL;
    if (!d->judge_ready) {
        if (gan_eval_classifier_prepare(be, &d->classifier, &d->loaded,
                                        d->has_test ? &d->test_loaded : NULL, &d->split, &d->judge,
                                        err) != 0)
            return NULL;
        d->judge_ready = true;
        (void)reg;
        judge_accuracy(d, be);
    }
    return &d->judge;
}

reg_status registry_datasets(gand_registry *reg, gand_dataset_view **sets, int *n)
{
    *sets = calloc((size_t)(reg->ndatasets > 0 ? reg->ndatasets : 1), sizeof **sets);
    *n = 0;
    if (!*sets)
        return REG_INTERNAL;
    for (int i = 0; i < reg->ndatasets; i++) { /* fixed after open: no lock needed */
        const dataset_info *d = &reg->datasets[i];
        gand_dataset_view *v = &(*sets)[i];
        str_printf(v->name, sizeof v->name, "%s", d->entry.name);
        v->ok = d->ok;
        v->images = d->ok ? d->images : 0;
        v->rows = GAN_IMAGE_ROWS;
        v->cols = GAN_IMAGE_COLS;
        v->train_images = d->ok ? d->train_images : 0;
        v->holdout = d->ok ? d->holdout : 0;
        v->has_test = d->has_test;
        v->test_images = d->test_images;
        split_view(d, &v->split);
        if (d->has_classifier)
            str_printf(v->classifier, sizeof v->classifier, "%s", d->classifier_name);
        if (d->ok && !d->eval_ok)
            str_printf(v->evaluation_error, sizeof v->evaluation_error, "%s", d->eval_error);
    }
    *n = reg->ndatasets;
    return REG_OK;
}
