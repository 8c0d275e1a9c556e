/*
 * daemon/settings.h — the daemon's settings: gand.conf (INI, read with
 * libinih) overlaid by command-line flags.
 *
 * Precedence: built-in defaults < the config file < flags. The config file is
 * --config FILE when given (it must exist), else GAND_INSTALL_SYSCONFDIR/gand.conf
 * when that exists, else none. Every bad value is reported as one line that
 * names where it came from (file and line, or the flag), the key and what is
 * allowed; callers print it and exit 2.
 *
 * Some settings can change while the daemon runs (SIGHUP re-reads the file,
 * flags still win); the rest need a restart. settings_diff says which is which.
 *
 * Not thread-safe: the main thread owns these structs; the API gets copies of
 * the live limits through its own atomics.
 */
#ifndef GAND_DAEMON_SETTINGS_H
#define GAND_DAEMON_SETTINGS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/registry.h"

enum { GAND_MAX_DATASETS = 32 };

typedef struct gand_limits {
    long max_body_bytes;        /* request bodies larger than this get 413 (live) */
    int max_connections;        /* concurrent HTTP connections (restart) */
    int max_connections_per_ip; /* of them from one client address, 0 = no cap (restart) */
    int connection_timeout_s;   /* idle connection timeout, 0 = none (restart) */
    int header_timeout_s;       /* a request's headers must arrive within it, 0 = none (restart) */
    int body_timeout_s;         /* and its body within this after them, 0 = none (restart) */
    int max_event_streams;      /* concurrent SSE streams, more get 429 (live) */
    int max_sample_n;           /* largest n of samples.png (live) */
    int max_runs;               /* runs kept in the state dir, 0 = unlimited (restart) */
} gand_limits;

typedef struct gand_settings {
    char config_path[PATH_MAX]; /* file read, "" when running on built-in defaults */
    char listen[300];           /* as written: "127.0.0.1:8080", "[::1]:8080" */
    char listen_host[256];      /* parsed from listen, without brackets */
    int listen_port;            /* 0..65535; 0 = any free port */
    char state_dir[PATH_MAX];
    char device[8];                /* "auto" | "cpu" | "cuda" */
    int log_level;                 /* GAND_LOG_* */
    char web_dir[PATH_MAX];        /* dashboard files; "" when none was found */
    char javascript_dir[PATH_MAX]; /* system JavaScript libraries (/javascript/); "" = none */
    char token_file[PATH_MAX];     /* bearer token for the API; "" = no authentication */
    bool public_reads;             /* with a token: GET/HEAD need none (writes still do) */
    char allowed_hosts[1024]; /* host names a request's Host may carry, besides IPs and localhost */
    int http_threads;         /* libmicrohttpd's thread pool, 0 = from the CPU count (restart) */
    gand_limits limits;
    char tls_cert[PATH_MAX]; /* [tls] PEM certificate (chain); "" = plain HTTP */
    char tls_key[PATH_MAX];  /* [tls] its PEM private key */
    gand_dataset_entry datasets[GAND_MAX_DATASETS];
    int dataset_count;
    char executor[8];         /* [executor] kind: "local" (the worker thread) | "slurm" */
    gand_slurm_options slurm; /* [executor]'s other keys, for kind = slurm */
} gand_settings;

/* The command-line part, kept so that a reload can lay the flags over the file again. */
typedef struct gand_flags {
    const char *config;
    const char *listen;
    const char *state_dir;
    const char *device;
    const char *log_level;
    const char *web_dir;
    const char *javascript_dir;
    const char *token_file;
    const char *data[GAND_MAX_DATASETS]; /* "NAME=PATH" as given */
    int data_count;
} gand_flags;

/* The built-in defaults (state_dir: $STATE_DIRECTORY when systemd sets it, else /var/lib/gand). */
void settings_defaults(gand_settings *s);

/*
 * Build the settings: defaults, then the config file the flags name (or the
 * default one), then the flags. Returns 0, or -1 with a one-line message in
 * err ("FILE:LINE: [section] key: must be ..., got '...'").
 */
int settings_load(gand_settings *s, const gand_flags *flags, char *err, size_t err_len);

/*
 * What changed from old to new: a comma-separated list of the settings
 * applied live and of those that need a restart (each "" when none).
 */
void settings_diff(const gand_settings *old_s, const gand_settings *new_s, char *live,
                   size_t live_len, char *restart, size_t restart_len);

/* Parse "HOST:PORT" or "[V6]:PORT" into host and port; -1 with a message when malformed. */
int settings_parse_listen(const char *value, char *host, size_t host_len, int *port, char *err,
                          size_t err_len);

/* The default config file path (compile-time: GAND_INSTALL_SYSCONFDIR/gand.conf). */
const char *settings_default_config_path(void);

#endif
