/*
 * tests/fuzz/fuzz_problem.h — a problem document made of input-derived text,
 * as api/problem.c makes it (the detail formatted into 1024 bytes and trimmed
 * to a character boundary, then api_problem_body), checked: valid UTF-8, a
 * JSON object whose "detail" is a valid UTF-8 string, "status" the status
 * given, "field" a string when one was given. The targets that include it
 * link api/problem_body.c, gan/json_text.c and cJSON.
 */
#ifndef GAND_TESTS_FUZZ_PROBLEM_H
#define GAND_TESTS_FUZZ_PROBLEM_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/problem_body.h"
#include "gan/json_text.h"
#include "tests/fuzz/fuzz_check.h"

static inline void fuzz_check_problem(unsigned status, const char *type, const char *field,
                                      const char *detail_text, const char *instance)
{
    char detail[1024]; /* api_problem's buffer */
    snprintf(detail, sizeof detail, "%s", detail_text);
    gan_utf8_trim(detail);
    char *json = api_problem_body(status, "Error", type, field, detail, instance);
    FUZZ_CHECK(json != NULL, "no problem body");
    size_t len = strlen(json);
    FUZZ_CHECK(fuzz_utf8_valid((const unsigned char *)json, len),
               "the problem body is not UTF-8: %s", json);
    cJSON *o = cJSON_ParseWithLength(json, len);
    FUZZ_CHECK(cJSON_IsObject(o), "the problem body is not a JSON object: %s", json);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "detail");
    FUZZ_CHECK(cJSON_IsString(d), "the problem's detail is not a string: %s", json);
    FUZZ_CHECK(fuzz_utf8_valid((const unsigned char *)d->valuestring, strlen(d->valuestring)),
               "the problem's detail does not decode to UTF-8: %s", json);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
    FUZZ_CHECK(cJSON_IsNumber(st) && st->valuedouble == (double)status,
               "the problem's status is not %u: %s", status, json);
    if (field && field[0])
        FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "field")),
                   "the problem's field is not a string: %s", json);
    cJSON_Delete(o);
    free(json);
}

#endif
