#include "daemon/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int threshold = GAND_LOG_INFO;

static const char *const names[] = {[GAND_LOG_ERR] = "err",
                                    [GAND_LOG_WARNING] = "warning",
                                    [GAND_LOG_NOTICE] = "notice",
                                    [GAND_LOG_INFO] = "info",
                                    [GAND_LOG_DEBUG] = "debug"};

static _Thread_local int holds; /* registry locks this thread holds (reg_lock) */

void log_hold_begin(void)
{
    holds++;
}

void log_hold_end(void)
{
    holds--;
}

/* GAND_CHECK_LOCKS=1: logging under the registry lock is a bug the tests must see. */
static bool check_locks(void)
{
    static atomic_int checked = -1;
    int v = atomic_load(&checked);
    if (v < 0) {
        const char *e = getenv("GAND_CHECK_LOCKS");
        v = e && strcmp(e, "1") == 0;
        atomic_store(&checked, v);
    }
    return v;
}

void gand_log(int level, const char *fmt, ...)
{
    if (holds > 0 && check_locks()) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        char line[700];
        int n =
            snprintf(line, sizeof line,
                     "<2>gand: logged with the registry lock held (GAND_CHECK_LOCKS=1): %s\n", msg);
        ssize_t w = write(STDERR_FILENO, line, n > 0 && (size_t)n < sizeof line ? (size_t)n : 0);
        (void)w;
        abort();
    }
    if (level > atomic_load(&threshold))
        return;
    char line[2048];
    int off = snprintf(line, sizeof line, "<%d>", level);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + off, sizeof line - (size_t)off - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)off + (n < 0 ? 0 : (size_t)n);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    /* one line per message: newlines inside become spaces */
    for (size_t i = (size_t)off; i < len; i++)
        if (line[i] == '\n')
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;

void gand_log_limited(gand_log_limit *lim, int level, const char *fmt, ...)
{
    if (level > atomic_load(&threshold))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    pthread_mutex_lock(&limit_lock);
    if (lim->next_ms && now < lim->next_ms) {
        lim->suppressed++;
        pthread_mutex_unlock(&limit_lock);
        return;
    }
    unsigned long left_out = lim->suppressed;
    lim->suppressed = 0;
    lim->next_ms = now + GAND_LOG_LIMIT_S * 1000LL;
    pthread_mutex_unlock(&limit_lock);
    char text[1900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (left_out)
        gand_log(level,
                 "%s (and %lu more like it since the last one, not logged: at most one a %d s)",
                 text, left_out, GAND_LOG_LIMIT_S);
    else
        gand_log(level, "%s", text);
}

void gand_log_set_level(int level)
{
    atomic_store(&threshold, level);
}

int gand_log_get_level(void)
{
    return atomic_load(&threshold);
}

int gand_log_level_from_name(const char *name)
{
    for (int i = GAND_LOG_ERR; i <= GAND_LOG_DEBUG; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

const char *gand_log_level_name(int level)
{
    return level >= GAND_LOG_ERR && level <= GAND_LOG_DEBUG ? names[level] : "info";
}
