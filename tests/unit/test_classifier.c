/*
 * tests/unit/test_classifier.c — the digit classifier (gan/classifier.h) on
 * every backend built in: trained on 2,000 of the bundled 10,000 digits for
 * two epochs (a second or two), it must clearly beat chance on 2,000 digits
 * it never saw; reruns with the same seed give the same bits and another
 * seed other bits; a saved file loads back bit for bit; the forward pass
 * gives probabilities and ReLU features, and agrees with the accuracy
 * helper; bad input is refused naming what was wrong.
 *
 * The committed classifiers' accuracies (≥ 98 % on MNIST's test digits,
 * ≥ 97 % on mnist-10k's holdout) take minutes to train and are checked by
 * data/make-classifiers.sh, not here.
 */
#include "ops_fixture.h"
#include "testutil.h"

#include <unistd.h>

#include "gan/classifier.h"
#include "gan/evaluate.h"
#include "gan/safetensors.h"
#include "gan/sample_metrics.h"

enum { TRAIN = 2000, HELD_OUT = 2000, EPOCHS = 2 };

static gan_dataset digits;   /* the bundled 10,000, with labels */
static gan_classifier first; /* trained by test_training, reused by the later tests */

static gan_classifier_options options(uint64_t seed)
{
    gan_classifier_options o;
    gan_classifier_options_default(&o);
    o.epochs = EPOCHS;
    o.seed = seed;
    o.batch_size = 50;
    o.lr_final = o.lr; /* 80 steps: no time to decay (the augmentation stays on) */
    return o;
}

static void train(uint64_t seed, gan_classifier *out)
{
    gan_classifier_options o = options(seed);
    gan_error err = {{0}, {0}};
    if (gan_classifier_train(be, digits.pixels, digits.labels, TRAIN, &o, out, &err) != 0) {
        print_error("training on %s: %s\n", be->ops->name, err.message);
        fail();
    }
}

static const uint8_t *held_out_pixels(void)
{
    return digits.pixels + (size_t)(digits.count - HELD_OUT) * GAN_IMAGE_PIXELS;
}

static void test_training(void **state)
{
    (void)state;
    gan_classifier_free(&first);
    train(7, &first);
    assert_int_equal(first.train_count, TRAIN);
    assert_int_equal(first.epochs, EPOCHS);
    assert_true(first.seed == 7);
    assert_true(first.accuracy < 0); /* not measured yet: the caller's to fill */
    double acc;
    gan_error err;
    assert_int_equal(gan_classifier_accuracy(be, &first, held_out_pixels(),
                                             digits.labels + digits.count - HELD_OUT, HELD_OUT,
                                             &acc, &err),
                     0);
    printf("classifier on %s: %d epochs on %d digits, %.2f %% of %d held-out digits right\n",
           be->ops->name, EPOCHS, TRAIN, 100 * acc, HELD_OUT);
    assert_true(acc > 0.7); /* chance is 0.1 */
}

static void test_deterministic(void **state)
{
    (void)state;
    const size_t bytes = gan_classifier_param_count() * sizeof(float);
    gan_classifier again, other;
    train(7, &again);
    if (memcmp(again.params, first.params, bytes) != 0) {
        size_t i = 0;
        while (again.params[i] == first.params[i])
            i++;
        print_error("two runs with seed 7 on %s differ first at parameter %zu: %.9g vs %.9g\n",
                    be->ops->name, i, again.params[i], first.params[i]);
        fail();
    }
    train(8, &other);
    assert_true(memcmp(other.params, first.params, bytes) != 0);
    /* every tensor is touched by the seed, not just the ones initialised first */
    for (int i = 0; i < GAN_CLASSIFIER_TENSORS; i++) {
        gan_classifier_tensor t = gan_classifier_tensor_info(i);
        size_t n = (size_t)t.rows * (size_t)(t.cols ? t.cols : 1);
        assert_true(memcmp(other.params + t.offset, first.params + t.offset, n * 4) != 0);
    }
    gan_classifier_free(&again);
    gan_classifier_free(&other);
}

static void test_save_load(void **state)
{
    (void)state;
    char path[] = "/tmp/gand-test-classifier-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    gan_classifier c = first; /* shares first's params: not freed here */
    snprintf(c.dataset, sizeof c.dataset, "mnist-10k-images-idx3-ubyte.gz images 0..%d", TRAIN - 1);
    c.accuracy = 0.1 + 0.2; /* a value whose decimal form is long */
    snprintf(c.accuracy_on, sizeof c.accuracy_on, "the last %d", HELD_OUT);
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_classifier_save(&c, path, &err), 0);
    gan_classifier back;
    assert_int_equal(gan_classifier_load(path, &back, &err), 0);
    assert_memory_equal(back.params, c.params, gan_classifier_param_count() * sizeof(float));
    assert_string_equal(back.dataset, c.dataset);
    assert_string_equal(back.training, c.training);
    assert_string_equal(back.accuracy_on, c.accuracy_on);
    assert_int_equal(back.train_count, c.train_count);
    assert_int_equal(back.epochs, c.epochs);
    assert_true(back.seed == c.seed);
    assert_true(back.accuracy == c.accuracy);
    gan_classifier_free(&back);

    /* a safetensors file of the right format but a wrong shape is refused, naming the tensor */
    gan_st_tensor t[GAN_CLASSIFIER_TENSORS];
    memset(t, 0, sizeof t);
    for (int i = 0; i < GAN_CLASSIFIER_TENSORS; i++) {
        gan_classifier_tensor ti = gan_classifier_tensor_info(i);
        snprintf(t[i].name, sizeof t[i].name, "%s", ti.name);
        t[i].dtype = GAN_F32;
        t[i].ndim = 1;
        t[i].shape[0] = (int64_t)ti.rows * (ti.cols ? ti.cols : 1);
        t[i].data = c.params + ti.offset;
        t[i].nbytes = (size_t)t[i].shape[0] * sizeof(float);
    }
    gan_st_metadata meta[] = {{"format", "gand-classifier-1"}};
    assert_int_equal(gan_st_write(path, t, GAN_CLASSIFIER_TENSORS, meta, 1, &err), 0);
    assert_int_equal(gan_classifier_load(path, &back, &err), -1);
    assert_non_null(strstr(err.message, "classifier.linear_1.weight"));
    assert_null(back.params);
    /* another file format is refused */
    meta[0].value = "gand-checkpoint-1";
    assert_int_equal(gan_st_write(path, t, GAN_CLASSIFIER_TENSORS, meta, 1, &err), 0);
    assert_int_equal(gan_classifier_load(path, &back, &err), -1);
    assert_non_null(strstr(err.message, "not a gand classifier"));
    unlink(path);
    assert_int_equal(gan_classifier_load(path, &back, &err), -1);
}

static void test_forward(void **state)
{
    (void)state;
    const int n = 1500; /* more than one of the forward pass's batches */
    float *images = gan_dataset_rows_float(&digits, digits.count - n, digits.count);
    float *probs = malloc((size_t)n * GAN_CLASSIFIER_CLASSES * sizeof(float));
    float *features = malloc((size_t)n * GAN_CLASSIFIER_FEATURES * sizeof(float));
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_classifier_forward(be, &first, images, n, probs, features, &err), 0);
    const uint8_t *labels = digits.labels + digits.count - n;
    int right = 0, active = 0;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * GAN_CLASSIFIER_CLASSES;
        double s = 0;
        int arg = 0;
        for (int k = 0; k < GAN_CLASSIFIER_CLASSES; k++) {
            assert_true(p[k] >= 0.0f && p[k] <= 1.0f);
            s += p[k];
            if (p[k] > p[arg])
                arg = k;
        }
        assert_true(fabs(s - 1.0) < 1e-5);
        right += arg == labels[i];
        for (int f = 0; f < GAN_CLASSIFIER_FEATURES; f++) {
            float v = features[(size_t)i * GAN_CLASSIFIER_FEATURES + f];
            assert_true(v >= 0.0f && isfinite(v)); /* after a ReLU, without dropout */
            active += v > 0.0f;
        }
    }
    assert_true(active > n * GAN_CLASSIFIER_FEATURES / 10); /* the features are not dead */
    double acc;
    assert_int_equal(gan_classifier_accuracy(
                         be, &first, digits.pixels + (size_t)(digits.count - n) * GAN_IMAGE_PIXELS,
                         labels, n, &acc, &err),
                     0);
    assert_true(fabs(acc - (double)right / n) <= 1.0 / n); /* a tie in probs at most */
    /* each output is optional, and a second call gives the same bits */
    float *again = malloc((size_t)n * GAN_CLASSIFIER_FEATURES * sizeof(float));
    assert_int_equal(gan_classifier_forward(be, &first, images, n, NULL, again, &err), 0);
    assert_memory_equal(again, features, (size_t)n * GAN_CLASSIFIER_FEATURES * sizeof(float));
    assert_int_equal(gan_classifier_forward(be, &first, images, 0, NULL, NULL, &err), 0);
    free(images);
    free(probs);
    free(features);
    free(again);
}

/*
 * The committed mnist-10k classifier's class histogram of the held-out digits
 * (what modes and KL compare samples with) matches their labels' histogram:
 * every class within 3 % of the images.
 */
static void test_committed_histogram_matches_labels(void **state)
{
    (void)state;
    char path[4096];
    test_data_path("mnist-10k-classifier.safetensors", path, sizeof path);
    gan_classifier c;
    gan_error err = {{0}, {0}};
    assert_int_equal(gan_classifier_load(path, &c, &err), 0);
    const int n = HELD_OUT;
    float *images = gan_dataset_rows_float(&digits, digits.count - n, digits.count);
    float *probs = malloc((size_t)n * GAN_CLASSIFIER_CLASSES * sizeof(float));
    assert_int_equal(gan_classifier_forward(be, &c, images, n, probs, NULL, &err), 0);
    int predicted[GAN_SAMPLE_CLASSES], truth[GAN_SAMPLE_CLASSES] = {0};
    double top;
    assert_int_equal(gan_class_histogram(probs, n, predicted, &top, &err), 0);
    for (int i = 0; i < n; i++)
        truth[digits.labels[digits.count - n + i]]++;
    for (int k = 0; k < GAN_SAMPLE_CLASSES; k++)
        if (abs(predicted[k] - truth[k]) > n * 3 / 100) {
            print_error("class %d: %d predicted, %d labelled\n", k, predicted[k], truth[k]);
            fail();
        }
    assert_int_equal(gan_class_modes(predicted, truth), 10);
    assert_true(top > 0.9);
    free(images);
    free(probs);
    gan_classifier_free(&c);
}

#define EXPECT_FIELD(call, f)                                                                      \
    do {                                                                                           \
        gan_error e_ = {{0}, {0}};                                                                 \
        gan_error *err = &e_;                                                                      \
        assert_int_equal((call), -1);                                                              \
        if (strcmp(e_.field, (f)) != 0) {                                                          \
            print_error("%s: field '%s' (%s), want '%s'\n", #call, e_.field, e_.message, (f));     \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static void test_bad_input(void **state)
{
    (void)state;
    gan_classifier c;
    gan_classifier_options o = options(1);
    uint8_t labels[4] = {1, 2, 10, 3};
    uint8_t pixels[4 * GAN_IMAGE_PIXELS];
    memset(pixels, 0, sizeof pixels);
    EXPECT_FIELD(gan_classifier_train(be, pixels, labels, 4, &o, &c, err), "labels");
    labels[2] = 9;
    EXPECT_FIELD(gan_classifier_train(be, pixels, labels, 0, &o, &c, err), "images");
    EXPECT_FIELD(gan_classifier_train(NULL, pixels, labels, 4, &o, &c, err), "backend");
    o.epochs = 0;
    EXPECT_FIELD(gan_classifier_train(be, pixels, labels, 4, &o, &c, err), "epochs");
    o = options(1);
    o.dropout = 1.0;
    EXPECT_FIELD(gan_classifier_train(be, pixels, labels, 4, &o, &c, err), "dropout");
    o = options(1);
    o.lr_final = 2 * o.lr;
    EXPECT_FIELD(gan_classifier_train(be, pixels, labels, 4, &o, &c, err), "lr_final");
    o = options(1);
    o.rotate = 90;
    EXPECT_FIELD(gan_classifier_train(be, pixels, labels, 4, &o, &c, err), "augment");
    labels[0] = 200;
    double acc;
    EXPECT_FIELD(gan_classifier_accuracy(be, &first, pixels, labels, 4, &acc, err), "labels");
    gan_classifier none = {0};
    EXPECT_FIELD(gan_classifier_forward(be, &none, NULL, 0, NULL, NULL, err), "classifier");

    /* a backend that already failed is refused, and not cleared */
    char saved[sizeof be->error];
    memcpy(saved, be->error, sizeof saved);
    snprintf(be->error, sizeof be->error, "test.c:1: injected failure");
    float img[GAN_IMAGE_PIXELS] = {0};
    EXPECT_FIELD(gan_classifier_forward(be, &first, img, 1, NULL, NULL, err), "backend");
    assert_string_equal(be->error, "test.c:1: injected failure");
    memcpy(be->error, saved, sizeof saved);
}

int main(void)
{
    if (test_load_digits(&digits) != 0)
        return 1;
    char path[4096];
    test_data_path("mnist-10k-labels-idx1-ubyte.gz", path, sizeof path);
    gan_error err;
    if (gan_idx_load_labels(path, &digits, &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_training),  cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_save_load), cmocka_unit_test(test_forward),
        cmocka_unit_test(test_bad_input), cmocka_unit_test(test_committed_histogram_matches_labels),
    };
    int failed = run_on_each_backend("classifier", tests, sizeof tests / sizeof tests[0]);
    gan_classifier_free(&first);
    gan_dataset_free(&digits);
    return failed ? 1 : 0;
}
