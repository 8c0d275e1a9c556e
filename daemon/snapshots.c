/*
 * daemon/snapshots.c — G snapshots: immutable host copies of a run's generator that request threads
 * render from.
 */
#include "daemon/registry_internal.h"

/* ---- G snapshots ------------------------------------------------------- */

static g_snapshot *snapshot_new(const gan_config *cfg, int epoch)
{
    g_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->params = malloc(gan_generator_param_count(cfg) * sizeof(float));
    if (!s->params) {
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->cfg = *cfg;
    s->epoch = epoch;
    return s;
}

void snapshot_release(g_snapshot *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        free(s->params);
        free(s);
    }
}

/* Replace a run's snapshot (takes over the caller's reference). */
void snapshot_publish(gand_registry *reg, run *r, g_snapshot *s)
{
    reg_lock(reg);
    g_snapshot *old = r->snap;
    r->snap = s;
    reg_unlock(reg);
    snapshot_release(old);
}

/*
 * The run's current G with a reference taken (release it): the published
 * snapshot, else — after a restart — G from the run's checkpoint, which
 * then becomes the snapshot. REG_CONFLICT when the run has neither yet.
 */
reg_status run_generator(gand_registry *reg, run *r, g_snapshot **out, gan_error *err)
{
    *out = NULL;
    reg_lock(reg);
    g_snapshot *s = r->snap;
    if (s)
        atomic_fetch_add(&s->refs, 1);
    bool from_checkpoint = !s && r->checkpoint_epoch >= 0;
    gan_config cfg = r->cfg;
    run_state state = r->state;
    reg_unlock(reg);
    if (from_checkpoint) {
        char path[PATH_MAX];
        gan_checkpoint_position pos;
        float *g = NULL;
        run_path(r, "checkpoint.safetensors", path, sizeof path);
        if (gan_checkpoint_inspect(path, &cfg, &pos, &g, err) != 0)
            return REG_INTERNAL;
        s = snapshot_new(&cfg, pos.epoch);
        if (!s) {
            free(g);
            gan_fail(err, "", "out of memory");
            return REG_INTERNAL;
        }
        free(s->params);
        s->params = g;
        atomic_fetch_add(&s->refs, 1); /* one for the run, one for the caller */
        reg_lock(reg);
        g_snapshot *old = NULL;
        if (!r->snap)
            r->snap = s;
        else
            old = s; /* someone published meanwhile: use ours once, keep theirs */
        reg_unlock(reg);
        snapshot_release(old);
    }
    if (!s) {
        gan_fail(err, "",
                 "run %s has no generator yet (state %s): it is made when the run starts "
                 "training",
                 r->id, state_names[state]);
        return REG_CONFLICT;
    }
    *out = s;
    return REG_OK;
}

g_snapshot *snapshot_from_trainer(gan_trainer *t, const gan_config *cfg, gan_error *err)
{
    g_snapshot *s = snapshot_new(cfg, gan_trainer_epoch(t));
    if (!s) {
        gan_fail(err, "", "out of memory copying the generator");
        return NULL;
    }
    if (gan_trainer_download_sampler(t, s->params, err) != 0) {
        snapshot_release(s);
        return NULL;
    }
    return s;
}

/*
 * The start of every request that draws images from a run: the run held and
 * its generator's snapshot. On REG_OK give both back with generator_release.
 */
reg_status generator_acquire(gand_registry *reg, const char *id, run **r, g_snapshot **s,
                             gan_error *err)
{
    *s = NULL;
    *r = run_get(reg, id);
    if (!*r)
        return not_found(id, err);
    reg_status st = run_generator(reg, *r, s, err);
    if (st != REG_OK)
        run_put(reg, *r);
    return st;
}

void generator_release(gand_registry *reg, run *r, g_snapshot *s)
{
    snapshot_release(s);
    run_put(reg, r);
}
