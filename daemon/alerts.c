/*
 * daemon/alerts.c — what the daemon does when a watch rule (gan/watch.h)
 * fires: the run's `alert` event (SSE and events.jsonl), its list of alerts
 * (the run JSON) and counts (`gand_run_alerts_total`), a log line, and for a
 * rule whose action is pause, the pause, with the alert as the reason.
 *
 * The event data and the log line are formatted before the lock is taken;
 * under it the alert is only copied in.
 */
#include "daemon/registry_internal.h"

void alert_keep_locked(run *r, const gan_alert *a)
{
    if (grow((void **)&r->alerts, &r->alerts_cap, r->nalerts + 1, sizeof *a))
        r->alerts[r->nalerts++] = *a;
}

bool alerts_raise(gand_registry *reg, run *r, const gan_alert *a, int n)
{
    const gan_alert *pause = NULL;
    for (int i = 0; i < n; i++) {
        char data[1024];
        gan_alert_json(&a[i], data, sizeof data);
        char *copy = strdup(data);
        uint64_t id = 0;
        pthread_mutex_lock(&r->io);
        reg_lock(reg);
        bool removed = r->removed;
        if (!removed) {
            alert_keep_locked(r, &a[i]);
            id = event_add_locked(reg, r, "alert", copy);
            copy = NULL;
        }
        reg_unlock(reg);
        if (!removed)
            event_append(r, id, "alert", a[i].epoch, data);
        pthread_mutex_unlock(&r->io);
        events_after_lock(reg);
        free(copy);
        log_warning("run %s: watch rule %d (%s, %s) fired at epoch %d: %s", r->id, a[i].rule,
                    gan_watch_kind_name(a[i].kind), gan_watch_action_name(a[i].action), a[i].epoch,
                    a[i].message);
        if (a[i].action == GAN_WATCH_PAUSE && !pause)
            pause = &a[i];
    }
    if (!pause)
        return false;
    char reason[REASON_MAX];
    str_printf(reason, sizeof reason, "watch rule %d (%s): %s", pause->rule,
               gan_watch_kind_name(pause->kind), pause->message);
    return set_state(reg, r, RUN_PAUSED, reason, true);
}
