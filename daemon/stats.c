/*
 * daemon/stats.c — what /metrics reports about the runs, copied out under the
 * lock; api/metrics.c formats it with nothing locked.
 */
#include "daemon/registry_internal.h"

_Static_assert(RUN_STATE_COUNT <= 8, "gand_registry_stats holds at most 8 states");

reg_status registry_stats(gand_registry *reg, gand_registry_stats *out)
{
    memset(out, 0, sizeof *out);
    out->nstates = RUN_STATE_COUNT;
    for (int s = 0; s < RUN_STATE_COUNT; s++)
        out->state_names[s] = state_names[s];
    reg_lock(reg);
    out->runs = calloc((size_t)reg->nruns + 1, sizeof *out->runs);
    if (!out->runs) {
        reg_unlock(reg);
        return REG_INTERNAL;
    }
    out->nruns = reg->nruns;
    for (int i = 0; i < reg->nruns; i++) {
        const run *r = reg->runs[i];
        gand_run_stats *s = &out->runs[i];
        str_printf(s->id, sizeof s->id, "%s", r->id);
        s->state = state_names[r->state];
        out->runs_by_state[r->state]++;
        s->epochs = run_epochs_locked(r);
        s->has_metrics = r->nmetrics > 0;
        if (s->has_metrics)
            s->last = r->metrics[r->nmetrics - 1];
        for (int a = 0; a < r->nalerts; a++)
            if (r->alerts[a].kind >= 0 && r->alerts[a].kind < GAN_WATCH_KINDS)
                s->alerts[r->alerts[a].kind]++;
        for (int k = r->nevals - 1; k >= 0 && !(s->has_evaluation && s->has_sample_metrics); k--) {
            const evaluation *e = &r->evals[k];
            if (e->state != EVAL_DONE)
                continue;
            if (e->has_parzen && !s->has_evaluation) {
                s->has_evaluation = true;
                s->parzen_ll = e->parzen_ll;
                s->parzen_stderr = e->stderr_ll;
            }
            if (e->has_metrics && !s->has_sample_metrics) {
                s->has_sample_metrics = true;
                s->sample_metrics = e->metrics;
            }
        }
    }
    out->evaluations_queued = reg->evals_queued;
    reg_unlock(reg);
    return REG_OK;
}

void registry_stats_free(gand_registry_stats *s)
{
    free(s->runs);
    s->runs = NULL;
    s->nruns = 0;
}
