/*
 * tests/fuzz/fuzz_check.h — what the fuzz targets share: a check that aborts
 * (so libFuzzer saves the input as a crash) whatever NDEBUG says.
 */
#ifndef GAND_TESTS_FUZZ_CHECK_H
#define GAND_TESTS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
