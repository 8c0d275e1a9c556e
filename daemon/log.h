/*
 * daemon/log.h — logging to stderr with syslog priority prefixes ("<3>...")
 * so systemd's journal keeps each line's level. Thread-safe (one write(2)
 * per line). The level threshold can change at run time (SIGHUP).
 */
#ifndef GAND_DAEMON_LOG_H
#define GAND_DAEMON_LOG_H

enum gand_log_level {
    GAND_LOG_ERR = 3,
    GAND_LOG_WARNING = 4,
    GAND_LOG_NOTICE = 5,
    GAND_LOG_INFO = 6,
    GAND_LOG_DEBUG = 7,
};

void gand_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gand_log_set_level(int level);
int gand_log_get_level(void);
/* "err", "warning", "notice", "info", "debug" → level; -1 when unknown. */
int gand_log_level_from_name(const char *name);
const char *gand_log_level_name(int level);

/*
 * A line a client can cause again and again (a refused token, a closed slow
 * connection, a 5xx): at most one per GAND_LOG_LIMIT_S per limiter, and the
 * next one that is logged says how many were left out meanwhile. One static
 * limiter per kind of message; thread-safe.
 */
enum { GAND_LOG_LIMIT_S = 10 };
typedef struct gand_log_limit {
    long long next_ms;        /* monotonic time before which lines are counted, not logged */
    unsigned long suppressed; /* lines counted since the last one logged */
} gand_log_limit;
void gand_log_limited(gand_log_limit *lim, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The registry's lock is no place to log: reg_lock and reg_unlock
 * (daemon/registry_internal.h) count, per thread, the locks held, and with
 * GAND_CHECK_LOCKS=1 in the environment (the test suite sets it) a message
 * logged while one is held aborts the process, naming the message.
 */
void log_hold_begin(void);
void log_hold_end(void);

#define log_err(...) gand_log(GAND_LOG_ERR, __VA_ARGS__)
#define log_warning(...) gand_log(GAND_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) gand_log(GAND_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) gand_log(GAND_LOG_INFO, __VA_ARGS__)
#define log_debug(...) gand_log(GAND_LOG_DEBUG, __VA_ARGS__)

#endif
