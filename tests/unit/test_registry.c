/*
 * tests/unit/test_registry.c — daemon/registry: the run life cycle on the CPU
 * backend with tiny models and a 640-image data set, so an epoch takes
 * milliseconds: completion, queue order, pause/resume/stop and their 409s,
 * config patches, validation, shutdown and resume without duplicate epochs,
 * broken run directories, event waits without polling, and sample images.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "daemon/registry.h"
#include "gan/fsutil.h"
#include "gan/idx.h"
#include "registry_json.h"
#include "testutil.h"

enum { DATA_IMAGES = 640 };

static char tmp_root[PATH_MAX];  /* removed at the end */
static char data_path[PATH_MAX]; /* 640 digits as gzip IDX3 */

/* A tiny model: 10 iterations of batch 64 per epoch. */
#define TINY                                                                                       \
    "\"latent_dim\":8,\"g_hidden\":16,\"d_units\":8,\"d_pieces\":2,\"batch_size\":64,"             \
    "\"seed\":3"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup_all(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/gand-test-registry-XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    gan_dataset ds;
    gan_error err;
    if (test_load_digits(&ds) != 0)
        return -1;
    uint8_t *gz;
    size_t len;
    int rc = gan_idx_encode_images_gz(ds.pixels, DATA_IMAGES, 28, 28, &gz, &len, &err);
    gan_dataset_free(&ds);
    if (rc != 0)
        return -1;
    if ((size_t)snprintf(data_path, sizeof data_path, "%s/digits-640.idx3.gz", tmp_root) >=
        sizeof data_path) {
        free(gz);
        return -1;
    }
    rc = gan_write_file_atomic(data_path, gz, len, &err);
    free(gz);
    return rc;
}

static int teardown_all(void **state)
{
    (void)state;
    return nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ------------------------------------------------------------ */

static int dir_counter;

/* A fresh state directory for one test. */
static void new_state_dir(char *out, size_t len)
{
    assert_true((size_t)snprintf(out, len, "%s/state-%d", tmp_root, ++dir_counter) < len);
}

/* A registry on the CPU with data set "mnist" (and "spare" when spare_path is given). */
static gand_registry *open_registry_with(const char *state_dir, int max_runs,
                                         const char *spare_path)
{
    static gand_dataset_entry ds[2];
    snprintf(ds[0].name, sizeof ds[0].name, "mnist");
    assert_true((size_t)snprintf(ds[0].path, sizeof ds[0].path, "%s", data_path) <
                sizeof ds[0].path);
    snprintf(ds[1].name, sizeof ds[1].name, "spare");
    snprintf(ds[1].path, sizeof ds[1].path, "%s", spare_path ? spare_path : "");
    registry_options opt = {.state_dir = state_dir,
                            .device = "cpu",
                            .datasets = ds,
                            .dataset_count = spare_path ? 2 : 1,
                            .max_runs = max_runs,
                            .max_sample_n = 256};
    gan_error err = {{0}, {0}};
    gand_registry *r = registry_open(&opt, &err);
    if (!r)
        fprintf(stderr, "registry_open: %s\n", err.message);
    assert_non_null(r);
    return r;
}

static gand_registry *open_registry(const char *state_dir, int max_runs)
{
    return open_registry_with(state_dir, max_runs, NULL);
}

static void start(gand_registry *r)
{
    gan_error err;
    assert_int_equal(registry_start(r, &err), 0);
}

static void create(gand_registry *r, const char *body, char *id, size_t id_len)
{
    gan_error err = {{0}, {0}};
    char *json = NULL;
    reg_status st = json_create_run(r, body, strlen(body), &json, id, id_len, &err);
    if (st != REG_OK)
        fprintf(stderr, "create %s: %s: %s\n", body, err.field, err.message);
    assert_int_equal(st, REG_OK);
    assert_non_null(json);
    free(json);
}

static cJSON *get_run(gand_registry *r, const char *id)
{
    char *json = NULL;
    assert_int_equal(json_get_run(r, id, &json), REG_OK);
    cJSON *o = cJSON_Parse(json);
    free(json);
    assert_non_null(o);
    return o;
}

static void run_state(gand_registry *r, const char *id, char *state, size_t len, int *epoch)
{
    cJSON *o = get_run(r, id);
    snprintf(state, len, "%s", cJSON_GetObjectItem(o, "state")->valuestring);
    if (epoch)
        *epoch = cJSON_GetObjectItem(o, "epoch")->valueint;
    cJSON_Delete(o);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wait (test-side polling) until a run is in a state with at least min_epoch epochs. */
static void wait_for(gand_registry *r, const char *id, const char *want, int min_epoch)
{
    double t0 = now_s();
    char state[32] = "";
    int epoch = 0;
    while (now_s() - t0 < 60) {
        run_state(r, id, state, sizeof state, &epoch);
        if (strcmp(state, want) == 0 && epoch >= min_epoch)
            return;
        usleep(5000);
    }
    fprintf(stderr, "run %s: wanted %s with epoch >= %d, have %s at %d\n", id, want, min_epoch,
            state, epoch);
    fail();
}

/* Control that must succeed; returns the state in the answer. */
static void control_ok(gand_registry *r, const char *id, const char *action, const char *want)
{
    char *json = NULL;
    gan_error err = {{0}, {0}};
    reg_status st = json_control(r, id, action, &json, &err);
    if (st != REG_OK)
        fprintf(stderr, "%s %s: %s\n", action, id, err.message);
    assert_int_equal(st, REG_OK);
    cJSON *o = cJSON_Parse(json);
    assert_string_equal(cJSON_GetObjectItem(o, "state")->valuestring, want);
    cJSON_Delete(o);
    free(json);
}

static void control_conflict(gand_registry *r, const char *id, const char *action,
                             const char *message)
{
    char *json = NULL;
    gan_error err = {{0}, {0}};
    assert_int_equal(json_control(r, id, action, &json, &err), REG_CONFLICT);
    assert_null(json);
    if (!strstr(err.message, message))
        fprintf(stderr, "message '%s' lacks '%s'\n", err.message, message);
    assert_non_null(strstr(err.message, message));
}

/* All events after 0, without waiting. */
static char *all_events(gand_registry *r, const char *id, uint64_t *last, bool *ended)
{
    char *text = NULL;
    assert_int_equal(registry_events(r, id, 0, 0, &text, last, ended), REG_OK);
    assert_non_null(text);
    return text;
}

/*
 * All events of a run that is over, once its stream has ended: a final state shows
 * before its "state" event is added (the event follows once run.json is written).
 */
static char *final_events(gand_registry *r, const char *id, uint64_t *last)
{
    bool ended = false;
    double t0 = now_s();
    char *text = all_events(r, id, last, &ended);
    while (!ended && now_s() - t0 < 30) {
        free(text);
        usleep(5000);
        text = all_events(r, id, last, &ended);
    }
    assert_true(ended);
    return text;
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The epochs of the "epoch" events, in order; returns how many. */
static int event_epochs(const char *text, int *out, int max)
{
    int n = 0;
    for (const char *p = strstr(text, "event: epoch\ndata: "); p && n < max;
         p = strstr(p + 1, "event: epoch\ndata: ")) {
        cJSON *o = cJSON_ParseWithOpts(p + strlen("event: epoch\ndata: "), NULL, false);
        assert_non_null(o);
        out[n++] = cJSON_GetObjectItem(o, "epoch")->valueint;
        cJSON_Delete(o);
    }
    return n;
}

/* The epochs of registry_metrics, checked to be 1..n in order; returns n. */
static int metrics_epochs(gand_registry *r, const char *id)
{
    char *json = NULL;
    assert_int_equal(registry_metrics(r, id, 0, &json), REG_OK);
    cJSON *o = cJSON_Parse(json);
    free(json);
    assert_non_null(o);
    const cJSON *a = cJSON_GetObjectItem(o, "epochs");
    int n = cJSON_GetArraySize(a);
    for (int i = 0; i < n; i++)
        assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(a, i), "epoch")->valueint, i + 1);
    cJSON_Delete(o);
    return n;
}

/* state_dir/runs/<id>/<name> (name "" for the directory) */
static void run_file(char *out, size_t len, const char *dir, const char *id, const char *name)
{
    assert_true((size_t)snprintf(out, len, "%s/runs/%s%s%s", dir, id, name[0] ? "/" : "", name) <
                len);
}

static int file_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static bool is_png(const uint8_t *p, size_t len)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    return len > 8 && memcmp(p, sig, 8) == 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_run_completes(void **state)
{
    (void)state;
    char dir[PATH_MAX], id[64];
    new_state_dir(dir, sizeof dir);
    gand_registry *r = open_registry(dir, 0);
    create(r, "{" TINY ",\"epochs\":3}", id, sizeof id);
    assert_int_equal(id[0], 'r');
    assert_int_equal(strlen(id), 13);
    start(r);
    wait_for(r, id, "completed", 3);

    assert_int_equal(metrics_epochs(r, id), 3);
    char *json;
    assert_int_equal(registry_metrics(r, id, 2, &json), REG_OK);
    assert_non_null(strstr(json, "\"since\":2"));
    assert_int_equal(count_of(json, "\"epoch\":"), 1);
    free(json);

    uint64_t last;
    char *ev = final_events(r, id, &last);
    /* queued, running, 3 epochs, completed */
    assert_int_equal(last, 6);
    assert_int_equal(count_of(ev, "event: epoch\n"), 3);
    assert_int_equal(count_of(ev, "event: state\n"), 3);
    assert_non_null(strstr(ev, "id: 1\nevent: state\ndata: {\"state\":\"queued\""));
    assert_non_null(strstr(ev, "id: 6\nevent: state\ndata: {\"state\":\"completed\""));
    assert_non_null(strstr(ev, "id: 3\nevent: epoch\ndata: {\"epoch\":1,"));
    free(ev);

    cJSON *o = get_run(r, id);
    assert_int_equal(cJSON_GetObjectItem(o, "checkpoint_epoch")->valueint, 3);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "samples_epochs")), 3);
    assert_int_equal(cJSON_GetObjectItem(o, "iterations_per_epoch")->valueint, 10);
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(o, "last_metrics")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "finished_at")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "queue_position")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "reason")));
    cJSON_Delete(o);

    char path[PATH_MAX];
    assert_int_equal(registry_epoch_png_path(r, id, 2, path, sizeof path), REG_OK);
    assert_int_equal(access(path, R_OK), 0);
    assert_int_equal(registry_epoch_png_path(r, id, 4, path, sizeof path), REG_NOT_FOUND);
    assert_int_equal(registry_checkpoint_path(r, id, false, path, sizeof path), REG_OK);
    assert_int_equal(access(path, R_OK), 0);

    run_file(path, sizeof path, dir, id, "metrics.jsonl");
    assert_int_equal(file_lines(path), 3);
    run_file(path, sizeof path, dir, id, "events.jsonl");
    assert_int_equal(file_lines(path), 6); /* the state changes and the epochs, with their ids */

    uint8_t *png;
    size_t len;
    gan_error err;
    assert_int_equal(registry_sample_png(r, id, 16, 42, 2, &png, &len, &err), REG_OK);
    assert_true(is_png(png, len));
    free(png);

    /* what /metrics reports (api/metrics.c formats it; integration_prometheus lints it) */
    gand_registry_stats st;
    assert_int_equal(registry_stats(r, &st), REG_OK);
    assert_int_equal(st.nruns, 1);
    assert_string_equal(st.runs[0].id, id);
    assert_string_equal(st.runs[0].state, "completed");
    assert_int_equal(st.runs[0].epochs, 3);
    assert_true(st.runs[0].has_metrics);
    assert_int_equal(st.runs[0].last.epoch, 3);
    for (int s = 0; s < st.nstates; s++)
        assert_int_equal(st.runs_by_state[s], strcmp(st.state_names[s], "completed") == 0);
    assert_int_equal(st.evaluations_queued, 0);
    registry_stats_free(&st);

    char *text;
    assert_int_equal(json_datasets(r, &text), REG_OK);
    assert_non_null(strstr(text, "\"name\":\"mnist\",\"images\":640,\"rows\":28,\"cols\":28"));
    free(text);

    char name[16], device[128], why[256];
    registry_backend_info(r, name, sizeof name, device, sizeof device, why, sizeof why);
    assert_string_equal(name, "cpu");
    registry_close(r);
}

static void test_queue_order(void **state)
{
    (void)state;
    char dir[PATH_MAX], a[64], b[64], c[64];
    new_state_dir(dir, sizeof dir);
    gand_registry *r = open_registry(dir, 0);
    create(r, "{" TINY ",\"epochs\":1000000,\"sample_every\":0,\"checkpoint_every\":1000}", a,
           sizeof a);
    create(r, "{" TINY ",\"epochs\":2}", b, sizeof b);
    create(r, "{" TINY ",\"epochs\":2}", c, sizeof c);
    assert_true(strcmp(a, b) < 0 && strcmp(b, c) < 0); /* ids sort by creation */
    start(r);
    wait_for(r, a, "running", 1);
    char st[32];
    run_state(r, b, st, sizeof st, NULL);
    assert_string_equal(st, "queued");
    cJSON *o = get_run(r, c);
    assert_int_equal(cJSON_GetObjectItem(o, "queue_position")->valueint, 2);
    cJSON_Delete(o);
    char line[256];
    registry_status_line(r, line, sizeof line);
    assert_non_null(strstr(line, a));

    control_ok(r, a, "stop", "stopped");
    wait_for(r, c, "completed", 2);
    run_state(r, b, st, sizeof st, NULL);
    assert_string_equal(st, "completed");
    cJSON *ob = get_run(r, b), *oc = get_run(r, c);
    /* b started before c: RFC 3339 strings compare as times */
    assert_true(strcmp(cJSON_GetObjectItem(ob, "started_at")->valuestring,
                       cJSON_GetObjectItem(oc, "started_at")->valuestring) <= 0);
    assert_true(strcmp(cJSON_GetObjectItem(ob, "finished_at")->valuestring,
                       cJSON_GetObjectItem(oc, "started_at")->valuestring) <= 0);
    cJSON_Delete(ob);
    cJSON_Delete(oc);
    registry_close(r);
}

static void test_transitions(void **state)
{
    (void)state;
    char dir[PATH_MAX], id[64];
    new_state_dir(dir, sizeof dir);
    gand_registry *r = open_registry(dir, 0);
    create(r, "{" TINY ",\"epochs\":1000000,\"sample_every\":0,\"checkpoint_every\":1000}", id,
           sizeof id);
    gan_error err;
    char *json = NULL;

    /* before the worker starts: queued ⇄ paused */
    control_conflict(r, id, "resume", "cannot resume a run that is queued");
    control_ok(r, id, "pause", "paused");
    control_ok(r, id, "resume", "queued");
    assert_int_equal(json_control(r, id, "restart", &json, &err), REG_INVALID);
    assert_string_equal(err.field, "action");
    assert_int_equal(json_control(r, "no-such-run", "pause", &json, &err), REG_NOT_FOUND);
    assert_int_equal(json_control(r, "../../etc", "pause", &json, &err), REG_NOT_FOUND);

    start(r);
    wait_for(r, id, "running", 1);
    control_conflict(r, id, "resume", "cannot resume a run that is running");
    assert_int_equal(registry_delete_run(r, id, &err), REG_CONFLICT);
    assert_non_null(strstr(err.message, "running"));

    control_ok(r, id, "pause", "paused");
    control_conflict(r, id, "pause", "cannot pause a run that is paused");
    /* the pause checkpoints the exact position */
    char path[PATH_MAX];
    for (int i = 0; i < 2000 && registry_checkpoint_path(r, id, false, path, sizeof path) != REG_OK;
         i++)
        usleep(5000);
    assert_int_equal(registry_checkpoint_path(r, id, false, path, sizeof path), REG_OK);
    int epoch_paused;
    run_state(r, id, (char[32]){0}, 32, &epoch_paused);
    usleep(100000);
    int epoch_later;
    run_state(r, id, (char[32]){0}, 32, &epoch_later);
    assert_int_equal(epoch_paused, epoch_later); /* a paused run does not train */

    json = NULL;
    assert_int_equal(json_control(r, id, "resume", &json, &err), REG_OK);
    assert_true(strstr(json, "\"state\":\"queued\"") || strstr(json, "\"state\":\"running\""));
    free(json);
    wait_for(r, id, "running", epoch_paused + 1);

    control_ok(r, id, "stop", "stopped");
    control_conflict(r, id, "stop", "cannot stop a run that is stopped");
    control_conflict(r, id, "resume", "cannot resume a run that is stopped");
    control_conflict(r, id, "pause", "cannot pause a run that is stopped");

    reg_status st;
    for (int i = 0; i < 2000 && (st = registry_delete_run(r, id, &err)) == REG_CONFLICT; i++)
        usleep(5000); /* the worker may still be writing the stop checkpoint */
    assert_int_equal(st, REG_OK);
    assert_int_equal(json_get_run(r, id, &json), REG_NOT_FOUND);
    run_file(path, sizeof path, dir, id, "");
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(registry_delete_run(r, id, &err), REG_NOT_FOUND);
    registry_close(r);
}

static void test_completed_resume_after_raising_epochs(void **state)
{
    (void)state;
    char dir[PATH_MAX], id[64];
    new_state_dir(dir, sizeof dir);
    gand_registry *r = open_registry(dir, 0);
    create(r, "{" TINY ",\"epochs\":2}", id, sizeof id);
    start(r);
    wait_for(r, id, "completed", 2);
    control_conflict(r, id, "resume", "raise epochs");
    char *answer = NULL;
    gan_error err;
    assert_int_equal(json_patch_run(r, id, "{\"epochs\":4}", 12, &answer, &err), REG_OK);
    free(answer);
    control_ok(r, id, "resume", "queued");
    wait_for(r, id, "completed", 4);
    assert_int_equal(metrics_epochs(r, id), 4);
    registry_close(r);
}

static void test_patch(void **state)
{
    (void)state;
    char dir[PATH_MAX], id[64];
    new_state_dir(dir, sizeof dir);
    gand_registry *r = open_registry(dir, 0);
    create(r, "{" TINY ",\"epochs\":1000000,\"sample_every\":0,\"checkpoint_every\":1000}", id,
           sizeof id);
    char *answer = NULL;
    gan_error err = {{0}, {0}};

    /* not started yet: applies now */
    assert_int_equal(json_patch_run(r, id, "{\"lr_d\":0.0005}", 0, &answer, &err), REG_OK);
    cJSON *o = cJSON_Parse(answer);
    free(answer);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "applies"), "lr_d")->valuestring,
                        "now");
    assert_int_equal(cJSON_GetObjectItem(o, "event_seq")->valueint, 2);
    cJSON_Delete(o);

    start(r);
    wait_for(r, id, "running", 1);
    const char *body = "{\"lr_g\":0.002,\"batch_size\":32}";
    assert_int_equal(json_patch_run(r, id, body, strlen(body), &answer, &err), REG_OK);
    o = cJSON_Parse(answer);
    free(answer);
    const cJSON *applies = cJSON_GetObjectItem(o, "applies");
    assert_string_equal(cJSON_GetObjectItem(applies, "lr_g")->valuestring, "next_iteration");
    assert_string_equal(cJSON_GetObjectItem(applies, "batch_size")->valuestring, "next_epoch");
    const cJSON *changed = cJSON_GetObjectItem(o, "changed");
    assert_int_equal(cJSON_GetArraySize(changed), 2);
    const cJSON *run = cJSON_GetObjectItem(o, "run");
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(run, "config"), "batch_size")->valueint, 32);
    int seq = cJSON_GetObjectItem(o, "event_seq")->valueint;
    int epoch_at_patch = cJSON_GetObjectItem(run, "epoch")->valueint;
    cJSON_Delete(o);

    /* the config event carries the new values */
    char *text = NULL;
    uint64_t last;
    bool ended;
    assert_int_equal(registry_events(r, id, (uint64_t)seq - 1, 0, &text, &last, &ended), REG_OK);
    char head[64];
    snprintf(head, sizeof head, "id: %d\nevent: config\ndata: {\"changed\":{", seq);
    assert_non_null(strstr(text, head));
    assert_non_null(strstr(text, "\"batch_size\":32"));
    free(text);

    /* two epochs later both are in force */
    wait_for(r, id, "running", epoch_at_patch + 2);
    char *json;
    assert_int_equal(registry_metrics(r, id, epoch_at_patch + 1, &json), REG_OK);
    o = cJSON_Parse(json);
    free(json);
    const cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "epochs"), 0);
    assert_int_equal(cJSON_GetObjectItem(rec, "batch_size")->valueint, 32);
    assert_true(cJSON_GetObjectItem(rec, "lr_g")->valuedouble == 0.002);
    assert_true(cJSON_GetObjectItem(rec, "lr_d")->valuedouble == 0.0005);
    cJSON_Delete(o);

    /* errors name the field */
    assert_int_equal(json_patch_run(r, id, "{\"latent_dim\":4}", 0, &answer, &err), REG_INVALID);
    assert_string_equal(err.field, "latent_dim");
    assert_int_equal(json_patch_run(r, id, "{\"batch_size\":1000}", 0, &answer, &err), REG_INVALID);
    assert_string_equal(err.field, "batch_size");
    assert_int_equal(json_patch_run(r, id, "{\"lr_d\":-1}", 0, &answer, &err), REG_INVALID);
    assert_string_equal(err.field, "lr_d");
    assert_int_equal(json_patch_run(r, "nope", "{}", 0, &answer, &err), REG_NOT_FOUND);

    /* no change: no event */
    assert_int_equal(json_patch_run(r, id, "{\"lr_g\":0.002}", 0, &answer, &err), REG_OK);
    o = cJSON_Parse(answer);
    free(answer);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "event_seq")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "changed")), 0);
    cJSON_Delete(o);

    control_ok(r, id, "stop", "stopped");
    assert_int_equal(json_patch_run(r, id, "{\"lr_g\":0.001}", 0, &answer, &err), REG_CONFLICT);
    assert_non_null(strstr(err.message, "stopped"));

    /* the patch is in run.json */
    registry_close(r);
    char path[PATH_MAX];
    run_file(path, sizeof path, dir, id, "run.json");
    uint8_t *data;
    size_t len;
    assert_int_equal(gan_read_file(path, &data, &len, 1 << 20, &err), 0);
    assert_non_null(strstr((char *)data, "\"batch_size\":\t32"));
    free(data);
}

static void test_invalid_create(void **state)
{
    (void)state;
    char dir[PATH_MAX], id[64];
    new_state_dir(dir, sizeof dir);
    gand_registry *r = open_registry(dir, 1);
    gan_error err = {{0}, {0}};
    char *json = NULL;
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"lr_d\":-1}", "lr_d"},
        {"{\"dataset\":\"imagenet\"}", "dataset"},
        {"{\"batch_size\":1000}", "batch_size"},
        {"{\"no_such_field\":1}", "no_such_field"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(
            json_create_run(r, bad[i].body, strlen(bad[i].body), &json, id, sizeof id, &err),
            REG_INVALID);
        assert_null(json);
        if (strcmp(err.field, bad[i].field) != 0)
            fprintf(stderr, "%s: field '%s' (%s)\n", bad[i].body, err.field, err.message);
        assert_string_equal(err.field, bad[i].field);
    }
    assert_non_null(strstr(err.message, "no_such_field"));

    create(r, "{" TINY ",\"epochs\":1}", id, sizeof id);
    char id2[64];
    const char *body = "{" TINY "}";
    assert_int_equal(json_create_run(r, body, strlen(body), &json, id2, sizeof id2, &err),
                     REG_LIMIT);
    assert_non_null(strstr(err.message, "at most 1 runs"));
    assert_non_null(strstr(err.message, "delete"));

    assert_int_equal(json_get_run(r, "../../../etc/passwd", &json), REG_NOT_FOUND);
    assert_int_equal(json_get_run(r, "", &json), REG_NOT_FOUND);
    assert_int_equal(json_get_run(r, "R0", &json), REG_NOT_FOUND);

    /* samples: validation, and a run that has not trained yet */
    uint8_t *png;
    size_t len;
    assert_int_equal(registry_sample_png(r, id, 0, 1, 2, &png, &len, &err), REG_INVALID);
    assert_string_equal(err.field, "n");
    assert_int_equal(registry_sample_png(r, id, 257, 1, 2, &png, &len, &err), REG_INVALID);
    assert_string_equal(err.field, "n");
    assert_int_equal(registry_sample_png(r, id, 4, 1, 9, &png, &len, &err), REG_INVALID);
    assert_string_equal(err.field, "scale");
    assert_int_equal(registry_sample_png(r, id, 4, 1, 2, &png, &len, &err), REG_CONFLICT);
    assert_non_null(strstr(err.message, "no generator yet (state queued)"));
    char path[PATH_MAX];
    assert_int_equal(registry_checkpoint_path(r, id, false, path, sizeof path), REG_NOT_FOUND);
    registry_close(r);
}

/* Shut down mid-run, reopen: the run resumes and no epoch appears twice. */
static void test_shutdown_and_resume(void **state)
{
    (void)state;
    char dir[PATH_MAX], id[64], path[PATH_MAX];
    new_state_dir(dir, sizeof dir);
    gand_registry *r = open_registry(dir, 0);
    create(r, "{" TINY ",\"epochs\":12,\"checkpoint_every\":1000,\"sample_every\":4}", id,
           sizeof id);
    start(r);
    wait_for(r, id, "running", 3);
    registry_shutdown(r);
    char st[32];
    int stopped_at;
    run_state(r, id, st, sizeof st, &stopped_at);
    assert_string_equal(st, "running"); /* on disk too: the next start resumes it */
    registry_close(r);
    run_file(path, sizeof path, dir, id, "run.json");
    uint8_t *data;
    size_t len;
    gan_error err;
    assert_int_equal(gan_read_file(path, &data, &len, 1 << 20, &err), 0);
    assert_non_null(strstr((char *)data, "\"state\":\t\"running\""));
    free(data);
    assert_true(stopped_at < 12);

    /* a crash after a metrics line but before a checkpoint leaves a line too many */
    run_file(path, sizeof path, dir, id, "metrics.jsonl");
    FILE *f = fopen(path, "a");
    fprintf(f,
            "{\"epoch\":%d,\"d_real\":1,\"d_fake\":1,\"d_loss\":2,\"g_loss\":1,\"d_x\":0.5,"
            "\"d_g_z\":0.5,\"seconds\":0.1,\"samples_per_sec\":1,\"lr_d\":0.001,"
            "\"lr_g\":0.001,\"batch_size\":64}\n{\"epoch\":",
            stopped_at + 1); /* and a torn line */
    fclose(f);

    r = open_registry(dir, 0);
    int epoch;
    run_state(r, id, st, sizeof st, &epoch);
    assert_string_equal(st, "queued");
    assert_int_equal(epoch, stopped_at);
    /* start-up cuts the torn line only; the whole one goes when that epoch is trained again */
    assert_int_equal(file_lines(path), stopped_at + 1);
    start(r);
    wait_for(r, id, "completed", 12);
    assert_int_equal(metrics_epochs(r, id), 12);
    assert_int_equal(file_lines(path), 12);

    uint64_t last;
    bool ended;
    char *ev = final_events(r, id, &last);
    int epochs[64];
    int n = event_epochs(ev, epochs, 64);
    assert_int_equal(n, 12);
    for (int i = 0; i < n; i++)
        assert_int_equal(epochs[i], i + 1);
    /* queued, running, (shutdown: no event), running, completed */
    assert_int_equal(count_of(ev, "event: state\n"), 4);
    free(ev);
    registry_close(r);

    /* a third open rebuilds the same numbering */
    r = open_registry(dir, 0);
    uint64_t last2;
    ev = all_events(r, id, &last2, &ended);
    assert_int_equal(last2, last);
    assert_true(ended);
    free(ev);
    cJSON *o = get_run(r, id);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "samples_epochs")), 3);
    cJSON_Delete(o);
    registry_close(r);
}

static void test_broken_run_dirs(void **state)
{
    (void)state;
    char dir[PATH_MAX], a[64], b[64], c[64], path[PATH_MAX];
    new_state_dir(dir, sizeof dir);
    gand_registry *r = open_registry(dir, 0);
    create(r, "{" TINY ",\"epochs\":2}", a, sizeof a);
    create(r, "{" TINY ",\"epochs\":2}", b, sizeof b);
    create(r, "{" TINY ",\"epochs\":2}", c, sizeof c);
    start(r);
    wait_for(r, c, "completed", 2);
    registry_close(r);

    /* a: checkpoint cut in half; c: run.json garbage */
    run_file(path, sizeof path, dir, a, "checkpoint.safetensors");
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size / 2), 0);
    run_file(path, sizeof path, dir, c, "run.json");
    FILE *f = fopen(path, "w");
    fputs("{\"id\": \"", f);
    fclose(f);
    /* and something that is no run at all */
    run_file(path, sizeof path, dir, "Not_A_Run", "");
    mkdir(path, 0755);

    r = open_registry(dir, 0);
    start(r);
    cJSON *o = get_run(r, a);
    assert_string_equal(cJSON_GetObjectItem(o, "state")->valuestring, "failed");
    assert_non_null(strstr(cJSON_GetObjectItem(o, "reason")->valuestring, "checkpoint"));
    cJSON_Delete(o);
    o = get_run(r, c);
    assert_string_equal(cJSON_GetObjectItem(o, "state")->valuestring, "failed");
    assert_non_null(strstr(cJSON_GetObjectItem(o, "reason")->valuestring, "run.json"));
    cJSON_Delete(o);
    char st[32];
    run_state(r, b, st, sizeof st, NULL);
    assert_string_equal(st, "completed");

    /* samples of a finished run after a restart come from its checkpoint */
    uint8_t *png;
    size_t len;
    gan_error err;
    assert_int_equal(registry_sample_png(r, b, 25, 7, 1, &png, &len, &err), REG_OK);
    assert_true(is_png(png, len));
    free(png);
    assert_int_equal(registry_sample_png(r, a, 25, 7, 1, &png, &len, &err), REG_CONFLICT);

    /* the corrupt run.json is kept as it was until the run is deleted */
    run_file(path, sizeof path, dir, c, "run.json");
    assert_int_equal(file_lines(path), 0);
    assert_int_equal(registry_delete_run(r, c, &err), REG_OK);
    assert_int_equal(registry_delete_run(r, a, &err), REG_OK);
    char *json;
    assert_int_equal(json_list_runs(r, &json), REG_OK);
    o = cJSON_Parse(json);
    free(json);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "runs")), 1);
    cJSON_Delete(o);
    registry_close(r);
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct waiter {
    gand_registry *r;
    const char *id;
    uint64_t after;
    char *text;
    double seconds;
} waiter;

static void *wait_events(void *arg)
{
    waiter *w = arg;
    uint64_t last;
    bool ended;
    double t0 = now_s();
    registry_events(w->r, w->id, w->after, 5000, &w->text, &last, &ended);
    w->seconds = now_s() - t0;
    return NULL;
}

static void test_events_wait(void **state)
{
    (void)state;
    char dir[PATH_MAX], id[64];
    new_state_dir(dir, sizeof dir);
    gand_registry *r = open_registry(dir, 0); /* no worker: the run stays queued */
    create(r, "{" TINY "}", id, sizeof id);

    char *text = (char *)"x";
    uint64_t last = 99;
    bool ended = true;
    double t0 = now_s(), c0 = thread_cpu_s();
    assert_int_equal(registry_events(r, id, 1, 200, &text, &last, &ended), REG_OK);
    double wall = now_s() - t0, cpu = thread_cpu_s() - c0;
    assert_null(text);
    assert_int_equal(last, 1);
    assert_false(ended);
    assert_true(wall >= 0.19 && wall < 0.6);
    assert_true(cpu < 0.02); /* slept on a condition variable, did not spin */

    /* a waiter wakes as soon as an event is published */
    waiter w = {r, id, 1, NULL, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_events, &w), 0);
    usleep(50000);
    control_ok(r, id, "pause", "paused");
    pthread_join(th, NULL);
    assert_non_null(w.text);
    assert_non_null(strstr(w.text, "id: 2\nevent: state\ndata: {\"state\":\"paused\""));
    assert_true(w.seconds < 1.0);
    free(w.text);

    assert_int_equal(registry_events(r, "nope", 0, 10, &text, &last, &ended), REG_NOT_FOUND);
    registry_close(r);
}

static void test_idle_heartbeat(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    new_state_dir(dir, sizeof dir);
    gand_registry *r = open_registry(dir, 0);
    char line[256];
    registry_status_line(r, line, sizeof line);
    assert_non_null(strstr(line, "not training"));
    start(r);
    uint64_t h0 = registry_heartbeat(r);
    usleep(1300000);
    assert_true(registry_heartbeat(r) > h0);
    registry_status_line(r, line, sizeof line);
    assert_non_null(strstr(line, "idle"));
    registry_close(r);
}

/* Wait until the worker has let go of every run (test-side polling). */
static void wait_idle(gand_registry *r)
{
    char line[256];
    for (int i = 0; i < 4000; i++) {
        registry_status_line(r, line, sizeof line);
        if (strncmp(line, "idle", 4) == 0)
            return;
        usleep(5000);
    }
    fail_msg("worker still busy: %s", line);
}

/* A file the run cannot write pauses it with the reason; after a fix it resumes intact. */
static void test_io_error_pauses(void **state)
{
    (void)state;
    char dir[PATH_MAX], id[64], path[PATH_MAX];
    new_state_dir(dir, sizeof dir);
    gand_registry *r = open_registry(dir, 0);
    create(r, "{" TINY ",\"epochs\":1000000,\"sample_every\":0,\"checkpoint_every\":1000}", id,
           sizeof id);
    start(r);
    wait_for(r, id, "running", 2);
    control_ok(r, id, "pause", "paused");
    wait_idle(r);
    int epoch;
    run_state(r, id, (char[32]){0}, 32, &epoch);

    /* metrics.jsonl becomes a directory: appending fails even for root */
    run_file(path, sizeof path, dir, id, "metrics.jsonl");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0755), 0);
    control_ok(r, id, "resume", "queued");
    wait_for(r, id, "paused", epoch + 1);
    cJSON *o = get_run(r, id);
    const char *reason = cJSON_GetObjectItem(o, "reason")->valuestring;
    assert_non_null(reason);
    assert_non_null(strstr(reason, "metrics.jsonl"));
    cJSON_Delete(o);
    uint64_t last;
    bool ended;
    char *ev = all_events(r, id, &last, &ended);
    /* the state shows before its event is added: wait for it (not for the first pause's) */
    const char *io_pause = "\"state\":\"paused\",\"reason\":\"cannot write";
    for (double t0 = now_s(); !strstr(ev, io_pause) && now_s() - t0 < 30;) {
        free(ev);
        usleep(5000);
        ev = all_events(r, id, &last, &ended);
    }
    assert_non_null(strstr(ev, io_pause));
    free(ev);

    /* the worker holds the model aside; once fixed, it writes the history it could not append */
    wait_idle(r);
    assert_int_equal(rmdir(path), 0);
    for (int i = 0; i < 2000 && file_lines(path) != epoch + 1; i++)
        usleep(5000);
    assert_int_equal(file_lines(path), epoch + 1);
    control_ok(r, id, "resume", "queued");
    wait_for(r, id, "running", epoch + 3);
    control_ok(r, id, "stop", "stopped");
    wait_idle(r);
    int n = metrics_epochs(r, id);
    assert_true(n >= epoch + 3);
    assert_int_equal(file_lines(path), n);
    o = get_run(r, id);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "reason")));
    cJSON_Delete(o);
    registry_close(r);
}

/* A run that cannot train fails with a reason; the next run trains. */
static void test_failed_run(void **state)
{
    (void)state;
    char dir[PATH_MAX], spare[PATH_MAX], a[64], b[64];
    new_state_dir(dir, sizeof dir);
    assert_true((size_t)snprintf(spare, sizeof spare, "%s-spare.idx3.gz", dir) < sizeof spare);
    uint8_t *data;
    size_t len;
    gan_error err;
    assert_int_equal(gan_read_file(data_path, &data, &len, 1 << 26, &err), 0);
    assert_int_equal(gan_write_file_atomic(spare, data, len, &err), 0);
    free(data);
    gand_registry *r = open_registry_with(dir, 0, spare);
    create(r, "{" TINY ",\"epochs\":2,\"dataset\":\"spare\"}", a, sizeof a);
    create(r, "{" TINY ",\"epochs\":2}", b, sizeof b);
    assert_int_equal(unlink(spare), 0); /* gone before the worker loads it */
    start(r);
    wait_for(r, b, "completed", 2);
    cJSON *o = get_run(r, a);
    assert_string_equal(cJSON_GetObjectItem(o, "state")->valuestring, "failed");
    assert_non_null(strstr(cJSON_GetObjectItem(o, "reason")->valuestring, "spare.idx3.gz"));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "finished_at")));
    cJSON_Delete(o);
    uint64_t last;
    char *ev = final_events(r, a, &last);
    assert_non_null(strstr(ev, "event: state\ndata: {\"state\":\"failed\""));
    free(ev);
    control_conflict(r, a, "resume", "cannot resume a run that is failed");
    assert_int_equal(registry_delete_run(r, a, &err), REG_OK);
    registry_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_completes),
        cmocka_unit_test(test_queue_order),
        cmocka_unit_test(test_transitions),
        cmocka_unit_test(test_completed_resume_after_raising_epochs),
        cmocka_unit_test(test_patch),
        cmocka_unit_test(test_invalid_create),
        cmocka_unit_test(test_shutdown_and_resume),
        cmocka_unit_test(test_broken_run_dirs),
        cmocka_unit_test(test_events_wait),
        cmocka_unit_test(test_idle_heartbeat),
        cmocka_unit_test(test_io_error_pauses),
        cmocka_unit_test(test_failed_run),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
