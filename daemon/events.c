/*
 * daemon/events.c — a run's event sequence: publish, and read or wait for events;
 * the hook that tells the API's suspended streams (registry_set_event_hook).
 */
#include "daemon/registry_internal.h"

/* ---- events ------------------------------------------------------------ */

/* Append an event in memory (takes data) and wake waiters; returns its sequence number. */
uint64_t event_add_locked(gand_registry *reg, run *r, const char *kind, char *data)
{
    if (!data || !grow((void **)&r->events, &r->events_cap, r->nevents + 1, sizeof(run_event))) {
        atomic_fetch_add(&reg->events_lost, 1); /* logged after the lock (events_report_lost) */
        free(data);
        return (uint64_t)r->nevents;
    }
    r->events[r->nevents].kind = kind;
    r->events[r->nevents].data = data;
    r->nevents++;
    event_wake_locked(reg, r);
    return (uint64_t)r->nevents;
}

void event_wake_locked(gand_registry *reg, run *r)
{
    pthread_cond_broadcast(&r->events_cond); /* this run's streams only */
    if (reg->event_hook)
        reg->event_hook(reg->event_hook_ctx, r->id);
}

void registry_set_event_hook(gand_registry *reg, registry_event_hook fn, void *ctx)
{
    reg_lock(reg);
    reg->event_hook = fn;
    reg->event_hook_ctx = ctx;
    reg_unlock(reg);
}

void events_report_lost(gand_registry *reg)
{
    uint64_t lost = atomic_load(&reg->events_lost);
    uint64_t logged = atomic_exchange(&reg->events_lost_logged, lost);
    if (lost > logged)
        log_err("%" PRIu64 " event(s) could not be recorded in memory (out of memory); streams "
                "and events.jsonl miss them",
                lost - logged);
}

/* The events.jsonl line of an event: kind, completed epochs, data. */
char *event_line(const char *kind, int epoch, const char *data)
{
    sb b = {0};
    sb_printf(&b, "{\"event\":\"%s\",\"epoch\":%d,\"data\":%s}", kind, epoch, data);
    return sb_take(&b);
}

reg_status registry_events(gand_registry *reg, const char *id, uint64_t after, int timeout_ms,
                           char **text, uint64_t *last, bool *ended)
{
    *text = NULL;
    *last = after;
    *ended = false;
    run *r = run_get(reg, id);
    if (!r)
        return REG_NOT_FOUND;
    struct timespec dl = deadline_after_ms(timeout_ms > 0 ? timeout_ms : 0);
    reg_lock(reg);
    for (;;) {
        bool have = (uint64_t)r->nevents > after;
        bool done = state_is_final(r->state) && !r->active && r->evals_pending == 0 &&
                    r->events_pending == 0;
        if (have || done || r->removed || reg->shutdown || timeout_ms <= 0)
            break;
        if (pthread_cond_timedwait(&r->events_cond, &reg->lock, &dl) == ETIMEDOUT)
            break;
    }
    reg_status st = REG_OK;
    uint64_t n = (uint64_t)r->nevents, end = after;
    run_event *copy = NULL;
    if (r->removed) {
        st = REG_NOT_FOUND;
    } else if (n > after) {
        /* the (kind, data) pairs; the strings stay put while we hold a reference */
        end = n < after + EVENTS_PER_CALL ? n : after + EVENTS_PER_CALL;
        copy = malloc((size_t)(end - after) * sizeof *copy);
        if (copy)
            memcpy(copy, r->events + after, (size_t)(end - after) * sizeof *copy);
        else
            st = REG_INTERNAL;
    }
    bool final =
        state_is_final(r->state) && !r->active && r->evals_pending == 0 && r->events_pending == 0;
    reg_unlock(reg);

    if (copy) { /* formatted with nothing locked */
        sb b = {0};
        for (uint64_t i = after; i < end; i++)
            sb_printf(&b, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", i + 1, copy[i - after].kind,
                      copy[i - after].data);
        free(copy);
        if (!(*text = sb_take(&b)))
            st = REG_INTERNAL;
        else
            *last = end;
    }
    *ended = st == REG_OK && final && *last >= n;
    run_put(reg, r);
    return st;
}
