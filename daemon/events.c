/*
 * daemon/events.c — a run's event sequence: publish, and read or wait for events;
 * the hook that tells the API's suspended streams (registry_set_event_hook).
 */
#include "daemon/registry_internal.h"

/* ---- events ------------------------------------------------------------ */

/*
 * Event ids. Each run numbers its events 1, 2, ... in this daemon's life;
 * events.jsonl keeps every event's id, so a stream that reconnects with
 * Last-Event-ID after a restart finds its place. An event can reach a stream
 * and then not reach the disk (a crash, a full disk), so a restarted daemon
 * must not hand its id out again: every id handed out is at most the number
 * in STATE_DIR/event-ids, written (atomically) before any id can pass it, and
 * a restarted daemon numbers each run's new events from above that number
 * and above every id its files hold. It is raised EVENT_ID_BLOCK at a time,
 * when an id comes within half a block of it: one small write per half a
 * million events. While it cannot be raised (a full disk), ids go on past it
 * and a crash then may hand an id out twice; the log says so.
 */
enum { EVENT_ID_BLOCK = 1 << 20 };

static int write_event_ids(const gand_registry *reg, uint64_t reserved, gan_error *err)
{
    char path[PATH_MAX], text[32];
    str_printf(path, sizeof path, "%s/event-ids", reg->state_dir);
    int n = str_printf(text, sizeof text, "%" PRIu64 "\n", reserved);
    return gan_write_file_atomic(path, text, (size_t)n, err);
}

void events_reserve_ids(gand_registry *reg)
{
    char path[PATH_MAX];
    str_printf(path, sizeof path, "%s/event-ids", reg->state_dir);
    uint64_t base = 0;
    for (int i = 0; i < reg->nruns; i++)
        if (reg->runs[i]->last_event_id > base)
            base = reg->runs[i]->last_event_id;
    gan_error err = {{0}, {0}};
    if (access(path, F_OK) == 0) {
        char *text = read_text(path, 64, &err), *end = NULL;
        errno = 0;
        unsigned long long v = text ? strtoull(text, &end, 10) : 0;
        if (text && errno == 0 && end != text && (*end == '\n' || *end == '\0')) {
            if (v > base)
                base = v;
        } else {
            /* how far the last daemon went is unknown: a block past what the files hold */
            base += EVENT_ID_BLOCK;
            log_err("%s does not hold an event id%s%s; new event ids start past %" PRIu64, path,
                    text ? "" : ": ", text ? "" : err.message, base);
        }
        free(text);
    }
    reg->event_ids_reserved = base;
    for (int i = 0; i < reg->nruns; i++)
        reg->runs[i]->last_event_id = base;
    if (write_event_ids(reg, base + EVENT_ID_BLOCK, &err) == 0) {
        reg->event_ids_reserved = base + EVENT_ID_BLOCK;
    } else {
        log_warning("event ids cannot be reserved past %" PRIu64 " (%s): after a crash now, a "
                    "stream that reconnects could miss events",
                    base, err.message);
        reg->event_ids_warned = true;
        atomic_store(&reg->event_ids_low, true);
    }
}

/* Add an event in memory (takes data) and wake waiters; returns its id (0: out of memory). */
uint64_t event_add_locked(gand_registry *reg, run *r, const char *kind, char *data)
{
    if (!data || !grow((void **)&r->events, &r->events_cap, r->nevents + 1, sizeof(run_event))) {
        atomic_fetch_add(&reg->events_lost, 1); /* logged after the lock (events_after_lock) */
        free(data);
        return 0;
    }
    uint64_t id = ++r->last_event_id;
    if (id + EVENT_ID_BLOCK / 2 > reg->event_ids_reserved)
        atomic_store(&reg->event_ids_low, true); /* raised after the lock (events_after_lock) */
    r->events[r->nevents].id = id;
    r->events[r->nevents].kind = kind;
    r->events[r->nevents].data = data;
    r->events[r->nevents].epoch = run_epochs_locked(r);
    r->nevents++;
    event_wake_locked(reg, r);
    return id;
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

void events_after_lock(gand_registry *reg)
{
    uint64_t lost = atomic_load(&reg->events_lost);
    uint64_t logged = atomic_exchange(&reg->events_lost_logged, lost);
    if (lost > logged)
        log_err("%" PRIu64 " event(s) could not be recorded in memory (out of memory); streams "
                "and events.jsonl miss them",
                lost - logged);
    if (!atomic_load(&reg->event_ids_low)) /* nearly always: no lock taken */
        return;
    pthread_mutex_lock(&reg->ids_io);
    reg_lock(reg);
    bool low = atomic_load(&reg->event_ids_low);
    uint64_t top = reg->event_ids_reserved;
    for (int i = 0; low && i < reg->nruns; i++)
        if (reg->runs[i]->last_event_id > top)
            top = reg->runs[i]->last_event_id;
    reg_unlock(reg);
    if (low) {
        gan_error err;
        uint64_t next = top + EVENT_ID_BLOCK;
        if (write_event_ids(reg, next, &err) == 0) {
            reg_lock(reg);
            reg->event_ids_reserved = next;
            atomic_store(&reg->event_ids_low, false);
            reg_unlock(reg);
            if (reg->event_ids_warned)
                log_notice("event ids are reserved up to %" PRIu64 " again", next);
            reg->event_ids_warned = false;
        } else if (!reg->event_ids_warned) {
            log_warning("event ids cannot be reserved past %" PRIu64 " (%s): after a crash now, "
                        "a stream that reconnects could miss events",
                        top, err.message);
            reg->event_ids_warned = true;
        }
    }
    pthread_mutex_unlock(&reg->ids_io);
}

/* The events.jsonl line of an event: id, kind, completed epochs, data. */
char *event_line(uint64_t id, const char *kind, int epoch, const char *data)
{
    sb b = {0};
    sb_printf(&b, "{\"id\":%" PRIu64 ",\"event\":\"%s\",\"epoch\":%d,\"data\":%s}", id, kind, epoch,
              data);
    return sb_take(&b);
}

/* Append an event to the run's events.jsonl (r->io held, nothing else); 0 or -1 (logged). */
int event_append(run *r, uint64_t id, const char *kind, int epoch, const char *data)
{
    if (id == 0 || !data || r->removed)
        return 0; /* not recorded in memory either (counted as lost) */
    char path[PATH_MAX];
    run_path(r, "events.jsonl", path, sizeof path);
    char *line = event_line(id, kind, epoch, data);
    int rc = line ? gan_append_line(path, line) : -1;
    if (rc != 0)
        log_err("run %s: cannot append event %" PRIu64 " to %s: %s", r->id, id, path,
                line ? strerror(errno) : "out of memory");
    free(line);
    return rc;
}

/* The index of the first event with an id above `after` (nevents when none). */
static int first_after(const run *r, uint64_t after)
{
    int lo = 0, hi = r->nevents;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (r->events[mid].id <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
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
        bool have = r->nevents > 0 && r->events[r->nevents - 1].id > after;
        bool done = state_is_final(r->state) && !r->active && r->evals_pending == 0 &&
                    r->events_pending == 0;
        if (have || done || r->removed || reg->shutdown || timeout_ms <= 0)
            break;
        if (pthread_cond_timedwait(&r->events_cond, &reg->lock, &dl) == ETIMEDOUT)
            break;
    }
    reg_status st = REG_OK;
    int from = first_after(r, after), n = 0;
    uint64_t newest = r->nevents > 0 ? r->events[r->nevents - 1].id : 0;
    run_event *copy = NULL;
    if (r->removed) {
        st = REG_NOT_FOUND;
    } else if (from < r->nevents) {
        /* the (id, kind, data) triples; the strings stay put while we hold a reference */
        n = r->nevents - from < EVENTS_PER_CALL ? r->nevents - from : EVENTS_PER_CALL;
        copy = malloc((size_t)n * sizeof *copy);
        if (copy)
            memcpy(copy, r->events + from, (size_t)n * sizeof *copy);
        else
            st = REG_INTERNAL;
    }
    bool final =
        state_is_final(r->state) && !r->active && r->evals_pending == 0 && r->events_pending == 0;
    reg_unlock(reg);

    if (copy) { /* formatted with nothing locked */
        sb b = {0};
        for (int i = 0; i < n; i++)
            sb_printf(&b, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", copy[i].id, copy[i].kind,
                      copy[i].data);
        *last = copy[n - 1].id;
        free(copy);
        if (!(*text = sb_take(&b))) {
            st = REG_INTERNAL;
            *last = after;
        }
    }
    *ended = st == REG_OK && final && *last >= newest;
    run_put(reg, r);
    return st;
}
