/*
 * gan/evaluate.c — held-out splits, and what an evaluation of a generator
 * measures: the Parzen estimate and the digit classifier's metrics, both on
 * the same generated images.
 */
#include "gan/evaluate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gan/trainer.h"
#include "kernels/elementwise.h"

int gan_split_make(int count, int holdout, int test_count, gan_split *s, gan_error *err)
{
    if (holdout < 0 || holdout >= count)
        return gan_fail(err, "holdout",
                        "holdout must be an integer in 0..%d (the data set has %d "
                        "images), got %d",
                        count - 1, count, holdout);
    if (test_count < 0)
        return gan_fail(err, "holdout", "a test file of %d images", test_count);
    memset(s, 0, sizeof *s);
    s->train_count = count - holdout;
    if (test_count > 0 && holdout > 0) { /* σ on the holdout, the whole test file scored */
        s->valid_begin = count - holdout;
        s->valid_end = count;
        s->test_end = test_count;
        s->test_in_test = true;
    } else if (test_count > 0) { /* the test file in halves */
        s->valid_end = test_count / 2;
        s->test_begin = test_count / 2;
        s->test_end = test_count;
        s->valid_in_test = s->test_in_test = true;
    } else { /* the holdout in halves */
        s->valid_begin = count - holdout;
        s->valid_end = s->valid_begin + holdout / 2;
        s->test_begin = s->valid_end;
        s->test_end = count;
    }
    return 0;
}

bool gan_split_evaluable(const gan_split *s)
{
    return s->valid_end > s->valid_begin && s->test_end > s->test_begin;
}

float *gan_dataset_rows_float(const gan_dataset *ds, int begin, int end)
{
    size_t d = (size_t)ds->rows * (size_t)ds->cols, n = (size_t)(end - begin);
    float *out = malloc(n * d * sizeof(float) + 1);
    if (!out)
        return NULL;
    const uint8_t *in = ds->pixels + (size_t)begin * d;
    for (size_t i = 0; i < n * d; i++)
        out[i] = (float)in[i] * (1.0f / 255.0f);
    return out;
}

int gan_generate_many(const gan_config *cfg, const float *g_params, int n, uint64_t seed,
                      uint32_t purpose, float *images, gan_error *err)
{
    /* one noise stream for all n images, generated in chunks to bound memory */
    enum { CHUNK = 1000 };
    size_t L = (size_t)cfg->latent_dim;
    float *z = malloc((size_t)CHUNK * L * sizeof(float));
    if (!z)
        return gan_fail(err, "samples", "out of memory generating %d images", n);
    for (int done = 0; done < n; done += CHUNK) {
        int k = n - done < CHUNK ? n - done : CHUNK;
        for (size_t i = 0; i < (size_t)k * L; i++) {
            uint64_t idx = (uint64_t)done * L + i;
            z[i] = cfg->noise == GAN_NOISE_UNIFORM
                       ? -1.7320508f + 3.4641016f * gk_philox_uniform(seed, purpose, 0, idx)
                       : gk_philox_normal(seed, purpose, 0, idx);
        }
        if (gan_generate(cfg, g_params, z, k, images + (size_t)done * GAN_IMAGE_PIXELS, err) != 0) {
            free(z);
            return -1;
        }
    }
    free(z);
    return 0;
}

int gan_evaluate_images(gk_backend *be, const float *images, int samples,
                        const gan_dataset *train_ds, const gan_dataset *test_ds,
                        const gan_split *split, gan_parzen_result *out, gan_error *err)
{
    if (!gan_split_evaluable(split))
        return gan_fail(err, "holdout",
                        "the data set holds out no images to evaluate on (holdout is 0)");
    const gan_dataset *vds = split->valid_in_test ? test_ds : train_ds;
    const gan_dataset *tds = split->test_in_test ? test_ds : train_ds;
    if (!vds || !tds || split->valid_end > vds->count || split->test_end > tds->count)
        return gan_fail(err, "holdout", "the split does not fit the data set's files");
    float *valid = gan_dataset_rows_float(vds, split->valid_begin, split->valid_end);
    float *test = gan_dataset_rows_float(tds, split->test_begin, split->test_end);
    int rc = -1;
    if (!valid || !test)
        gan_fail(err, "samples", "out of memory for the evaluation");
    else
        rc = gan_parzen_evaluate(be, images, samples, valid, split->valid_end - split->valid_begin,
                                 test, split->test_end - split->test_begin, GAN_IMAGE_PIXELS, out,
                                 err);
    free(valid);
    free(test);
    return rc;
}

int gan_evaluate_parzen(gk_backend *be, const gan_config *cfg, const float *g_params,
                        const gan_dataset *train_ds, const gan_dataset *test_ds,
                        const gan_split *split, int samples, uint64_t seed, gan_parzen_result *out,
                        gan_error *err)
{
    if (samples < 1 || samples > 100000)
        return gan_fail(err, "samples", "samples must be an integer in 1..100000, got %d", samples);
    if (!gan_split_evaluable(split))
        return gan_fail(err, "holdout",
                        "the data set holds out no images to evaluate on (holdout is 0)");
    float *gen = malloc((size_t)samples * GAN_IMAGE_PIXELS * sizeof(float));
    if (!gen)
        return gan_fail(err, "samples", "out of memory for the evaluation");
    int rc = gan_generate_many(cfg, g_params, samples, seed, GK_PURPOSE_EVAL, gen, err);
    if (rc == 0)
        rc = gan_evaluate_images(be, gen, samples, train_ds, test_ds, split, out, err);
    free(gen);
    return rc;
}

/* The split's test images: where they are, and how many. */
static const gan_dataset *test_file(const gan_dataset *train_ds, const gan_dataset *test_ds,
                                    const gan_split *split)
{
    return split->test_in_test ? test_ds : train_ds;
}

int gan_eval_classifier_prepare(gk_backend *be, const gan_classifier *c,
                                const gan_dataset *train_ds, const gan_dataset *test_ds,
                                const gan_split *split, gan_eval_classifier *out, gan_error *err)
{
    memset(out, 0, sizeof *out);
    const gan_dataset *tds = test_file(train_ds, test_ds, split);
    int n = split->test_end - split->test_begin;
    if (!tds || n <= GAN_SAMPLE_K || split->test_end > tds->count)
        return gan_fail(err, "holdout",
                        "the classifier's metrics need more than %d held-out test images, the "
                        "data set has %d",
                        GAN_SAMPLE_K, n > 0 ? n : 0);
    float *real = gan_dataset_rows_float(tds, split->test_begin, split->test_end);
    float *probs = malloc((size_t)n * GAN_CLASSIFIER_CLASSES * sizeof(float));
    float *feat = malloc((size_t)n * GAN_CLASSIFIER_FEATURES * sizeof(float));
    int rc = -1;
    if (!real || !probs || !feat)
        gan_fail(err, "classifier", "out of memory preparing the classifier's reference");
    else if (gan_classifier_forward(be, c, real, n, probs, feat, err) == 0 &&
             (out->reference =
                  gan_sample_reference_new(probs, feat, n, GAN_CLASSIFIER_FEATURES, err)))
        rc = 0;
    free(real);
    free(probs);
    free(feat);
    if (rc == 0)
        out->classifier = c;
    return rc;
}

void gan_eval_classifier_release(gan_eval_classifier *ec)
{
    gan_sample_reference_free(ec->reference);
    memset(ec, 0, sizeof *ec);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

int gan_evaluate_samples(gk_backend *be, const float *images, int n, const gan_dataset *train_ds,
                         const gan_dataset *test_ds, const gan_split *split, bool parzen,
                         const gan_eval_classifier *ec, gan_evaluation *out, gan_error *err)
{
    memset(out, 0, sizeof *out);
    if (!parzen && !ec)
        return gan_fail(err, "classifier",
                        "nothing to measure: no Parzen estimate asked for and no classifier");
    struct timespec t0;
    if (parzen) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (gan_evaluate_images(be, images, n, train_ds, test_ds, split, &out->parzen, err) != 0)
            return -1;
        out->has_parzen = true;
        out->parzen_seconds = seconds_since(&t0);
    }
    if (ec) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        float *probs = malloc((size_t)n * GAN_CLASSIFIER_CLASSES * sizeof(float));
        float *feat = malloc((size_t)n * GAN_CLASSIFIER_FEATURES * sizeof(float));
        int rc = -1;
        if (!probs || !feat)
            gan_fail(err, "samples", "out of memory for the classifier's metrics");
        else if (gan_classifier_forward(be, ec->classifier, images, n, probs, feat, err) == 0)
            rc = gan_sample_metrics_compute(ec->reference, probs, feat, n, GAN_CLASSIFIER_FEATURES,
                                            &out->metrics, err);
        free(probs);
        free(feat);
        if (rc != 0)
            return -1;
        out->has_metrics = true;
        out->metrics_seconds = seconds_since(&t0);
    }
    return 0;
}

int gan_evaluate_generator(gk_backend *be, const gan_config *cfg, const float *g_params, int n,
                           uint64_t seed, const gan_dataset *train_ds, const gan_dataset *test_ds,
                           const gan_split *split, bool parzen, const gan_eval_classifier *ec,
                           gan_evaluation *out, gan_error *err)
{
    if (n < 1 || n > 100000)
        return gan_fail(err, "samples", "samples must be an integer in 1..100000, got %d", n);
    float *gen = malloc((size_t)n * GAN_IMAGE_PIXELS * sizeof(float));
    if (!gen)
        return gan_fail(err, "samples", "out of memory for the evaluation");
    int rc = gan_generate_many(cfg, g_params, n, seed, GK_PURPOSE_EVAL, gen, err);
    if (rc == 0)
        rc = gan_evaluate_samples(be, gen, n, train_ds, test_ds, split, parzen, ec, out, err);
    free(gen);
    return rc;
}
