/*
 * daemon/slurm_tools.c — Slurm's client tools as the Slurm executor uses them:
 * a command run with a deadline (never a hang), and what scontrol, squeue and
 * scancel say or do about one job.
 */
#include "daemon/slurm_tools.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- running Slurm's commands -------------------------------------------- */

/* Run argv (argv[0] looked up in PATH) with a deadline; never hangs. 0 when it exited 0. */
int run_cmd(int timeout_s, char *const argv[], cmd_result *res)
{
    res->status = -1;
    res->timed_out = false;
    res->out[0] = '\0';
    int fd[2];
    if (pipe2(fd, O_CLOEXEC) != 0) {
        snprintf(res->out, sizeof res->out, "cannot run %s: %s", argv[0], strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        snprintf(res->out, sizeof res->out, "cannot run %s: %s", argv[0], strerror(errno));
        return -1;
    }
    if (pid == 0) { /* only async-signal-safe calls from here on */
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fd[1], 1);
        dup2(fd[1], 2);
        closefrom(3);
        execvp(argv[0], argv);
        const char msg[] = "cannot execute the command: not found or not executable\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    close(fd[1]);
    size_t used = 0;
    int64_t deadline = mono_ms() + (int64_t)timeout_s * 1000;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            res->timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd p = {fd[0], POLLIN, 0};
        int n = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        char buf[4096];
        ssize_t got = read(fd[0], buf, sizeof buf);
        if (got <= 0)
            break;
        size_t take =
            (size_t)got < sizeof res->out - 1 - used ? (size_t)got : sizeof res->out - 1 - used;
        memcpy(res->out + used, buf, take);
        used += take;
    }
    close(fd[0]);
    res->out[used] = '\0';
    while (used > 0 && (res->out[used - 1] == '\n' || res->out[used - 1] == ' '))
        res->out[--used] = '\0';
    for (char *c = res->out; *c; c++) /* one line for a reason */
        if (*c == '\n')
            *c = ' ';
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (!res->timed_out && WIFEXITED(ws))
        res->status = WEXITSTATUS(ws);
    return res->status == 0 ? 0 : -1;
}

/* What went wrong with a command, for a reason or a log line. */
void cmd_failure(int timeout_s, const char *what, const cmd_result *res, char *buf, size_t len)
{
    if (res->timed_out)
        snprintf(buf, len, "%s did not answer within %d s (is slurmctld up?)", what, timeout_s);
    else
        snprintf(buf, len, "%s failed (exit status %d): %s", what, res->status,
                 res->out[0] ? res->out : "no output");
}

/* ---- how Slurm sees a job ------------------------------------------------ */

bool slurm_state_final(const char *s)
{
    const char *const final[] = {"COMPLETED",     "FAILED",    "CANCELLED", "TIMEOUT",
                                 "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
                                 "PREEMPTED",     "REVOKED"};
    for (size_t i = 0; i < sizeof final / sizeof final[0]; i++)
        if (strcmp(s, final[i]) == 0)
            return true;
    return false;
}

/* The value of KEY= in scontrol's one-line output (up to the next space). */
static void field(const char *out, const char *key, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t k = strlen(key);
    for (const char *p = out; (p = strstr(p, key)); p += k) {
        if ((p == out || p[-1] == ' ') && p[k] == '=') {
            const char *v = p + k + 1;
            size_t n = strcspn(v, " ");
            snprintf(buf, len, "%.*s", (int)n, v);
            return;
        }
    }
}

void job_query(int timeout_s, long id, slurm_job *j)
{
    memset(j, 0, sizeof *j);
    char ids[24];
    snprintf(ids, sizeof ids, "%ld", id);
    char *argv[] = {"scontrol", "-o", "show", "job", ids, NULL};
    cmd_result *res = malloc(sizeof *res);
    if (!res) {
        snprintf(j->error, sizeof j->error, "out of memory");
        return;
    }
    if (run_cmd(timeout_s, argv, res) != 0) {
        if (!res->timed_out && strstr(res->out, "Invalid job id")) {
            j->answered = true; /* gone: ended longer ago than MinJobAge */
        } else {
            cmd_failure(timeout_s, "scontrol show job", res, j->error, sizeof j->error);
        }
        free(res);
        return;
    }
    j->answered = j->known = true;
    field(res->out, "JobState", j->state, sizeof j->state);
    field(res->out, "Reason", j->reason, sizeof j->reason);
    field(res->out, "ExitCode", j->exit_code, sizeof j->exit_code);
    field(res->out, "BatchHost", j->node, sizeof j->node);
    if (!j->node[0] || strcmp(j->node, "(null)") == 0)
        field(res->out, "NodeList", j->node, sizeof j->node);
    if (strcmp(j->node, "(null)") == 0)
        j->node[0] = '\0';
    char rc[16];
    field(res->out, "Restarts", rc, sizeof rc);
    j->restarts = atoi(rc);
    free(res);
}

/* The job id of a live job named `name` (0: none; -1: Slurm did not answer). */
long job_by_name(int timeout_s, const char *name)
{
    char *argv[] = {"squeue", "-h", "-n", (char *)name, "-o", "%i", NULL};
    cmd_result *res = malloc(sizeof *res);
    if (!res)
        return -1;
    long id = run_cmd(timeout_s, argv, res) == 0 ? atol(res->out) : -1;
    free(res);
    return id;
}

/* Tell a running job (its batch shell is gand itself) to read control.json now. */
void nudge(int timeout_s, long id)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%ld", id);
    char *argv[] = {"scancel", "--batch", "--signal=USR1", ids, NULL};
    cmd_result *res = malloc(sizeof *res);
    if (res && run_cmd(timeout_s, argv, res) != 0)
        log_debug("scancel --signal=USR1 %s: %s", ids, res->out);
    free(res);
}

int cancel_job(int timeout_s, long id, char *why, size_t len)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%ld", id);
    char *argv[] = {"scancel", ids, NULL};
    cmd_result *res = malloc(sizeof *res);
    if (!res)
        return -1;
    int rc = run_cmd(timeout_s, argv, res);
    if (rc != 0)
        cmd_failure(timeout_s, "scancel", res, why, len);
    free(res);
    return rc;
}
