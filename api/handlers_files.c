/*
 * api/handlers_files.c — what a run makes that is not JSON: the live sample
 * grid, the fixed-noise grid of each epoch, and the checkpoint.
 *
 * samples.png is rendered by the registry from the latest published G on the
 * CPU (never the backend), so it is cheap enough to answer per request but
 * changes as the run trains: no-store. An epoch's grid never changes once
 * written: immutable, with an ETag made of the run id and epoch.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

enum MHD_Result h_run_samples(api_request *req, const char *const *params)
{
    static const char *const allowed[] = {"n", "seed", "scale", NULL};
    bool ok;
    enum MHD_Result rc = api_check_query(req, allowed, &ok);
    if (!ok)
        return rc;
    int64_t n, seed, scale;
    int max_n = atomic_load(&req->api->max_sample_n);
    rc = api_query_int(req, "n", 1, max_n, max_n < 64 ? max_n : 64, &n, &ok);
    if (!ok)
        return rc;
    rc = api_query_int(req, "seed", 0, (int64_t)1 << 53, 0, &seed, &ok);
    if (!ok)
        return rc;
    rc = api_query_int(req, "scale", 1, 8, 2, &scale, &ok);
    if (!ok)
        return rc;
    uint8_t *png = NULL;
    size_t len = 0;
    gan_error err = {{0}, {0}};
    reg_status st = registry_sample_png(req->api->reg, params[0], (int)n, (uint64_t)seed,
                                        (int)scale, &png, &len, &err);
    if (st != REG_OK)
        return api_problem_reg(req, st, &err, params[0]);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, png, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(png);
        return api_send(req, 200, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "image/png");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return api_send(req, 200, resp);
}

/* "12" → 12; anything but 1..9 decimal digits without a sign → -1. */
static long parse_epoch(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return -1;
    return strtol(s, NULL, 10);
}

enum MHD_Result h_run_epoch_png(api_request *req, const char *const *params)
{
    static const char *const no_params[] = {NULL};
    bool ok;
    enum MHD_Result rc = api_check_query(req, no_params, &ok);
    if (!ok)
        return rc;
    const char *id = params[0];
    long epoch = parse_epoch(params[1]);
    if (epoch < 0)
        return api_problem(req, 404, "not-found", NULL,
                           "no such grid: the file name must be the epoch number, e.g. "
                           "samples/3.png, got '%s.png'",
                           API_CLIP(params[1], 40));
    char path[PATH_MAX];
    reg_status st = registry_epoch_png_path(req->api->reg, id, (int)epoch, path, sizeof path);
    if (st == REG_NOT_FOUND) {
        gand_run_view run;
        if (registry_get_run(req->api->reg, id, &run) == REG_OK) {
            gand_run_view_free(&run);
            return api_problem(req, 404, "not-found", NULL,
                               "run %s has no sample grid for epoch %ld (see its samples_epochs)",
                               id, epoch);
        }
    }
    if (st != REG_OK)
        return api_problem_reg(req, st, NULL, id);
    char etag[192];
    snprintf(etag, sizeof etag, "\"%.100s-%ld\"", id, epoch);
    static const char *const headers[] = {MHD_HTTP_HEADER_CACHE_CONTROL,
                                          "public, max-age=31536000, immutable", NULL};
    if (api_if_none_match(req, etag))
        return api_send_not_modified(req, etag, headers);
    return api_send_file(req, path, "image/png", etag, headers);
}

enum MHD_Result h_run_checkpoint(api_request *req, const char *const *params)
{
    static const char *const allowed[] = {"which", NULL};
    bool ok;
    enum MHD_Result rc = api_check_query(req, allowed, &ok);
    if (!ok)
        return rc;
    const char *which = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "which");
    bool best = which && strcmp(which, "best") == 0;
    if (which && !best && strcmp(which, "latest") != 0)
        return api_problem(req, 422, "invalid-field", "which",
                           "which must be latest (the default: the newest checkpoint) or best "
                           "(that of the evaluation with the lowest Fréchet distance)");
    const char *id = params[0];
    char path[PATH_MAX];
    reg_status st = registry_checkpoint_path(req->api->reg, id, best, path, sizeof path);
    if (st == REG_NOT_FOUND) {
        gand_run_view run;
        if (registry_get_run(req->api->reg, id, &run) == REG_OK) {
            gand_run_view_free(&run);
            if (best)
                return api_problem(req, 404, "not-found", NULL,
                                   "run %s has no best checkpoint yet (it is kept at the watch "
                                   "or evaluate_every evaluation with the lowest Fréchet "
                                   "distance; its data set needs a digit classifier)",
                                   id);
            return api_problem(req, 404, "not-found", NULL,
                               "run %s has no checkpoint yet (one is written every "
                               "checkpoint_every epochs, and on pause and stop)",
                               id);
        }
    }
    if (st != REG_OK)
        return api_problem_reg(req, st, NULL, id);
    /* the id is the registry's; keep the header safe whatever it is */
    char safe[80];
    size_t j = 0;
    for (size_t i = 0; id[i] && j + 1 < sizeof safe; i++)
        safe[j++] = isalnum((unsigned char)id[i]) || id[i] == '-' || id[i] == '_' ? id[i] : '_';
    safe[j] = '\0';
    char disposition[160];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s%s.safetensors\"", safe,
             best ? "-best" : "");
    const char *headers[] = {MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition,
                             MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache", NULL};
    return api_send_file(req, path, "application/octet-stream", NULL, headers);
}
