/*
 * daemon/registry.h — the run registry: every run the daemon knows, its
 * persistence under the state directory, and the one worker thread that owns
 * the backend and trains the active run.
 *
 * Threads: every function here may be called from any request thread; they
 * take the registry lock briefly and never wait on training (the worker
 * checks its mailbox between iterations and publishes host copies of what
 * requests read). Request threads never touch the backend.
 *
 * Returned strings and buffers are malloc'd and owned by the caller. JSON
 * shapes (the HTTP API returns them as they are):
 *
 *   run    {"id","state","reason"(string|null),"config"{...gan_config...},
 *           "epoch" (completed), "iteration", "iterations_per_epoch",
 *           "last_metrics" (epoch record|null), "created_at","started_at",
 *           "updated_at","finished_at" (RFC 3339 UTC strings|null),
 *           "queue_position" (int|null), "device" (string|null),
 *           "samples_epochs" [epochs with a saved grid], "checkpoint_epoch" (int|null)}
 *   list   {"runs":[run...]}
 *   epoch  {"epoch","d_real","d_fake","d_loss","g_loss","d_x","d_g_z",
 *           "seconds","samples_per_sec","lr_d","lr_g","batch_size"}
 *   metrics {"run":id,"since":N,"epochs":[epoch...]}
 *   patch answer {"run":run,"changed":[names],"applies":{"name":"next_iteration"|
 *           "next_epoch"|"now"},"event_seq":N}
 *
 * Events (SSE): each run has a sequence of events numbered from 1, kept in
 * memory for the process's life and rebuilt on start-up from metrics.jsonl
 * and events.jsonl: "epoch" (data = epoch record), "state" (data =
 * {"state","reason","epoch","at"}), "config" (data = {"changed":{...},
 * "applies":{...},"at"}).
 */
#ifndef GAND_DAEMON_REGISTRY_H
#define GAND_DAEMON_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gan/error.h"
#include "kernels/backend.h"

typedef struct gand_registry gand_registry;

typedef enum reg_status {
    REG_OK = 0,
    REG_INVALID,   /* bad input: 400/422 (err says which field) */
    REG_NOT_FOUND, /* unknown run or epoch: 404 */
    REG_CONFLICT,  /* transition not allowed in this state: 409 */
    REG_LIMIT,     /* a configured limit was hit: 429/507 (err says which) */
    REG_INTERNAL,  /* I/O or device failure: 500 (err says what) */
} reg_status;

typedef struct gand_dataset_entry {
    char name[64];
    char path[1024];
} gand_dataset_entry;

typedef struct registry_options {
    const char *state_dir;        /* runs/ lives under it; created if missing */
    const char *device;           /* "auto" | "cpu" | "cuda": opened by the worker */
    const gand_dataset_entry *datasets;
    int dataset_count;
    int max_runs;                 /* runs kept (0 = unlimited) */
    int max_sample_n;             /* largest n of samples.png (≤ 1024) */
} registry_options;

/* Load every run under state_dir/runs; open the backend. Does not start training. */
gand_registry *registry_open(const registry_options *opt, gan_error *err);
/* Start the worker thread (queued and interrupted runs start training). */
int registry_start(gand_registry *r, gan_error *err);
/*
 * Stop: the active run checkpoints at its next iteration boundary and stays
 * "running" on disk, so the next start resumes it; then the worker exits.
 */
void registry_shutdown(gand_registry *r);
void registry_close(gand_registry *r);

/* Backend in use: name ("cpu"/"cuda"), device description, and why it was picked. */
void registry_backend_info(gand_registry *r, char *name, size_t nlen, char *device,
                           size_t dlen, char *why, size_t wlen);
/* Worker heartbeat: increases while the worker is alive and not stuck (for the watchdog). */
uint64_t registry_heartbeat(gand_registry *r);
/* One-line status for systemd STATUS= ("training run X epoch 3/500", "idle, 2 runs"). */
void registry_status_line(gand_registry *r, char *buf, size_t len);

reg_status registry_create_run(gand_registry *r, const char *body, size_t len, char **run_json,
                               char *id_out, size_t id_len, gan_error *err);
reg_status registry_list_runs(gand_registry *r, char **json);
reg_status registry_get_run(gand_registry *r, const char *id, char **json);
reg_status registry_patch_run(gand_registry *r, const char *id, const char *body, size_t len,
                              char **answer_json, gan_error *err);
/* action: "pause" | "resume" | "stop"; answer = run */
reg_status registry_control(gand_registry *r, const char *id, const char *action,
                            char **run_json, gan_error *err);
/* Only a run that is not queued, running or paused may be deleted. */
reg_status registry_delete_run(gand_registry *r, const char *id, gan_error *err);
reg_status registry_metrics(gand_registry *r, const char *id, int since, char **json);

/*
 * Events with sequence number > after, formatted as SSE text ("id: N\nevent:
 * K\ndata: {...}\n\n" each). Waits up to timeout_ms for at least one when
 * there is none (condition variable, no polling). *text = NULL when none
 * arrived; *last = the highest sequence included; *ended = the run reached a
 * final state and every event has been delivered.
 */
reg_status registry_events(gand_registry *r, const char *id, uint64_t after, int timeout_ms,
                           char **text, uint64_t *last, bool *ended);

/* samples.png from the latest published G snapshot, rendered on the CPU. */
reg_status registry_sample_png(gand_registry *r, const char *id, int n, uint64_t seed,
                               int scale, uint8_t **png, size_t *len, gan_error *err);
/* Path of the fixed-noise grid saved at an epoch (404 when none was saved). */
reg_status registry_epoch_png_path(gand_registry *r, const char *id, int epoch, char *path,
                                   size_t len);
/* Path of the run's latest checkpoint (404 before the first one). */
reg_status registry_checkpoint_path(gand_registry *r, const char *id, char *path, size_t len);

/* {"datasets":[{"name","images","rows","cols","path"?}]} */
reg_status registry_datasets(gand_registry *r, char **json);

/* Prometheus text of the runs (gand_epochs_total, gand_run_state, gand_run_loss...). */
reg_status registry_prometheus(gand_registry *r, char **text);

#endif
