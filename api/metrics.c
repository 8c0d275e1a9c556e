/*
 * api/metrics.c — GET /metrics: Prometheus text exposition (format 0.0.4).
 *
 * The runs' series come from a copy of the registry's figures (registry_stats),
 * formatted here with nothing locked; then the HTTP server's own: requests
 * answered by status code, event streams open, build info.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "kernels/backend.h"

#ifndef GAND_VERSION
#define GAND_VERSION "0"
#endif

typedef struct text_buf {
    char *data;
    size_t len, cap;
    bool failed;
} text_buf;

static void put(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(text_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *nd = realloc(b->data, ncap);
        if (!nd) {
            b->failed = true;
            return;
        }
        b->data = nd;
        b->cap = ncap;
    }
}

/* The runs' series (gand_runs, gand_run_epochs_total, gand_run_state, the last epoch's
 * losses and outputs, the latest Parzen estimate, gand_evaluations_queued). */
static void put_runs(text_buf *b, const gand_registry_stats *st)
{
    put(b, "# HELP gand_runs Runs known to the daemon, by state.\n"
           "# TYPE gand_runs gauge\n");
    for (int s = 0; s < st->nstates; s++)
        put(b, "gand_runs{state=\"%s\"} %d\n", st->state_names[s], st->runs_by_state[s]);
    put(b, "# HELP gand_run_epochs_total Epochs a run has completed.\n"
           "# TYPE gand_run_epochs_total counter\n");
    for (int i = 0; i < st->nruns; i++)
        put(b, "gand_run_epochs_total{run=\"%s\"} %d\n", st->runs[i].id, st->runs[i].epochs);
    put(b, "# HELP gand_run_state The state a run is in (1 for its state).\n"
           "# TYPE gand_run_state gauge\n");
    for (int i = 0; i < st->nruns; i++)
        put(b, "gand_run_state{run=\"%s\",state=\"%s\"} 1\n", st->runs[i].id, st->runs[i].state);
    /* The last epoch's record (the d_* and g_* fields of /api/v1/runs/{id}/metrics), with
     * names spelled out: promtool reads a "_d_" as days. */
    static const struct {
        const char *name, *help;
        size_t offset;
    } gauges[] = {
        {"gand_run_discriminator_loss",
         "Discriminator loss of the last epoch: real plus fake loss (d_loss).",
         offsetof(gan_epoch_metrics, d_loss)},
        {"gand_run_discriminator_real_loss",
         "Mean binary cross-entropy of the discriminator on real images in the last epoch "
         "(d_real).",
         offsetof(gan_epoch_metrics, d_real)},
        {"gand_run_discriminator_fake_loss",
         "Mean binary cross-entropy of the discriminator on generated images in the last "
         "epoch (d_fake).",
         offsetof(gan_epoch_metrics, d_fake)},
        {"gand_run_generator_loss", "Generator loss of the last epoch (g_loss).",
         offsetof(gan_epoch_metrics, g_loss)},
        {"gand_run_discriminator_real_output",
         "Mean discriminator output D(x) on real images in the last epoch (d_x).",
         offsetof(gan_epoch_metrics, d_x)},
        {"gand_run_discriminator_fake_output",
         "Mean discriminator output D(G(z)) on generated images in the generator steps of "
         "the last epoch (d_g_z).",
         offsetof(gan_epoch_metrics, d_g_z)},
        {"gand_run_samples_per_second",
         "Training images per second in the last epoch (samples_per_sec).",
         offsetof(gan_epoch_metrics, samples_per_sec)},
    };
    for (size_t g = 0; g < sizeof gauges / sizeof gauges[0]; g++) {
        put(b, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g].name, gauges[g].help, gauges[g].name);
        for (int i = 0; i < st->nruns; i++) {
            if (!st->runs[i].has_metrics)
                continue;
            double v;
            memcpy(&v, (const char *)&st->runs[i].last + gauges[g].offset, sizeof v);
            put(b, "%s{run=\"%s\"} %.9g\n", gauges[g].name, st->runs[i].id, v);
        }
    }
    put(b, "# HELP gand_run_parzen_log_likelihood Mean Parzen-window log-likelihood of the "
           "held-out test images in the run's latest evaluation, nats.\n"
           "# TYPE gand_run_parzen_log_likelihood gauge\n");
    for (int i = 0; i < st->nruns; i++)
        if (st->runs[i].has_evaluation)
            put(b, "gand_run_parzen_log_likelihood{run=\"%s\"} %.9g\n", st->runs[i].id,
                st->runs[i].parzen_ll);
    put(b, "# HELP gand_run_parzen_log_likelihood_stderr Standard error of "
           "gand_run_parzen_log_likelihood, nats.\n"
           "# TYPE gand_run_parzen_log_likelihood_stderr gauge\n");
    for (int i = 0; i < st->nruns; i++)
        if (st->runs[i].has_evaluation)
            put(b, "gand_run_parzen_log_likelihood_stderr{run=\"%s\"} %.9g\n", st->runs[i].id,
                st->runs[i].parzen_stderr);
    static const struct {
        const char *name, *help;
        size_t offset;
    } judged[] = {
        {"gand_run_frechet_distance",
         "Fréchet distance between the digit classifier's features of G's samples and of the "
         "held-out test images, in the run's latest evaluation with a classifier (fid).",
         offsetof(gan_sample_metrics, fid)},
        {"gand_run_sample_precision",
         "Fraction of G's samples inside the real images' manifold (k = 3), latest (precision).",
         offsetof(gan_sample_metrics, precision)},
        {"gand_run_sample_recall",
         "Fraction of the real images inside the samples' manifold (k = 3), latest (recall).",
         offsetof(gan_sample_metrics, recall)},
        {"gand_run_class_kl_divergence",
         "KL divergence of the samples' class histogram from the real one, nats, latest (kl).",
         offsetof(gan_sample_metrics, kl)},
    };
    for (size_t g = 0; g < sizeof judged / sizeof judged[0]; g++) {
        put(b, "# HELP %s %s\n# TYPE %s gauge\n", judged[g].name, judged[g].help, judged[g].name);
        for (int i = 0; i < st->nruns; i++) {
            if (!st->runs[i].has_sample_metrics)
                continue;
            double v;
            memcpy(&v, (const char *)&st->runs[i].sample_metrics + judged[g].offset, sizeof v);
            put(b, "%s{run=\"%s\"} %.9g\n", judged[g].name, st->runs[i].id, v);
        }
    }
    put(b, "# HELP gand_run_sample_modes Digit classes the samples cover (of 10), latest (modes).\n"
           "# TYPE gand_run_sample_modes gauge\n");
    for (int i = 0; i < st->nruns; i++)
        if (st->runs[i].has_sample_metrics)
            put(b, "gand_run_sample_modes{run=\"%s\"} %d\n", st->runs[i].id,
                st->runs[i].sample_metrics.modes);
    put(b, "# HELP gand_run_alerts_total Watch rules of a run that fired, by kind.\n"
           "# TYPE gand_run_alerts_total counter\n");
    for (int i = 0; i < st->nruns; i++)
        for (int k = 0; k < GAN_WATCH_KINDS; k++)
            put(b, "gand_run_alerts_total{run=\"%s\",kind=\"%s\"} %d\n", st->runs[i].id,
                gan_watch_kind_name((gan_watch_kind)k), st->runs[i].alerts[k]);
    put(b,
        "# HELP gand_evaluations_queued Evaluations waiting for the worker.\n"
        "# TYPE gand_evaluations_queued gauge\n"
        "gand_evaluations_queued %d\n",
        st->evaluations_queued);
}

enum MHD_Result h_metrics(api_request *req, const char *const *params)
{
    (void)params;
    static const char *const no_params[] = {NULL};
    bool ok;
    enum MHD_Result rc = api_check_query(req, no_params, &ok);
    if (!ok)
        return rc;
    gand_registry_stats stats;
    reg_status st = registry_stats(req->api->reg, &stats);
    if (st != REG_OK)
        return api_problem_reg(req, st, NULL, NULL);

    text_buf b = {.cap = 4096};
    b.data = malloc(b.cap);
    if (!b.data) {
        registry_stats_free(&stats);
        return api_problem(req, 500, "internal", NULL, "out of memory");
    }
    b.data[0] = '\0';
    put_runs(&b, &stats);
    registry_stats_free(&stats);

    put(&b, "# HELP gand_http_requests_total HTTP requests answered, by status code.\n"
            "# TYPE gand_http_requests_total counter\n");
    /* this response is counted once it is queued; count it here already so it appears */
    for (unsigned code = 100; code < API_STATUS_MAX; code++) {
        unsigned long n = atomic_load(&req->api->requests_by_status[code]) + (code == 200);
        if (n)
            put(&b, "gand_http_requests_total{code=\"%u\"} %lu\n", code, n);
    }
    put(&b,
        "# HELP gand_http_event_streams Server-Sent Event streams open now.\n"
        "# TYPE gand_http_event_streams gauge\n"
        "gand_http_event_streams %d\n",
        atomic_load(&req->api->active_streams));
    put(&b,
        "# HELP gand_build_info The gand build: version and backends compiled in.\n"
        "# TYPE gand_build_info gauge\n"
        "gand_build_info{version=\"%s\",backends=\"%s\"} 1\n",
        GAND_VERSION, gk_backends_built());
    if (b.failed) {
        free(b.data);
        return api_problem(req, 500, "internal", NULL, "out of memory");
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(b.data);
        return api_send(req, 200, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return api_send(req, 200, resp);
}
