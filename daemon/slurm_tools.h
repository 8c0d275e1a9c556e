/*
 * daemon/slurm_tools.h — Slurm's client tools (sbatch, scontrol, squeue,
 * scancel) as the Slurm executor uses them (slurm_tools.c). Every call
 * returns within timeout_s seconds.
 */
#ifndef GAND_DAEMON_SLURM_TOOLS_H
#define GAND_DAEMON_SLURM_TOOLS_H

#include <stdbool.h>
#include <stddef.h>

enum { CMD_OUTPUT_MAX = 16384 };

typedef struct cmd_result {
    int status;               /* exit status; -1: it did not run or was killed */
    bool timed_out;           /* killed after command_timeout_s */
    char out[CMD_OUTPUT_MAX]; /* stdout and stderr together, NUL-terminated, trimmed */
} cmd_result;

typedef struct slurm_job {
    bool known;     /* scontrol knows the job */
    bool answered;  /* scontrol answered at all */
    char state[24]; /* JobState: PENDING, RUNNING, COMPLETED, CANCELLED, ... */
    char reason[128];
    char exit_code[16]; /* "status:signal" */
    char node[64];
    int restarts;
    char error[600]; /* when !answered */
} slurm_job;

/* Run argv (argv[0] looked up in PATH) with a deadline; never hangs. 0 when it exited 0. */
int run_cmd(int timeout_s, char *const argv[], cmd_result *res);
/* What went wrong with a command, for a reason or a log line. */
void cmd_failure(int timeout_s, const char *what, const cmd_result *res, char *buf, size_t len);
/* Whether a JobState is one a job leaves only by being requeued. */
bool slurm_state_final(const char *s);
/* `scontrol -o show job ID`, parsed. */
void job_query(int timeout_s, long id, slurm_job *j);
/* The job id of a live job named `name` (0: none; -1: Slurm did not answer). */
long job_by_name(int timeout_s, const char *name);
/* Tell a running job (its batch shell is gand itself) to read control.json now. */
void nudge(int timeout_s, long id);
/* scancel ID; -1 with why on failure. */
int cancel_job(int timeout_s, long id, char *why, size_t len);

#endif
