/* cmd/commands.h — the subcommands of the one `gand` binary. */
#ifndef GAND_CMD_COMMANDS_H
#define GAND_CMD_COMMANDS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "gan/evaluate.h"
#include "gan/trainer.h"

/* cmd/serve.c, cmd/train.c, cmd/evaluate.c, cmd/classifier.c */
int gand_cmd_serve(int argc, char **argv);
int gand_cmd_train(int argc, char **argv);
int gand_cmd_evaluate(int argc, char **argv);
int gand_cmd_classifier(int argc, char **argv);
/* `gand train --job RUN_DIR` (cmd/train_job.c): a Slurm executor's run, inside its job. */
int gand_train_job(const char *dir);

/*
 * An integer command-line option in lo..hi (whole string, base 10). On a bad
 * value prints "gand CMD: OPT must be an integer in lo..hi, got 'S'" and
 * returns false.
 */
bool gand_option_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);

/*
 * The data of a command that trains or evaluates (cmd/cli_data.c): the
 * training file, the test file if any, and the split (gan_split_make).
 */
typedef struct gand_cli_data {
    char train_path[PATH_MAX], test_path[PATH_MAX];
    gan_dataset train, test;
    bool has_test;
    gan_split split;
    char classifier_path[PATH_MAX]; /* "" = none */
    bool has_classifier;
    gan_classifier classifier;
    gan_eval_classifier judge; /* after gand_cli_data_judge */
} gand_cli_data;

/*
 * Load a bundled data set by name (dataset; NULL with no data_path: the
 * first, "mnist") with its holdout and test file, or the file data_path
 * (holdout default 0); test_path (or NULL) and holdout (≥ 0, or −1 for the
 * default) override. On failure prints "gand CMD: …" and returns 2.
 */
int gand_cli_data_load(const char *cmd, const char *dataset, const char *data_path,
                       const char *test_path, long holdout, gand_cli_data *out);
/*
 * The digit classifier of the evaluations: the file classifier_path, else the
 * bundled data set's (none for a --data file). With one, its reference of the
 * test images is made on be. On failure prints "gand CMD: …" and returns 2.
 */
int gand_cli_data_judge(const char *cmd, gand_cli_data *d, const char *dataset,
                        const char *data_path, const char *classifier_path, gk_backend *be);
/* One line: which images are trained on, choose σ and are scored. */
void gand_cli_data_describe(const gand_cli_data *d, char *buf, size_t len);
void gand_cli_data_free(gand_cli_data *d);

#endif
