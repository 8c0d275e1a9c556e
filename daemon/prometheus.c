/*
 * daemon/prometheus.c — the /metrics text of the registry.
 */
#include "daemon/registry_internal.h"

reg_status registry_prometheus(gand_registry *reg, char **text)
{
    sb b = {0};
    pthread_mutex_lock(&reg->lock);
    int counts[RUN_STATE_COUNT] = {0};
    for (int i = 0; i < reg->nruns; i++)
        counts[reg->runs[i]->state]++;
    sb_puts(&b, "# HELP gand_runs Runs known to the daemon, by state.\n"
                "# TYPE gand_runs gauge\n");
    for (int s = 0; s < RUN_STATE_COUNT; s++)
        sb_printf(&b, "gand_runs{state=\"%s\"} %d\n", state_names[s], counts[s]);
    sb_puts(&b, "# HELP gand_run_epochs_total Epochs a run has completed.\n"
                "# TYPE gand_run_epochs_total counter\n");
    for (int i = 0; i < reg->nruns; i++)
        sb_printf(&b, "gand_run_epochs_total{run=\"%s\"} %d\n", reg->runs[i]->id,
                  reg->runs[i]->nmetrics);
    sb_puts(&b, "# HELP gand_run_state The state a run is in (1 for its state).\n"
                "# TYPE gand_run_state gauge\n");
    for (int i = 0; i < reg->nruns; i++)
        sb_printf(&b, "gand_run_state{run=\"%s\",state=\"%s\"} 1\n", reg->runs[i]->id,
                  state_names[reg->runs[i]->state]);
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
        sb_printf(&b, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g].name, gauges[g].help,
                  gauges[g].name);
        for (int i = 0; i < reg->nruns; i++) {
            const run *r = reg->runs[i];
            if (r->nmetrics == 0)
                continue;
            double v;
            memcpy(&v, (const char *)&r->metrics[r->nmetrics - 1] + gauges[g].offset, sizeof v);
            sb_printf(&b, "%s{run=\"%s\"} %.9g\n", gauges[g].name, r->id, v);
        }
    }
    sb_puts(&b, "# HELP gand_run_parzen_log_likelihood Mean Parzen-window log-likelihood of the "
                "held-out test images in the run's latest evaluation, nats.\n"
                "# TYPE gand_run_parzen_log_likelihood gauge\n");
    for (int i = 0; i < reg->nruns; i++) {
        const evaluation *e = last_done_locked(reg->runs[i]);
        if (e)
            sb_printf(&b, "gand_run_parzen_log_likelihood{run=\"%s\"} %.9g\n", reg->runs[i]->id,
                      e->parzen_ll);
    }
    sb_puts(&b, "# HELP gand_run_parzen_log_likelihood_stderr Standard error of "
                "gand_run_parzen_log_likelihood, nats.\n"
                "# TYPE gand_run_parzen_log_likelihood_stderr gauge\n");
    for (int i = 0; i < reg->nruns; i++) {
        const evaluation *e = last_done_locked(reg->runs[i]);
        if (e)
            sb_printf(&b, "gand_run_parzen_log_likelihood_stderr{run=\"%s\"} %.9g\n",
                      reg->runs[i]->id, e->stderr_ll);
    }
    sb_printf(&b,
              "# HELP gand_evaluations_queued Evaluations waiting for the worker.\n"
              "# TYPE gand_evaluations_queued gauge\n"
              "gand_evaluations_queued %d\n",
              reg->evals_queued);
    pthread_mutex_unlock(&reg->lock);
    *text = sb_take(&b);
    return *text ? REG_OK : REG_INTERNAL;
}
