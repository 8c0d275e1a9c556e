/* daemon/commands.h — the subcommands of the one `gand` binary. */
#ifndef GAND_DAEMON_COMMANDS_H
#define GAND_DAEMON_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "gan/trainer.h"

/* daemon/cmd_serve.c: the service (linked into the gand executable with the API) */
int gand_cmd_serve(int argc, char **argv);
int gand_cmd_train(int argc, char **argv);
int gand_cmd_evaluate(int argc, char **argv);

/*
 * An integer command-line option in lo..hi (whole string, base 10). On a bad
 * value prints "gand CMD: OPT must be an integer in lo..hi, got 'S'" and
 * returns false.
 */
bool gand_option_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);

/* One epoch record as a JSON object on one line (the metrics.jsonl format). */
void gan_epoch_metrics_json(const gan_epoch_metrics *m, char *buf, size_t len);

#endif
