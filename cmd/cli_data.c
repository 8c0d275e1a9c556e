/*
 * cmd/cli_data.c — what the one-shot commands share: their integer options,
 * and their data (a bundled data set by name, or an IDX file with an optional
 * test file, and its split).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/commands.h"
#include "daemon/paths.h"

int gand_cli_data_load(const char *cmd, const char *dataset, const char *data_path,
                       const char *test_path, long holdout, gand_cli_data *out)
{
    memset(out, 0, sizeof *out);
    gan_error err = {{0}, {0}};
    if (dataset && data_path) {
        fprintf(stderr, "gand %s: give either --dataset or --data, not both\n", cmd);
        return 2;
    }
    if (!data_path) { /* a bundled data set: its files, holdout and test file */
        const char *name = dataset ? dataset : gand_bundled_datasets[0].name;
        const gand_bundled_dataset *b = gand_bundled_dataset_find(name);
        if (!b) {
            fprintf(stderr, "gand %s: --dataset must be one of the bundled data sets (", cmd);
            for (int i = 0; i < gand_bundled_dataset_count; i++)
                fprintf(stderr, "%s%s", i ? ", " : "", gand_bundled_datasets[i].name);
            fprintf(stderr, "), got '%s'; give another file with --data\n", name);
            return 2;
        }
        if (gand_data_file(b->images, out->train_path, sizeof out->train_path) != 0 ||
            (b->test_images && !test_path &&
             gand_data_file(b->test_images, out->test_path, sizeof out->test_path) != 0)) {
            fprintf(stderr, "gand %s: the bundled data set %s was not found; pass --data\n", cmd,
                    name);
            return 2;
        }
        if (holdout < 0)
            holdout = b->holdout;
    } else {
        snprintf(out->train_path, sizeof out->train_path, "%s", data_path);
    }
    if (test_path)
        snprintf(out->test_path, sizeof out->test_path, "%s", test_path);
    if (holdout < 0)
        holdout = 0;
    if (gan_idx_load_images(out->train_path, &out->train, &err) != 0) {
        fprintf(stderr, "gand %s: %s\n", cmd, err.message);
        return 2;
    }
    if (out->test_path[0]) {
        if (gan_idx_load_images(out->test_path, &out->test, &err) != 0) {
            fprintf(stderr, "gand %s: %s\n", cmd, err.message);
            gan_dataset_free(&out->train);
            return 2;
        }
        out->has_test = true;
    }
    if (gan_split_make(out->train.count, (int)holdout, out->has_test ? out->test.count : 0,
                       &out->split, &err) != 0) {
        fprintf(stderr, "gand %s: --%s\n", cmd, err.message);
        gand_cli_data_free(out);
        return 2;
    }
    return 0;
}

void gand_cli_data_describe(const gand_cli_data *d, char *buf, size_t len)
{
    const gan_split *s = &d->split;
    if (!gan_split_evaluable(s)) {
        snprintf(buf, len, "trains on images 0..%d of %s; nothing held out to evaluate on",
                 s->train_count - 1, d->train_path);
        return;
    }
    snprintf(buf, len, "trains on images 0..%d of %s; sigma on %d..%d of %s, scores %d..%d of %s",
             s->train_count - 1, d->train_path, s->valid_begin, s->valid_end - 1,
             s->valid_in_test ? d->test_path : d->train_path, s->test_begin, s->test_end - 1,
             s->test_in_test ? d->test_path : d->train_path);
}

int gand_cli_data_judge(const char *cmd, gand_cli_data *d, const char *dataset,
                        const char *data_path, const char *classifier_path, gk_backend *be)
{
    gan_error err = {{0}, {0}};
    if (classifier_path) {
        snprintf(d->classifier_path, sizeof d->classifier_path, "%s", classifier_path);
    } else if (!data_path) {
        const gand_bundled_dataset *b =
            gand_bundled_dataset_find(dataset ? dataset : gand_bundled_datasets[0].name);
        if (b && b->classifier &&
            gand_data_file(b->classifier, d->classifier_path, sizeof d->classifier_path) != 0)
            d->classifier_path[0] = '\0';
    }
    if (!d->classifier_path[0] || !gan_split_evaluable(&d->split))
        return 0;
    if (gan_classifier_load(d->classifier_path, &d->classifier, &err) != 0) {
        fprintf(stderr, "gand %s: --classifier: %s\n", cmd, err.message);
        return 2;
    }
    d->has_classifier = true;
    if (gan_eval_classifier_prepare(be, &d->classifier, &d->train, d->has_test ? &d->test : NULL,
                                    &d->split, &d->judge, &err) != 0) {
        fprintf(stderr, "gand %s: the classifier's reference: %s\n", cmd, err.message);
        return 2;
    }
    return 0;
}

void gand_cli_data_free(gand_cli_data *d)
{
    gan_eval_classifier_release(&d->judge);
    if (d->has_classifier)
        gan_classifier_free(&d->classifier);
    d->has_classifier = false;
    gan_dataset_free(&d->train);
    if (d->has_test)
        gan_dataset_free(&d->test);
    d->has_test = false;
}

bool gand_option_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "gand %s: %s must be an integer in %ld..%ld, got '%s'\n", cmd, opt, lo, hi,
                s);
        return false;
    }
    *out = v;
    return true;
}
