/*
 * tests/fuzz/fuzz_route.c — the route matcher of api/ on hostile paths.
 *
 * The input is "PATTERN\nPATH" (or just a PATH, matched against every
 * pattern of the route table's shapes). Checks: no out-of-bounds access
 * (ASan), captured parameters are NUL-terminated substrings of the path
 * that contain no '/' unless captured by "**", and a match is stable
 * (matching again gives the same captures). Every input is also parsed as
 * a query integer: what is accepted must print back to the same text.
 * The problem documents that quote a path (404 no such resource, 405, the
 * 404 of an unknown run id captured from it) are built from the input as
 * api/problem.c and api/router.c build them, and must be valid UTF-8 JSON
 * objects with a string "detail" (tests/fuzz/fuzz_problem.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/parse_int.h"
#include "api/route_match.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_problem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the shapes of gand's route patterns (api/router.c) */
static const char *const shapes[] = {
    "/",
    "/static/**",
    "/healthz",
    "/api/v1/runs",
    "/api/v1/runs/{id}",
    "/api/v1/runs/{id}/pause",
    "/api/v1/runs/{id}/samples.png",
    "/api/v1/runs/{id}/samples/{epoch}.png",
    "/api/v1/runs/{id}/evaluations/{n}",
};

static void check(const char *pattern, const char *path)
{
    char buf[512], buf2[512];
    const char *params[API_ROUTE_MAX_PARAMS + 1] = {0}, *params2[API_ROUTE_MAX_PARAMS + 1] = {0};
    if (!api_path_match(pattern, path, buf, sizeof buf, params))
        return;
    FUZZ_CHECK(api_path_match(pattern, path, buf2, sizeof buf2, params2), "a match is not stable");
    bool rest = strstr(pattern, "**") != NULL;
    for (int i = 0; i < API_ROUTE_MAX_PARAMS && params[i]; i++) {
        FUZZ_CHECK(params[i] >= buf && params[i] < buf + sizeof buf, "param %d outside buf", i);
        size_t len = strlen(params[i]);
        FUZZ_CHECK(len > 0, "empty capture %d", i);
        FUZZ_CHECK(strstr(path, params[i]) != NULL, "capture %d is not part of the path", i);
        FUZZ_CHECK(rest || !strchr(params[i], '/'), "capture %d crosses a segment", i);
        FUZZ_CHECK(params2[i] && strcmp(params[i], params2[i]) == 0, "capture %d differs", i);
    }
    if (params[0]) { /* api_problem_reg's 404 for a run id that names no run */
        char detail[1024];
        snprintf(detail, sizeof detail, "no run with id '%s'", params[0]);
        fuzz_check_problem(404, "urn:gand:problem:not-found", NULL, detail, path);
    }
}

/* The problems of api/router.c that quote the request path. */
static void check_problems(const char *path)
{
    char detail[1024], clipped[121];
    snprintf(detail, sizeof detail,
             "no such resource: %s (the API is under /api/v1; see /api/v1/openapi.json)", path);
    fuzz_check_problem(404, "urn:gand:problem:not-found", NULL, detail, path);
    gan_utf8_clip(clipped, sizeof clipped, path, 120); /* API_CLIP(req->url, 120) */
    snprintf(detail, sizeof detail, "%s is not allowed on %s; allowed: %s", "PUT", clipped,
             "GET, OPTIONS");
    fuzz_check_problem(405, "urn:gand:problem:method-not-allowed", NULL, detail, path);
    /* a field named by the input, as a query parameter's 422 names it */
    fuzz_check_problem(422, "urn:gand:problem:invalid-field", path, "unknown query parameter",
                       path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* an embedded NUL just ends the string early, as in a C path */
    int64_t v;
    if (api_parse_int64(text, INT64_MIN, INT64_MAX, &v)) {
        /* accepted text is a sign and digits only, and its value prints back and reparses */
        const char *d = text + (text[0] == '+' || text[0] == '-');
        FUZZ_CHECK(*d != '\0' && strspn(d, "0123456789") == strlen(d), "'%s' accepted", text);
        char back[32];
        int64_t again;
        snprintf(back, sizeof back, "%" PRId64, v);
        FUZZ_CHECK(api_parse_int64(back, INT64_MIN, INT64_MAX, &again) && again == v,
                   "'%s' does not reparse", back);
        FUZZ_CHECK(!api_parse_int64(text, v == INT64_MAX ? v : v + 1, INT64_MAX, &again),
                   "'%s' is above its own value", text);
    }
    check_problems(text);
    char *nl = strchr(text, '\n');
    if (nl) {
        *nl = '\0';
        check(text, nl + 1);
    } else {
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            check(shapes[i], text);
    }
    free(text);
    return 0;
}
