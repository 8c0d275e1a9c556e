/*
 * cmd/evaluate.c — `gand evaluate`: the Parzen-window estimate of a
 * checkpoint's generator on a data set's held-out images, and the digit
 * classifier's metrics of the same samples, as one JSON line.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cmd/commands.h"
#include "daemon/paths.h"
#include "gan/checkpoint.h"
#include "gan/evaluate.h"
#include "gan/trainer.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: gand evaluate (--checkpoint FILE | --training-digits)\n"
               "                     [--dataset NAME | --data IDX_PATH] [--test IDX_PATH]\n"
               "                     [--holdout N] [--samples N] [--seed S]\n"
               "                     [--device auto|cpu|cuda] [--classifier FILE]\n"
               "\n"
               "Generates N images (default 10000) from the checkpoint's generator and prints\n"
               "the Parzen-window log-likelihood of the data set's test images, sigma chosen\n"
               "on its validation images (Goodfellow et al. 2014). NAME is a bundled data set\n"
               "(default: mnist, where sigma is chosen on training digits 50,000..59,999 and\n"
               "MNIST's 10,000 test digits are scored); --data, --test and --holdout as for\n"
               "gand train. --training-digits takes the data set's first N training images\n"
               "as the samples instead: the figure a generator of those digits would get.\n"
               "With a digit classifier (FILE, default: the bundled data set's) \"metrics\"\n"
               "holds fid, precision, recall, modes, kl, mean_top_prob and histogram of the\n"
               "same samples against the test images, as the daemon reports them.\n");
}

int gand_cmd_evaluate(int argc, char **argv)
{
    static const struct option opts[] = {{"checkpoint", required_argument, NULL, 'c'},
                                         {"data", required_argument, NULL, 'd'},
                                         {"holdout", required_argument, NULL, 'H'},
                                         {"dataset", required_argument, NULL, 'n'},
                                         {"test", required_argument, NULL, 't'},
                                         {"samples", required_argument, NULL, 's'},
                                         {"seed", required_argument, NULL, 'S'},
                                         {"device", required_argument, NULL, 'D'},
                                         {"training-digits", no_argument, NULL, 'r'},
                                         {"classifier", required_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *ckpt = NULL, *data_path = NULL, *device = "auto", *dataset = NULL,
               *test_path = NULL, *classifier_path = NULL;
    long holdout = -1, samples = 10000, seed = 0;
    int c, bad = 0;
    bool real = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            ckpt = optarg;
            break;
        case 'd':
            data_path = optarg;
            break;
        case 'n':
            dataset = optarg;
            break;
        case 't':
            test_path = optarg;
            break;
        case 'H':
            bad |= !gand_option_long("evaluate", "--holdout", optarg, 0, 100000000, &holdout);
            break;
        case 's':
            bad |= !gand_option_long("evaluate", "--samples", optarg, 1, 100000, &samples);
            break;
        case 'S':
            bad |= !gand_option_long("evaluate", "--seed", optarg, 0, LONG_MAX, &seed);
            break;
        case 'D':
            device = optarg;
            break;
        case 'r':
            real = true;
            break;
        case 'C':
            classifier_path = optarg;
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
    if (!ckpt == !real || optind < argc) {
        usage(stderr);
        return 2;
    }
    gan_error err = {{0}, {0}};
    gan_config cfg;
    float *g = NULL;
    int epoch = -1;
    if (ckpt && (gan_checkpoint_read_config(ckpt, &cfg, &err) != 0 ||
                 gan_checkpoint_read_generator(ckpt, &cfg, &g, &epoch, &err) != 0)) {
        fprintf(stderr, "gand evaluate: %s\n", err.message);
        return 2;
    }
    gand_cli_data data;
    if (gand_cli_data_load("evaluate", dataset, data_path, test_path, holdout, &data) != 0) {
        free(g);
        return 2;
    }
    if (real && samples > data.split.train_count) {
        fprintf(stderr,
                "gand evaluate: --samples must be at most the %d training images with "
                "--training-digits, got %ld\n",
                data.split.train_count, samples);
        gand_cli_data_free(&data);
        return 2;
    }
    char why[512];
    gk_backend *be = gk_backend_open(device, why, sizeof why);
    if (!be) {
        fprintf(stderr, "gand evaluate: %s\n", why);
        gand_cli_data_free(&data);
        free(g);
        return 2;
    }
    if (gand_cli_data_judge("evaluate", &data, dataset, data_path, classifier_path, be) != 0) {
        gk_backend_close(be);
        gand_cli_data_free(&data);
        free(g);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gan_evaluation ev;
    const gan_parzen_result *pr = &ev.parzen;
    const gan_split split = data.split;
    const gan_dataset *test = data.has_test ? &data.test : NULL;
    const gan_eval_classifier *judge = data.has_classifier ? &data.judge : NULL;
    int rc;
    if (real) {
        float *digits = gan_dataset_rows_float(&data.train, 0, (int)samples);
        rc = digits ? gan_evaluate_samples(be, digits, (int)samples, &data.train, test, &split,
                                           true, judge, &ev, &err)
                    : gan_fail(&err, "samples", "out of memory");
        free(digits);
    } else {
        rc = gan_evaluate_generator(be, &cfg, g, (int)samples, (uint64_t)seed, &data.train, test,
                                    &split, true, judge, &ev, &err);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    char *metrics = NULL;
    if (rc == 0 && ev.has_metrics) {
        cJSON *o = cJSON_CreateObject();
        if (o && gan_sample_metrics_add_cjson(&ev.metrics, o) == 0)
            metrics = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!metrics)
            rc = gan_fail(&err, "", "out of memory");
    }
    if (rc == 0) {
        char from[32];
        if (real)
            snprintf(from, sizeof from, "null");
        else
            snprintf(from, sizeof from, "%d", epoch);
        printf("{\"parzen_ll\":%.3f,\"stderr\":%.3f,\"sigma\":%.4f,\"samples\":%d,\"epoch\":%s,"
               "\"split\":{\"validation\":[%d,%d],\"test\":[%d,%d]},\"validation_data\":"
               "\"%s\",\"data\":\"%s\",\"samples_from\":\"%s\",\"seconds\":%.2f,"
               "\"metrics\":%s}\n",
               pr->mean_ll, pr->stderr_ll, pr->sigma, pr->samples, from, split.valid_begin,
               split.valid_end, split.test_begin, split.test_end,
               split.valid_in_test ? data.test_path : data.train_path,
               split.test_in_test ? data.test_path : data.train_path,
               real ? "training_digits" : "checkpoint",
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9,
               metrics ? metrics : "null");
    } else {
        fprintf(stderr, "gand evaluate: %s\n", err.message);
    }
    cJSON_free(metrics);
    gk_backend_close(be);
    gand_cli_data_free(&data);
    free(g);
    return rc == 0 ? 0 : 1;
}
