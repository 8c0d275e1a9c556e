/*
 * daemon/executor.h — how queued runs get executed: the interface between the
 * registry (the run table, its files and its state machine) and whatever
 * trains the runs.
 *
 * The registry owns every run's state; an executor takes queued runs, trains
 * them, and reports through the registry's own functions (set_state, the run
 * store, events), exactly as a request thread would. All three calls are made
 * by the registry: start once from registry_start, wake_locked (with
 * reg->lock held) whenever there may be new work — a run queued, resumed,
 * patched, paused or stopped, an evaluation queued — and stop once from
 * registry_shutdown, after reg->shutdown was set, to checkpoint what is
 * running and return when nothing is. Two exist: `local`
 * (executor_local.c), one worker thread that owns the compute backend, and
 * `slurm` (executor_slurm.c), which submits each queued run as a Slurm job and
 * follows it through the run's directory and Slurm's own tools.
 */
#ifndef GAND_DAEMON_EXECUTOR_H
#define GAND_DAEMON_EXECUTOR_H

#include "daemon/registry.h"

typedef struct gand_executor_ops {
    const char *name;
    /* Begin taking queued runs; 0, or -1 with err (e.g. no compute device). */
    int (*start)(gand_registry *reg, gan_error *err);
    /* There may be new work (reg->lock held). */
    void (*wake_locked)(gand_registry *reg);
    /* Checkpoint and let go of every run it holds; return when done. */
    void (*stop)(gand_registry *reg);
} gand_executor_ops;

/* The worker thread of this process (executor_local.c). */
extern const gand_executor_ops gand_executor_local;
/* Slurm jobs that run `gand train --job` on each run's directory (executor_slurm.c). */
extern const gand_executor_ops gand_executor_slurm;

#endif
