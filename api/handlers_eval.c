/*
 * api/handlers_eval.c — what a run learned: Parzen evaluations (queued for the
 * worker, answered 202), the generated images as a gzip IDX3 download, and
 * the latent space (G applied to given vectors; an interpolation strip).
 *
 * Everything but the evaluation itself is rendered by the registry on the CPU
 * from the run's latest G snapshot, on this request's thread: no backend.
 * Body fields and query parameters follow the API's rule: unknown ones are a
 * 422 naming them; a latent vector's error names its index ("z[3]").
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"
#include "daemon/log.h"
#include "gan/json_text.h"

enum {
    EVAL_SAMPLES_DEFAULT = 10000, /* the paper's */
    EXPORT_N_MAX = 10000,         /* unless max_sample_n is larger */
    INTERPOLATE_STEPS_DEFAULT = 10,
    SCALE_DEFAULT = 2,
    SCALE_MAX = 8, /* as samples.png */
};
#define SEED_MAX ((int64_t)1 << 53)

static const char *const json_types[] = {"application/json", NULL};

/* A JSON value as short text for an error message ("got ..."): UTF-8, a number as sent. */
static void value_text(const cJSON *v, char *buf, size_t len)
{
    gan_json_got(v, buf, len, 40);
}

/* A JSON number that is exactly an integer in min..max, on its digits (2^53 + 1 is not 2^53). */
static bool json_int(const cJSON *v, int64_t min, int64_t max, int64_t *out)
{
    return gan_json_integer(v, min, max, out);
}

/* The request's body as a JSON object: 415 unless sent as JSON, 400 unless an object. */
static cJSON *json_body(api_request *req, const char *what, enum MHD_Result *rc)
{
    if (!api_content_type_is(req, json_types)) {
        *rc = api_problem(req, 415, "unsupported-media-type", NULL,
                          "%s must be sent as Content-Type: application/json", what);
        return NULL;
    }
    if (!api_body_is_json_object(req, rc))
        return NULL;
    cJSON *o = gan_json_parse(req->body, req->body_len, NULL, false); /* numbers keep their text */
    if (!o)
        *rc = api_problem(req, 500, "internal", NULL, "out of memory reading the body");
    return o;
}

/* Copy a path parameter into a header-safe name: [A-Za-z0-9_-], others become '_'. */
static void safe_name(const char *id, char *out, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; id[i] && j + 1 < len; i++)
        out[j++] = isalnum((unsigned char)id[i]) || id[i] == '-' || id[i] == '_' ? id[i] : '_';
    out[j] = '\0';
}

/* ---- evaluations ---------------------------------------------------------------------------- */

enum MHD_Result h_run_evaluate(api_request *req, const char *const *params)
{
    static const char *const no_params[] = {NULL};
    bool ok;
    enum MHD_Result rc = api_check_query(req, no_params, &ok);
    if (!ok)
        return rc;
    int64_t samples = EVAL_SAMPLES_DEFAULT, seed = 0;
    if (req->body_len > 0) { /* the body is optional: {} is the paper's 10,000 samples, seed 0 */
        cJSON *o = json_body(req, "an evaluation request", &rc);
        if (!o)
            return rc;
        for (const cJSON *it = o->child; it; it = it->next) {
            char got[64];
            value_text(it, got, sizeof got);
            if (strcmp(it->string, "samples") == 0) {
                if (!json_int(it, 1, REG_EVAL_SAMPLES_MAX, &samples)) {
                    rc = api_problem(req, 422, "invalid-field", "samples",
                                     "samples must be an integer in 1..%d (images generated to "
                                     "score against), got %s",
                                     REG_EVAL_SAMPLES_MAX, got);
                    cJSON_Delete(o);
                    return rc;
                }
            } else if (strcmp(it->string, "seed") == 0) {
                if (!json_int(it, 0, SEED_MAX, &seed)) {
                    rc = api_problem(req, 422, "invalid-field", "seed",
                                     "seed must be an integer in 0..%lld, got %s",
                                     (long long)SEED_MAX, got);
                    cJSON_Delete(o);
                    return rc;
                }
            } else {
                rc = api_problem(req, 422, "invalid-field", it->string,
                                 "unknown field '%s'; an evaluation request takes samples "
                                 "and seed",
                                 API_CLIP(it->string, 60));
                cJSON_Delete(o);
                return rc;
            }
        }
        cJSON_Delete(o);
    }
    char *json = NULL;
    int n = 0;
    gan_error err = {{0}, {0}};
    reg_status st =
        registry_evaluate(req->api->reg, params[0], (int)samples, (uint64_t)seed, &json, &n, &err);
    if (st != REG_OK)
        return api_problem_reg(req, st, &err, params[0]);
    char location[256];
    snprintf(location, sizeof location, "/api/v1/runs/%.100s/evaluations/%d", params[0], n);
    struct MHD_Response *resp = api_json_response(json, "application/json", "no-store");
    if (!resp)
        return api_problem(req, 500, "internal", NULL, "out of memory");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    log_info("http: queued evaluation %d of run %s", n, params[0]);
    return api_send(req, 202, resp);
}

enum MHD_Result h_run_evaluations(api_request *req, const char *const *params)
{
    static const char *const no_params[] = {NULL};
    bool ok;
    enum MHD_Result rc = api_check_query(req, no_params, &ok);
    if (!ok)
        return rc;
    char *json = NULL;
    reg_status st = registry_evaluations(req->api->reg, params[0], &json);
    if (st != REG_OK)
        return api_problem_reg(req, st, NULL, params[0]);
    return api_send_json(req, 200, json);
}

enum MHD_Result h_run_evaluation(api_request *req, const char *const *params)
{
    static const char *const no_params[] = {NULL};
    bool ok;
    enum MHD_Result rc = api_check_query(req, no_params, &ok);
    if (!ok)
        return rc;
    const char *s = params[1];
    size_t len = strlen(s);
    bool digits = len > 0 && len <= 9 && s[0] != '0';
    for (size_t i = 0; digits && i < len; i++)
        digits = isdigit((unsigned char)s[i]) != 0;
    if (!digits)
        return api_problem(req, 404, "not-found", NULL,
                           "no such evaluation: evaluations are numbered 1, 2, ..., got '%s'",
                           API_CLIP(s, 40));
    char *json = NULL;
    gan_error err = {{0}, {0}};
    reg_status st = registry_evaluation(req->api->reg, params[0], atoi(s), &json, &err);
    if (st != REG_OK)
        return api_problem_reg(req, st, &err, params[0]);
    return api_send_json(req, 200, json);
}

/* ---- generated images as data ---------------------------------------------------------------- */

enum MHD_Result h_run_samples_export(api_request *req, const char *const *params)
{
    static const char *const allowed[] = {"n", "seed", "format", NULL};
    bool ok;
    enum MHD_Result rc = api_check_query(req, allowed, &ok);
    if (!ok)
        return rc;
    const char *format = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "format");
    if (format && strcmp(format, "idx") != 0)
        return api_problem(req, 422, "invalid-field", "format",
                           "format must be idx (gzip-compressed IDX3 images, as MNIST's files), "
                           "got '%s'",
                           API_CLIP(format, 40));
    int configured = atomic_load(&req->api->max_sample_n);
    int64_t max_n = configured > EXPORT_N_MAX ? configured : EXPORT_N_MAX;
    int64_t n, seed;
    rc = api_query_int(req, "n", 1, max_n,
                       EVAL_SAMPLES_DEFAULT < max_n ? EVAL_SAMPLES_DEFAULT : max_n, &n, &ok);
    if (!ok)
        return rc;
    rc = api_query_int(req, "seed", 0, SEED_MAX, 0, &seed, &ok);
    if (!ok)
        return rc;
    uint8_t *gz = NULL;
    size_t len = 0;
    gan_error err = {{0}, {0}};
    reg_status st =
        registry_export_samples(req->api->reg, params[0], (int)n, (uint64_t)seed, &gz, &len, &err);
    if (st != REG_OK)
        return api_problem_reg(req, st, &err, params[0]);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, gz, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(gz);
        return api_send(req, 200, NULL);
    }
    char safe[80], disposition[200];
    safe_name(params[0], safe, sizeof safe);
    snprintf(disposition, sizeof disposition,
             "attachment; filename=\"%s-samples-%lld-seed%lld-idx3-ubyte.gz\"", safe, (long long)n,
             (long long)seed);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return api_send(req, 200, resp);
}

/* ---- the latent space ------------------------------------------------------------------------ */

/* Does the client ask for JSON (Accept names application/json and not image/png)? */
static bool wants_json(api_request *req)
{
    const char *a = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    if (!a)
        return false;
    char lower[512];
    size_t i = 0;
    for (; a[i] && i + 1 < sizeof lower; i++)
        lower[i] = (char)tolower((unsigned char)a[i]);
    lower[i] = '\0';
    return strstr(lower, "application/json") && !strstr(lower, "image/png");
}

static enum MHD_Result send_png(api_request *req, uint8_t *png, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, png, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(png);
        return api_send(req, 200, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "image/png");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return api_send(req, 200, resp);
}

/*
 * Check z against the run's latent_dim and copy it into *out (n × dim
 * floats). Queues a 422 naming the first bad vector and returns false.
 */
static bool parse_latents(api_request *req, const cJSON *z, int dim, float **out, int *n,
                          enum MHD_Result *rc)
{
    *out = NULL;
    if (!z) {
        *rc = api_problem(req, 422, "invalid-field", "z",
                          "z is required: an array of 1..%d latent vectors, each an array of %d "
                          "numbers (this run's latent_dim)",
                          REG_GENERATE_MAX, dim);
        return false;
    }
    int count = cJSON_IsArray(z) ? cJSON_GetArraySize(z) : -1;
    if (count < 1 || count > REG_GENERATE_MAX) {
        char got[64];
        if (count < 0)
            value_text(z, got, sizeof got);
        else
            snprintf(got, sizeof got, "%d vectors", count);
        *rc = api_problem(req, 422, "invalid-field", "z",
                          "z must be an array of 1..%d latent vectors, each an array of %d "
                          "numbers (this run's latent_dim), got %s",
                          REG_GENERATE_MAX, dim, got);
        return false;
    }
    float *buf = malloc((size_t)count * (size_t)dim * sizeof(float));
    if (!buf) {
        *rc = api_problem(req, 500, "internal", NULL, "out of memory");
        return false;
    }
    int i = 0;
    for (const cJSON *v = z->child; v; v = v->next, i++) {
        char field[32];
        snprintf(field, sizeof field, "z[%d]", i);
        int len = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
        if (len < 0) {
            char got[64];
            value_text(v, got, sizeof got);
            *rc = api_problem(req, 422, "invalid-field", field,
                              "%s must be an array of %d numbers (this run's latent_dim), got %s",
                              field, dim, got);
            free(buf);
            return false;
        }
        if (len != dim) {
            *rc = api_problem(req, 422, "invalid-field", field,
                              "%s has %d number%s; this run's latent_dim is %d", field, len,
                              len == 1 ? "" : "s", dim);
            free(buf);
            return false;
        }
        int j = 0;
        for (const cJSON *x = v->child; x; x = x->next, j++) {
            if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || fabs(x->valuedouble) > 3.4e38) {
                char got[64];
                value_text(x, got, sizeof got);
                *rc = api_problem(req, 422, "invalid-field", field,
                                  "%s[%d] must be a finite number, got %s", field, j, got);
                free(buf);
                return false;
            }
            buf[(size_t)i * (size_t)dim + (size_t)j] = (float)x->valuedouble;
        }
    }
    *out = buf;
    *n = count;
    return true;
}

enum MHD_Result h_run_generate(api_request *req, const char *const *params)
{
    static const char *const allowed[] = {"scale", NULL};
    bool ok;
    enum MHD_Result rc = api_check_query(req, allowed, &ok);
    if (!ok)
        return rc;
    int64_t scale;
    rc = api_query_int(req, "scale", 1, SCALE_MAX, SCALE_DEFAULT, &scale, &ok);
    if (!ok)
        return rc;
    bool scale_in_query =
        MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "scale") != NULL;
    int dim = 0;
    reg_status st = registry_latent_dim(req->api->reg, params[0], &dim);
    if (st != REG_OK)
        return api_problem_reg(req, st, NULL, params[0]);
    if (req->body_len == 0)
        return api_problem(req, 400, "invalid-json", NULL,
                           "the request body is empty; send {\"z\": [[%d numbers], ...]}", dim);
    cJSON *o = json_body(req, "a generate request", &rc);
    if (!o)
        return rc;
    const cJSON *z = NULL;
    for (const cJSON *it = o->child; it; it = it->next) {
        if (strcmp(it->string, "z") == 0) {
            z = it;
        } else if (strcmp(it->string, "scale") == 0) {
            char got[64];
            value_text(it, got, sizeof got);
            if (scale_in_query)
                rc = api_problem(req, 422, "invalid-field", "scale",
                                 "scale is given both in the query and in the body; give it once");
            else if (!json_int(it, 1, SCALE_MAX, &scale))
                rc = api_problem(req, 422, "invalid-field", "scale",
                                 "scale must be an integer in 1..%d, got %s", SCALE_MAX, got);
            else
                continue;
            cJSON_Delete(o);
            return rc;
        } else {
            rc = api_problem(req, 422, "invalid-field", it->string,
                             "unknown field '%s'; a generate request takes z and scale",
                             API_CLIP(it->string, 60));
            cJSON_Delete(o);
            return rc;
        }
    }
    float *zs = NULL;
    int n = 0;
    ok = parse_latents(req, z, dim, &zs, &n, &rc);
    cJSON_Delete(o);
    if (!ok)
        return rc;
    bool as_json = wants_json(req);
    uint8_t *out = NULL;
    size_t len = 0;
    gan_error err = {{0}, {0}};
    st = registry_generate(req->api->reg, params[0], zs, n, dim, (int)scale, as_json, &out, &len,
                           &err);
    free(zs);
    if (st != REG_OK)
        return api_problem_reg(req, st, &err, params[0]);
    if (as_json)
        return api_send_json(req, 200, (char *)out);
    return send_png(req, out, len);
}

enum MHD_Result h_run_interpolate(api_request *req, const char *const *params)
{
    static const char *const allowed[] = {"from", "to", "steps", "scale", NULL};
    bool ok;
    enum MHD_Result rc = api_check_query(req, allowed, &ok);
    if (!ok)
        return rc;
    int64_t from, to, steps, scale;
    rc = api_query_int(req, "from", 0, SEED_MAX, 0, &from, &ok);
    if (!ok)
        return rc;
    rc = api_query_int(req, "to", 0, SEED_MAX, 1, &to, &ok);
    if (!ok)
        return rc;
    rc =
        api_query_int(req, "steps", 2, REG_INTERPOLATE_MAX, INTERPOLATE_STEPS_DEFAULT, &steps, &ok);
    if (!ok)
        return rc;
    rc = api_query_int(req, "scale", 1, SCALE_MAX, SCALE_DEFAULT, &scale, &ok);
    if (!ok)
        return rc;
    uint8_t *png = NULL;
    size_t len = 0;
    gan_error err = {{0}, {0}};
    reg_status st = registry_interpolate(req->api->reg, params[0], (uint64_t)from, (uint64_t)to,
                                         (int)steps, (int)scale, &png, &len, &err);
    if (st != REG_OK)
        return api_problem_reg(req, st, &err, params[0]);
    return send_png(req, png, len);
}
