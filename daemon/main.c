/*
 * daemon/main.c — the `gand` binary: dispatch to a subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "daemon/commands.h"
#include "kernels/backend.h"

#ifndef GAND_VERSION
#define GAND_VERSION "0"
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: gand <command> [options]\n"
               "\n"
               "commands:\n"
               "  train     train one GAN in the foreground (gand train --help)\n"
               "  version   print the version and the backends built in\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "train") == 0)
        return gand_cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("gand %s (backends: %s)\n", GAND_VERSION, gk_backends_built());
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "gand: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
