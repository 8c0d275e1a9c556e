/*
 * cmd/classifier.c — `gand classifier train|evaluate`: the digit classifier
 * evaluations look through (gan/classifier.h), trained and checked from IDX
 * files.
 *
 * Like `gand train`, progress is one JSON object per line on stdout (one per
 * epoch, then a summary), messages on stderr. The files are named on the
 * command line rather than by bundled data set, because a classifier is made
 * once (data/make-classifiers.sh) and committed, and any labelled IDX pair
 * can be checked against one. Exit status: 0 done, 1 the run failed (the
 * backend, writing the file), 2 a usage or input error (an option, a missing
 * or malformed file, labels that do not fit the images).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/commands.h"
#include "gan/classifier.h"
#include "gan/idx.h"
#include "kernels/backend.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: gand classifier train --images IDX --labels IDX1 --out FILE\n"
               "                             [--holdout N] [--test-images IDX --test-labels IDX1]\n"
               "                             [--epochs N] [--seed S] [--batch-size N]\n"
               "                             [--lr X] [--lr-final X] [--dropout P]\n"
               "                             [--shift PIXELS] [--rotate DEGREES] [--scale F]\n"
               "                             [--backend auto|cpu|cuda]\n"
               "       gand classifier evaluate --classifier FILE --images IDX --labels IDX1\n"
               "                                [--backend auto|cpu|cuda]\n"
               "\n"
               "train: trains the digit classifier (an MLP 784-512-128-10 whose 128-wide layer is\n"
               "the feature space of sample evaluations) on the images of IDX (IDX3, plain or\n"
               "gzip) with the labels of IDX1, except the last N (--holdout, default 0), and\n"
               "writes it to FILE (safetensors). It is then scored on the held-out images and\n"
               "on the test files when given; the saved accuracy is the test files' if any,\n"
               "else the held-out images'. Defaults: 30 epochs, seed 1, batch 100, Adam with\n"
               "lr 0.001 decaying to 0.0001 at the last step, dropout 0.2 after each hidden\n"
               "layer, each image moved by up to 2 pixels, turned by up to 10 degrees and\n"
               "scaled by up to 0.1 each epoch (0 switches each off), backend auto.\n"
               "evaluate: prints the accuracy of the classifier FILE on IDX with labels IDX1\n"
               "(--last N: on its last N images only, e.g. the ones held out in training), and\n"
               "the accuracy saved with FILE.\n");
}

/* A number option in [lo, hi] (whole string); prints what was wrong and returns false. */
static bool option_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "gand classifier: %s must be a number in %g..%g, got '%s'\n", opt, lo, hi,
                s);
        return false;
    }
    *out = v;
    return true;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Images and their labels; prints "gand classifier: …" (naming the file) and returns 2. */
static int load_labelled(const char *images, const char *labels, gan_dataset *ds)
{
    gan_error err = {{0}, {0}};
    if (gan_idx_load_images(images, ds, &err) != 0) {
        fprintf(stderr, "gand classifier: %s\n", err.message);
        return 2;
    }
    if (gan_idx_load_labels(labels, ds, &err) != 0) {
        fprintf(stderr, "gand classifier: %s\n", err.message);
        gan_dataset_free(ds);
        return 2;
    }
    return 0;
}

static void print_epoch(const gan_classifier_epoch *e, void *user)
{
    (void)user;
    printf("{\"epoch\":%d,\"loss\":%.5f,\"accuracy\":%.5f,\"seconds\":%.2f}\n", e->epoch, e->loss,
           e->accuracy, e->seconds);
    fflush(stdout);
}

static gk_backend *open_backend(const char *name)
{
    char why[512];
    gk_backend *be = gk_backend_open(name, why, sizeof why);
    if (!be)
        fprintf(stderr, "gand classifier: %s\n", why);
    else
        fprintf(stderr, "gand classifier: %s (%s)\n", why, be->device);
    return be;
}

static int cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {{"images", required_argument, NULL, 'i'},
                                         {"labels", required_argument, NULL, 'l'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"holdout", required_argument, NULL, 'H'},
                                         {"test-images", required_argument, NULL, 'I'},
                                         {"test-labels", required_argument, NULL, 'L'},
                                         {"epochs", required_argument, NULL, 'e'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"batch-size", required_argument, NULL, 'b'},
                                         {"lr", required_argument, NULL, 'r'},
                                         {"lr-final", required_argument, NULL, 'y'},
                                         {"dropout", required_argument, NULL, 'd'},
                                         {"shift", required_argument, NULL, 'S'},
                                         {"rotate", required_argument, NULL, 'R'},
                                         {"scale", required_argument, NULL, 'Z'},
                                         {"backend", required_argument, NULL, 'B'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *images = NULL, *labels = NULL, *out = NULL, *test_images = NULL,
               *test_labels = NULL, *backend = "auto";
    gan_classifier_options o;
    gan_classifier_options_default(&o);
    long holdout = 0, v;
    int c;
    bool bad = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            images = optarg;
            break;
        case 'l':
            labels = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'I':
            test_images = optarg;
            break;
        case 'L':
            test_labels = optarg;
            break;
        case 'B':
            backend = optarg;
            break;
        case 'H':
            bad |= !gand_option_long("classifier", "--holdout", optarg, 0, INT_MAX, &holdout);
            break;
        case 'e':
            bad |= !gand_option_long("classifier", "--epochs", optarg, 1, 10000, &v);
            o.epochs = (int)v;
            break;
        case 's':
            bad |= !gand_option_long("classifier", "--seed", optarg, 0, LONG_MAX, &v);
            o.seed = (uint64_t)v;
            break;
        case 'b':
            bad |= !gand_option_long("classifier", "--batch-size", optarg, 1, 65536, &v);
            o.batch_size = (int)v;
            break;
        case 'S':
            bad |= !option_double("--shift", optarg, 0, 4, &o.shift);
            break;
        case 'R':
            bad |= !option_double("--rotate", optarg, 0, 45, &o.rotate);
            break;
        case 'Z':
            bad |= !option_double("--scale", optarg, 0, 0.5, &o.scale);
            break;
        case 'r':
            bad |= !option_double("--lr", optarg, 1e-6, 1, &o.lr);
            break;
        case 'y':
            bad |= !option_double("--lr-final", optarg, 1e-9, 1, &o.lr_final);
            break;
        case 'd':
            bad |= !option_double("--dropout", optarg, 0, 0.95, &o.dropout);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (bad)
        return 2;
    if (optind < argc) {
        fprintf(stderr, "gand classifier train: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!images || !labels || !out) {
        fprintf(stderr, "gand classifier train: --images, --labels and --out are required\n");
        usage(stderr);
        return 2;
    }
    if (!test_images != !test_labels) {
        fprintf(stderr, "gand classifier train: give --test-images and --test-labels together\n");
        return 2;
    }

    gan_dataset train, test;
    memset(&test, 0, sizeof test);
    if (load_labelled(images, labels, &train) != 0)
        return 2;
    if (holdout >= train.count) {
        fprintf(stderr,
                "gand classifier train: --holdout must be an integer in 0..%d (%s has %d "
                "images), got %ld\n",
                train.count - 1, images, train.count, holdout);
        gan_dataset_free(&train);
        return 2;
    }
    if (test_images && load_labelled(test_images, test_labels, &test) != 0) {
        gan_dataset_free(&train);
        return 2;
    }
    gk_backend *be = open_backend(backend);
    if (!be) {
        gan_dataset_free(&train);
        gan_dataset_free(&test);
        return 2;
    }
    const int n = train.count - (int)holdout;
    fprintf(stderr, "gand classifier train: trains on images 0..%d of %s%s\n", n - 1, images,
            holdout ? ", the rest held out" : "");
    o.on_epoch = print_epoch;
    gan_error err = {{0}, {0}};
    gan_classifier clf;
    const double t0 = now_seconds();
    int status = 0;
    if (gan_classifier_train(be, train.pixels, train.labels, n, &o, &clf, &err) != 0) {
        fprintf(stderr, "gand classifier train: %s\n", err.message);
        status = 1;
        goto done;
    }
    const double train_seconds = now_seconds() - t0;
    snprintf(clf.dataset, sizeof clf.dataset, "%s images 0..%d", base_name(images), n - 1);
    double holdout_acc = -1, test_acc = -1;
    if (holdout > 0 &&
        gan_classifier_accuracy(be, &clf, train.pixels + (size_t)n * GAN_IMAGE_PIXELS,
                                train.labels + n, (int)holdout, &holdout_acc, &err) != 0) {
        fprintf(stderr, "gand classifier train: scoring the held-out images: %s\n", err.message);
        status = 1;
        goto done;
    }
    if (test_images && gan_classifier_accuracy(be, &clf, test.pixels, test.labels, test.count,
                                               &test_acc, &err) != 0) {
        fprintf(stderr, "gand classifier train: scoring %s: %s\n", test_images, err.message);
        status = 1;
        goto done;
    }
    if (test_images) {
        clf.accuracy = test_acc;
        snprintf(clf.accuracy_on, sizeof clf.accuracy_on, "%s images 0..%d", base_name(test_images),
                 test.count - 1);
    } else if (holdout > 0) {
        clf.accuracy = holdout_acc;
        snprintf(clf.accuracy_on, sizeof clf.accuracy_on, "%s images %d..%d", base_name(images), n,
                 train.count - 1);
    }
    if (gan_classifier_save(&clf, out, &err) != 0) {
        fprintf(stderr, "gand classifier train: %s\n", err.message);
        status = 1;
        goto done;
    }
    printf("{\"train_images\":%d,\"epochs\":%d,\"seed\":%llu,\"train_seconds\":%.1f,"
           "\"holdout_images\":%ld,",
           n, o.epochs, (unsigned long long)o.seed, train_seconds, holdout);
    if (holdout_acc >= 0)
        printf("\"holdout_accuracy\":%.4f,", holdout_acc);
    if (test_acc >= 0)
        printf("\"test_images\":%d,\"test_accuracy\":%.4f,", test.count, test_acc);
    printf("\"backend\":\"%s\",\"out\":\"%s\"}\n", be->ops->name, out);
done:
    gan_classifier_free(&clf);
    gk_backend_close(be);
    gan_dataset_free(&train);
    gan_dataset_free(&test);
    return status;
}

static int cmd_evaluate(int argc, char **argv)
{
    static const struct option opts[] = {{"classifier", required_argument, NULL, 'c'},
                                         {"images", required_argument, NULL, 'i'},
                                         {"labels", required_argument, NULL, 'l'},
                                         {"backend", required_argument, NULL, 'B'},
                                         {"last", required_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL, *images = NULL, *labels = NULL, *backend = "auto";
    long last = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'i':
            images = optarg;
            break;
        case 'l':
            labels = optarg;
            break;
        case 'B':
            backend = optarg;
            break;
        case 'n':
            if (!gand_option_long("classifier", "--last", optarg, 1, INT_MAX, &last))
                return 2;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gand classifier evaluate: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!path || !images || !labels) {
        fprintf(stderr,
                "gand classifier evaluate: --classifier, --images and --labels are required\n");
        usage(stderr);
        return 2;
    }
    gan_error err = {{0}, {0}};
    gan_classifier clf;
    if (gan_classifier_load(path, &clf, &err) != 0) {
        fprintf(stderr, "gand classifier evaluate: %s\n", err.message);
        return 2;
    }
    gan_dataset ds;
    if (load_labelled(images, labels, &ds) != 0) {
        gan_classifier_free(&clf);
        return 2;
    }
    if (last > ds.count) {
        fprintf(stderr,
                "gand classifier evaluate: --last must be at most the %d images of %s, "
                "got %ld\n",
                ds.count, images, last);
        gan_dataset_free(&ds);
        gan_classifier_free(&clf);
        return 2;
    }
    const int first = last ? ds.count - (int)last : 0, n = ds.count - first;
    gk_backend *be = open_backend(backend);
    int status = 2;
    if (be) {
        const double t0 = now_seconds();
        double acc;
        if (gan_classifier_accuracy(be, &clf, ds.pixels + (size_t)first * GAN_IMAGE_PIXELS,
                                    ds.labels + first, n, &acc, &err) != 0) {
            fprintf(stderr, "gand classifier evaluate: %s\n", err.message);
            status = 1;
        } else {
            printf("{\"accuracy\":%.4f,\"images\":[%d,%d],\"classifier\":\"%s\","
                   "\"trained_on\":\"%s\",\"saved_accuracy\":%.4f,\"saved_accuracy_on\":\"%s\","
                   "\"seconds\":%.2f}\n",
                   acc, first, ds.count, path, clf.dataset, clf.accuracy, clf.accuracy_on,
                   now_seconds() - t0);
            status = 0;
        }
        gk_backend_close(be);
    }
    gan_dataset_free(&ds);
    gan_classifier_free(&clf);
    return status;
}

int gand_cmd_classifier(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    if (strcmp(argv[1], "evaluate") == 0)
        return cmd_evaluate(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "gand classifier: unknown subcommand '%s'; expected train or evaluate\n",
            argv[1]);
    usage(stderr);
    return 2;
}
