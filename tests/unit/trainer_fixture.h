/*
 * tests/unit/trainer_fixture.h — what the trainer's tests share (test_trainer.c,
 * test_graph_replay.c): the CPU backend, the bundled digits and slices of them, a
 * tiny config, temporary checkpoints and running a trainer to a position.
 * Each test program is one translation unit, so the statics are its own.
 */
#ifndef GAND_TESTS_TRAINER_FIXTURE_H
#define GAND_TESTS_TRAINER_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gan/config.h"
#include "gan/trainer.h"
#include "kernels/backend.h"
#include "testutil.h"

static gk_backend *be;
static gan_dataset digits; /* the bundled data set */

static int load_digits(void **state)
{
    (void)state;
    if (test_load_digits(&digits) != 0)
        return -1;
    char why[256];
    be = gk_backend_open("cpu", why, sizeof why);
    return be ? 0 : -1;
}

static int free_digits(void **state)
{
    (void)state;
    gan_dataset_free(&digits);
    gk_backend_close(be);
    return 0;
}

/* A data set of the first n bundled digits (shares the pixel memory). */
static inline gan_dataset prefix(int n)
{
    gan_dataset d = digits;
    d.count = n;
    d.labels = NULL;
    return d;
}

static inline gan_config tiny_config(void)
{
    gan_config c;
    gan_config_preset(&c, "seed", NULL);
    c.latent_dim = 6;
    c.g_hidden = 10;
    c.d_units = 5;
    c.d_pieces = 3;
    c.batch_size = 8;
    c.seed = 7;
    return c;
}

enum { CKPT_PATH_MAX = 64 };

/* A fresh empty file under /tmp for a checkpoint (the caller unlinks it). */
static inline void temp_checkpoint_path(char path[CKPT_PATH_MAX])
{
    snprintf(path, CKPT_PATH_MAX, "/tmp/gand-test-ckpt-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

static inline void run_until(gan_trainer *t, int epoch, int iteration)
{
    gan_error err;
    gan_epoch_metrics m;
    while (gan_trainer_epoch(t) < epoch ||
           (gan_trainer_epoch(t) == epoch && gan_trainer_iteration(t) < iteration)) {
        if (gan_trainer_epoch_complete(t))
            assert_int_equal(gan_trainer_finish_epoch(t, &m, &err), 0);
        else
            assert_int_equal(gan_trainer_step(t, &err), 0);
    }
}

#endif
