/*
 * cmd/main.c — the `gand` binary: dispatch to a subcommand.
 *
 * `gand` alone, or `gand --some-flag ...`, is `gand serve`: that is what a
 * service manager or a user trying the daemon runs.
 */
#include <stdio.h>
#include <string.h>

#include "cmd/commands.h"
#include "kernels/backend.h"
#include "kernels/cpu/blas_kernels.h"

#ifndef GAND_VERSION
#define GAND_VERSION "0"
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: gand <command> [options]\n"
               "\n"
               "commands:\n"
               "  serve     run the daemon: HTTP API and training worker (the default;\n"
               "            gand serve --help)\n"
               "  train     train one GAN in the foreground (gand train --help)\n"
               "  evaluate  Parzen-window estimate of a checkpoint (gand evaluate --help)\n"
               "  classifier\n"
               "            train or check the digit classifier that evaluations use\n"
               "            (gand classifier --help)\n"
               "  version   print the version and the backends built in\n");
}

int main(int argc, char **argv)
{
    gk_blas_fit_kernels(); /* before any thread; the commands log what it did */
    if (argc < 2)
        return gand_cmd_serve(argc, argv);
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return gand_cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "train") == 0)
        return gand_cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "evaluate") == 0)
        return gand_cmd_evaluate(argc - 1, argv + 1);
    if (strcmp(cmd, "classifier") == 0)
        return gand_cmd_classifier(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("gand %s (backends: %s)\n", GAND_VERSION, gk_backends_built());
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (cmd[0] == '-' && cmd[1] == '-')
        return gand_cmd_serve(argc, argv); /* flags of the default command */
    fprintf(stderr, "gand: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
