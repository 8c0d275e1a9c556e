/*
 * daemon/settings.c — gand.conf and the serve flags.
 *
 * One table (keys[]) describes every key of every section: its type, range,
 * where it lives in gand_settings and whether SIGHUP applies it. Parsing,
 * error messages, the "allowed keys" list and settings_diff all read that
 * table, so a new setting is one struct member plus one row.
 *
 * libinih calls the handler once per key; it returns the line of the first
 * error, and the handler keeps the message of the first error, so the two
 * belong together. The handler refuses a key given twice: with inih's default
 * multi-line support an indented line continues the previous key, and that
 * is almost always a mistake in a daemon's config.
 */
#include "daemon/settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include "daemon/log.h"
#include "daemon/paths.h"

#ifndef GAND_INSTALL_SYSCONFDIR
#define GAND_INSTALL_SYSCONFDIR "/etc/gand"
#endif
#ifndef GAND_INSTALL_WEBDIR
#define GAND_INSTALL_WEBDIR ""
#endif
#ifndef GAND_SOURCE_WEBDIR
#define GAND_SOURCE_WEBDIR ""
#endif

/* K_FILE: a file path, "" = none (the default); K_BOOL: true/false, yes/no, on/off, 1/0 */
typedef enum key_kind {
    K_LISTEN,
    K_PATH,
    K_DEVICE,
    K_LOG_LEVEL,
    K_INT,
    K_LONG,
    K_FILE,
    K_BOOL,
    K_HOSTS,
    K_EXECUTOR, /* local | slurm */
    K_STRING    /* one line of printable text; max is its buffer's size ("" = none) */
} key_kind;

typedef struct key_desc {
    const char *section;
    const char *name;
    key_kind kind;
    size_t offset; /* into gand_settings */
    long min, max;
    bool live; /* SIGHUP applies it */
    const char *zero_means;
} key_desc;

#define OFF(m) offsetof(gand_settings, m)
#define SLURM_SIZE(m) ((long)sizeof(((gand_slurm_options *)0)->m))

static const key_desc keys[] = {
    {"server", "listen", K_LISTEN, OFF(listen), 0, 0, false, NULL},
    {"server", "state_dir", K_PATH, OFF(state_dir), 0, 0, false, NULL},
    {"server", "device", K_DEVICE, OFF(device), 0, 0, false, NULL},
    {"server", "log_level", K_LOG_LEVEL, OFF(log_level), 0, 0, true, NULL},
    {"server", "web_dir", K_PATH, OFF(web_dir), 0, 0, false, NULL},
    {"server", "javascript_dir", K_PATH, OFF(javascript_dir), 0, 0, false, NULL},
    /* the token file is re-read on SIGHUP; see cmd/serve.c's reload */
    {"server", "token_file", K_FILE, OFF(token_file), 0, 0, true, NULL},
    {"server", "public_reads", K_BOOL, OFF(public_reads), 0, 0, true, NULL},
    {"server", "allowed_hosts", K_HOSTS, OFF(allowed_hosts), 0, 0, false, NULL},
    {"server", "http_threads", K_INT, OFF(http_threads), 0, 256, false, "one per CPU, 4..16"},
    {"limits", "max_body_bytes", K_LONG, OFF(limits.max_body_bytes), 1024, 1L << 30, true, NULL},
    {"limits", "max_connections", K_INT, OFF(limits.max_connections), 2, 10000, false, NULL},
    {"limits", "max_connections_per_ip", K_INT, OFF(limits.max_connections_per_ip), 0, 10000, false,
     "no cap"},
    {"limits", "connection_timeout_s", K_INT, OFF(limits.connection_timeout_s), 0, 86400, false,
     "no timeout"},
    {"limits", "header_timeout_s", K_INT, OFF(limits.header_timeout_s), 0, 3600, false,
     "no deadline"},
    {"limits", "body_timeout_s", K_INT, OFF(limits.body_timeout_s), 0, 86400, false, "no deadline"},
    {"limits", "max_event_streams", K_INT, OFF(limits.max_event_streams), 0, 10000, true,
     "no event streams"},
    {"limits", "max_sample_n", K_INT, OFF(limits.max_sample_n), 1, 1024, true, NULL},
    {"limits", "max_runs", K_INT, OFF(limits.max_runs), 0, 1000000, false, "unlimited"},
    {"tls", "tls_cert", K_FILE, OFF(tls_cert), 0, 0, false, NULL},
    {"tls", "tls_key", K_FILE, OFF(tls_key), 0, 0, false, NULL},
    {"executor", "kind", K_EXECUTOR, OFF(executor), 0, 0, false, NULL},
    {"executor", "partition", K_STRING, OFF(slurm.partition), 0, SLURM_SIZE(partition), false,
     NULL},
    {"executor", "gres", K_STRING, OFF(slurm.gres), 0, SLURM_SIZE(gres), false, NULL},
    {"executor", "time_limit", K_STRING, OFF(slurm.time_limit), 0, SLURM_SIZE(time_limit), false,
     NULL},
    {"executor", "account", K_STRING, OFF(slurm.account), 0, SLURM_SIZE(account), false, NULL},
    {"executor", "sbatch_args", K_STRING, OFF(slurm.sbatch_args), 0, SLURM_SIZE(sbatch_args), false,
     NULL},
    {"executor", "gand_bin", K_FILE, OFF(slurm.gand_bin), 0, 0, false, NULL},
    {"executor", "poll_ms", K_INT, OFF(slurm.poll_ms), 100, 600000, false, NULL},
    {"executor", "signal_s", K_INT, OFF(slurm.signal_s), 10, 86400, false, NULL},
    {"executor", "command_timeout_s", K_INT, OFF(slurm.command_timeout_s), 1, 600, false, NULL},
};
enum { N_KEYS = sizeof keys / sizeof keys[0] };

static const char *const device_names[] = {"auto", "cpu", "cuda"};

const char *settings_default_config_path(void)
{
    return GAND_INSTALL_SYSCONFDIR "/gand.conf";
}

static void find_web_dir(char *out, size_t len)
{
    const char *dirs[] = {getenv("GAND_WEBDIR"), GAND_INSTALL_WEBDIR, GAND_SOURCE_WEBDIR};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (!dirs[i] || !dirs[i][0] || access(dirs[i], R_OK | X_OK) != 0)
            continue;
        snprintf(out, len, "%s", dirs[i]);
        return;
    }
}

void settings_defaults(gand_settings *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->listen, sizeof s->listen, "127.0.0.1:8080");
    snprintf(s->listen_host, sizeof s->listen_host, "127.0.0.1");
    s->listen_port = 8080;
    const char *sd = getenv("STATE_DIRECTORY"); /* systemd's StateDirectory= */
    if (sd && sd[0] && !strchr(sd, ':'))
        snprintf(s->state_dir, sizeof s->state_dir, "%s", sd);
    else
        snprintf(s->state_dir, sizeof s->state_dir, "/var/lib/gand");
    snprintf(s->device, sizeof s->device, "auto");
    s->log_level = GAND_LOG_INFO;
    find_web_dir(s->web_dir, sizeof s->web_dir);
    /* Debian's libjs-* packages (the dashboard takes Chart.js from libjs-chart.js) */
    if (access("/usr/share/javascript", R_OK | X_OK) == 0)
        snprintf(s->javascript_dir, sizeof s->javascript_dir, "/usr/share/javascript");
    s->limits.max_body_bytes = 1L << 20;
    s->limits.max_connections = 256;
    s->limits.max_connections_per_ip = 64;
    s->limits.connection_timeout_s = 60;
    s->limits.header_timeout_s = 10;
    s->limits.body_timeout_s = 60;
    s->limits.max_event_streams = 16;
    s->limits.max_sample_n = 1024;
    s->limits.max_runs = 1000;
    snprintf(s->executor, sizeof s->executor, "local");
    snprintf(s->slurm.gres, sizeof s->slurm.gres, "gpu:1");
    s->slurm.poll_ms = 1000;
    s->slurm.signal_s = 120;
    s->slurm.command_timeout_s = 30;
    /* The bundled sets, "mnist" first even when its file is missing (settings_load then
     * says so); a [datasets] line or --data NAME=PATH may replace a path. Holdouts and
     * test files are resolved by settings_load: see resolve_datasets. */
    for (int i = 0; i < gand_bundled_dataset_count; i++) {
        const gand_bundled_dataset *b = &gand_bundled_datasets[i];
        gand_dataset_entry *d = &s->datasets[s->dataset_count];
        if (gand_data_file(b->images, d->path, sizeof d->path) != 0) {
            if (i > 0)
                continue;
            d->path[0] = '\0';
        }
        snprintf(d->name, sizeof d->name, "%s", b->name);
        d->holdout = -1;
        s->dataset_count++;
    }
}

int settings_parse_listen(const char *value, char *host, size_t host_len, int *port, char *err,
                          size_t err_len)
{
    const char *colon;
    size_t hlen;
    const char *h = value;
    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        if (!close || close[1] != ':') {
            snprintf(err, err_len, "must be HOST:PORT or [IPV6]:PORT, got '%s'", value);
            return -1;
        }
        h = value + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(value, ':');
        if (!colon || strchr(value, ':') != colon) {
            snprintf(err, err_len, "must be HOST:PORT or [IPV6]:PORT, got '%s'", value);
            return -1;
        }
        hlen = (size_t)(colon - value);
    }
    if (hlen == 0 || hlen >= host_len) {
        snprintf(err, err_len, "must name a host (e.g. 127.0.0.1:8080), got '%s'", value);
        return -1;
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535) {
        snprintf(err, err_len, "port must be an integer in 0..65535 (0 = any free port), got '%s'",
                 colon + 1);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

/* ---- one key ------------------------------------------------------------------------------- */

static const key_desc *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static void keys_of(const char *section, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_KEYS && used < len; i++)
        if (strcmp(keys[i].section, section) == 0)
            used +=
                (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", keys[i].name);
}

/* Resolve a path relative to base_dir (the config file's directory) unless absolute. */
static int resolve_path(const char *value, const char *base_dir, char *out, size_t len)
{
    int n;
    if (value[0] == '/' || !base_dir || !base_dir[0])
        n = snprintf(out, len, "%s", value);
    else
        n = snprintf(out, len, "%s/%s", base_dir, value);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int set_key(gand_settings *s, const key_desc *k, const char *value, const char *base_dir,
                   char *msg, size_t len)
{
    char *p = (char *)s + k->offset;
    switch (k->kind) {
    case K_LISTEN: {
        char host[256];
        int port;
        if (settings_parse_listen(value, host, sizeof host, &port, msg, len) != 0)
            return -1;
        snprintf(s->listen, sizeof s->listen, "%s", value);
        snprintf(s->listen_host, sizeof s->listen_host, "%s", host);
        s->listen_port = port;
        return 0;
    }
    case K_PATH: {
        if (!value[0]) {
            snprintf(msg, len, "must be a directory path, got an empty value");
            return -1;
        }
        if (resolve_path(value, base_dir, p, PATH_MAX) != 0) {
            snprintf(msg, len, "path is longer than %d bytes", PATH_MAX - 1);
            return -1;
        }
        return 0;
    }
    case K_FILE: /* "" = none; the file itself is read (and checked) when it is used */
        if (value[0] && resolve_path(value, base_dir, p, PATH_MAX) != 0) {
            snprintf(msg, len, "path is longer than %d bytes", PATH_MAX - 1);
            return -1;
        }
        if (!value[0])
            p[0] = '\0';
        return 0;
    case K_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1"};
        static const char *const no[] = {"false", "no", "off", "0"};
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            bool is_yes = strcasecmp(value, yes[i]) == 0;
            if (is_yes || strcasecmp(value, no[i]) == 0) {
                memcpy(p, &is_yes, sizeof is_yes);
                return 0;
            }
        }
        snprintf(msg, len, "must be true or false (or yes/no, on/off, 1/0), got '%s'", value);
        return -1;
    }
    case K_HOSTS: /* names separated by commas or spaces, each 1..253 of A-Z a-z 0-9 . - */
        for (const char *c = value; *c; c++)
            if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                  (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == ',' || *c == ' ')) {
                snprintf(msg, len,
                         "must be host names (A-Z a-z 0-9 . -) separated by commas, got '%s'",
                         value);
                return -1;
            }
        if (strlen(value) >= sizeof s->allowed_hosts) {
            snprintf(msg, len, "is longer than %zu bytes", sizeof s->allowed_hosts - 1);
            return -1;
        }
        snprintf(p, sizeof s->allowed_hosts, "%s", value);
        return 0;
    case K_EXECUTOR:
        if (strcmp(value, "local") != 0 && strcmp(value, "slurm") != 0) {
            snprintf(msg, len, "must be local (the worker thread) or slurm, got '%s'", value);
            return -1;
        }
        snprintf(p, sizeof s->executor, "%s", value);
        return 0;
    case K_STRING:
        for (const unsigned char *c = (const unsigned char *)value; *c; c++)
            if (*c < 0x20 || *c == 0x7f) {
                snprintf(msg, len, "must be one line of printable text");
                return -1;
            }
        if (strlen(value) >= (size_t)k->max) {
            snprintf(msg, len, "is longer than %ld bytes", k->max - 1);
            return -1;
        }
        snprintf(p, (size_t)k->max, "%s", value);
        return 0;
    case K_DEVICE:
        for (size_t i = 0; i < sizeof device_names / sizeof device_names[0]; i++)
            if (strcmp(value, device_names[i]) == 0) {
                snprintf(p, sizeof s->device, "%s", value);
                return 0;
            }
        snprintf(msg, len, "must be one of auto, cpu, cuda; got '%s'", value);
        return -1;
    case K_LOG_LEVEL: {
        int level = gand_log_level_from_name(value);
        if (level < 0) {
            snprintf(msg, len, "must be one of err, warning, notice, info, debug; got '%s'", value);
            return -1;
        }
        memcpy(p, &level, sizeof level);
        return 0;
    }
    case K_INT:
    case K_LONG: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < k->min || v > k->max) {
            snprintf(msg, len, "must be an integer in %ld..%ld%s%s%s, got '%s'", k->min, k->max,
                     k->zero_means ? " (0 = " : "", k->zero_means ? k->zero_means : "",
                     k->zero_means ? ")" : "", value);
            return -1;
        }
        if (k->kind == K_INT) {
            int i = (int)v;
            memcpy(p, &i, sizeof i);
        } else {
            memcpy(p, &v, sizeof v);
        }
        return 0;
    }
    }
    return -1;
}

static bool valid_dataset_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(((gand_dataset_entry *)0)->name))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

/*
 * [datasets] keys: NAME = PATH (the training images), NAME.holdout = N,
 * NAME.test = PATH and NAME.classifier = PATH (see gand_dataset_entry). The attributes may come
 * before or after NAME's path, or belong to a data set that a --data flag names; settings_load
 * checks at the end that every data set has a path.
 */
static const char *const dataset_attrs[] = {"holdout", "test", "classifier", "labels",
                                            "test_labels"};
enum { HOLDOUT_MAX = 100000000 };

/* The data set called name, added (without a path, holdout unset) when new; NULL when full. */
static gand_dataset_entry *dataset_slot(gand_settings *s, const char *name, char *msg, size_t len)
{
    for (int i = 0; i < s->dataset_count; i++)
        if (strcmp(s->datasets[i].name, name) == 0)
            return &s->datasets[i];
    if (s->dataset_count == GAND_MAX_DATASETS) {
        snprintf(msg, len, "at most %d data sets can be configured", GAND_MAX_DATASETS);
        return NULL;
    }
    gand_dataset_entry *d = &s->datasets[s->dataset_count++];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    d->holdout = -1;
    return d;
}

/* A readable file path for a data set key, resolved against base_dir. */
static int dataset_file(const char *value, const char *base_dir, char *path, size_t path_len,
                        char *msg, size_t len)
{
    if (!value[0] || resolve_path(value, base_dir, path, path_len) != 0) {
        snprintf(msg, len, "must be the path of an IDX3 image file (plain or .gz), got '%s'",
                 value);
        return -1;
    }
    if (access(path, R_OK) != 0) {
        snprintf(msg, len, "cannot read the data set file %.400s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int set_dataset(gand_settings *s, const char *name, const char *value, const char *base_dir,
                       char *msg, size_t len)
{
    if (!valid_dataset_name(name)) {
        snprintf(msg, len,
                 "a data set name must be 1..63 characters of A-Z a-z 0-9 _ . -, got '%s'", name);
        return -1;
    }
    char path[sizeof s->datasets[0].path];
    if (dataset_file(value, base_dir, path, sizeof path, msg, len) != 0)
        return -1;
    gand_dataset_entry *d = dataset_slot(s, name, msg, len);
    if (!d)
        return -1;
    snprintf(d->path, sizeof d->path, "%s", path);
    return 0;
}

/* NAME.holdout or NAME.test: returns 1 when key is one (0: a plain NAME key), -1 on error. */
static int set_dataset_attr(gand_settings *s, const char *key, const char *value,
                            const char *base_dir, char *msg, size_t len)
{
    const char *dot = strrchr(key, '.');
    size_t attr = sizeof dataset_attrs / sizeof dataset_attrs[0], a;
    for (a = 0; dot && a < attr; a++)
        if (strcmp(dot + 1, dataset_attrs[a]) == 0)
            break;
    if (!dot || a == attr)
        return 0;
    char name[64];
    size_t n = (size_t)(dot - key);
    if (n >= sizeof name) {
        snprintf(msg, len, "a data set name must be 1..63 characters of A-Z a-z 0-9 _ . -");
        return -1;
    }
    memcpy(name, key, n);
    name[n] = '\0';
    if (!valid_dataset_name(name)) {
        snprintf(msg, len,
                 "a data set name must be 1..63 characters of A-Z a-z 0-9 _ . -, got '%s'", name);
        return -1;
    }
    if (a == 0) { /* holdout */
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < 0 || v > HOLDOUT_MAX) {
            snprintf(msg, len,
                     "must be an integer in 0..%d (the last N images of %s are never trained "
                     "on), got '%s'",
                     HOLDOUT_MAX, name, value);
            return -1;
        }
        gand_dataset_entry *d = dataset_slot(s, name, msg, len);
        if (!d)
            return -1;
        d->holdout = (int)v;
        return 1;
    }
    char path[sizeof s->datasets[0].test_path];
    if (dataset_file(value, base_dir, path, sizeof path, msg, len) != 0)
        return -1;
    gand_dataset_entry *d = dataset_slot(s, name, msg, len);
    if (!d)
        return -1;
    char *slot[] = {NULL, d->test_path, d->classifier_path, d->labels_path, d->test_labels_path};
    snprintf(slot[a], sizeof d->test_path, "%s", path);
    return 1;
}

/* Image count from an IDX3 header (plain or gzip); -1 when the file is not one. */
static long idx3_count(const char *path)
{
    gzFile f = gzopen(path, "rb");
    unsigned char h[8];
    if (!f)
        return -1;
    int got = gzread(f, h, sizeof h);
    gzclose(f);
    if (got != (int)sizeof h || h[0] || h[1] || h[2] != 8 || h[3] != 3)
        return -1;
    return (long)((unsigned long)h[4] << 24 | (unsigned long)h[5] << 16 | (unsigned long)h[6] << 8 |
                  h[7]);
}

/*
 * After the file and the flags: every data set has a path. A bundled data set
 * still on its bundled file takes its holdout and test file where they are not
 * set (see daemon/paths.h); any other unset holdout is 0. A holdout must leave
 * images to train on.
 */
static int resolve_datasets(gand_settings *s, char *err, size_t err_len)
{
    const char *where = s->config_path[0] ? s->config_path : "--data";
    for (int i = 0; i < s->dataset_count; i++) {
        gand_dataset_entry *d = &s->datasets[i];
        if (!d->path[0] && i > 0) {
            snprintf(err, err_len,
                     "%s: [datasets] %s.%s: no data set '%s' is configured; give its images "
                     "with '%s = PATH' or --data %s=PATH",
                     where, d->name, d->test_path[0] ? "test" : "holdout", d->name, d->name,
                     d->name);
            return -1;
        }
        const gand_bundled_dataset *b = gand_bundled_dataset_find(d->name);
        char bundled[sizeof d->path];
        if (b && gand_data_file(b->images, bundled, sizeof bundled) == 0 &&
            strcmp(d->path, bundled) == 0) {
            if (d->holdout < 0)
                d->holdout = b->holdout;
            if (!d->test_path[0] && b->test_images &&
                gand_data_file(b->test_images, d->test_path, sizeof d->test_path) != 0)
                d->test_path[0] = '\0';
            if (!d->classifier_path[0] && b->classifier &&
                gand_data_file(b->classifier, d->classifier_path, sizeof d->classifier_path) != 0)
                d->classifier_path[0] = '\0';
            if (!d->labels_path[0] && b->labels &&
                gand_data_file(b->labels, d->labels_path, sizeof d->labels_path) != 0)
                d->labels_path[0] = '\0';
            if (!d->test_labels_path[0] && b->test_labels &&
                gand_data_file(b->test_labels, d->test_labels_path, sizeof d->test_labels_path) !=
                    0)
                d->test_labels_path[0] = '\0';
        }
        if (d->holdout < 0)
            d->holdout = 0;
        long count = d->path[0] ? idx3_count(d->path) : -1;
        if (count > 0 && d->holdout >= count) {
            snprintf(err, err_len,
                     "%s: [datasets] %s.holdout: must be less than the %ld images of %.400s "
                     "(some must be left to train on), got %d",
                     where, d->name, count, d->path, d->holdout);
            return -1;
        }
    }
    return 0;
}

/* ---- the file ------------------------------------------------------------------------------ */

typedef struct parse_ctx {
    gand_settings *s;
    char base_dir[PATH_MAX];
    char first_error[768];
    bool seen[N_KEYS];
    char seen_datasets[GAND_MAX_DATASETS * 6][80]; /* NAME and its attributes */
    int seen_dataset_count;
} parse_ctx;

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *ctx = user;
    char msg[640];
    int rc = 0;
    if (ctx->first_error[0])
        return 1; /* only the first error is reported (its line is what ini_parse returns) */
    if (strcmp(section, "datasets") == 0) {
        for (int i = 0; i < ctx->seen_dataset_count; i++)
            if (strcmp(ctx->seen_datasets[i], name) == 0) {
                snprintf(msg, sizeof msg,
                         "given twice (or an indented line continues the line before)");
                rc = -1;
            }
        if (rc == 0) {
            rc = set_dataset_attr(ctx->s, name, value, ctx->base_dir, msg, sizeof msg);
            if (rc == 0)
                rc = set_dataset(ctx->s, name, value, ctx->base_dir, msg, sizeof msg);
            else if (rc == 1)
                rc = 0;
        }
        if (rc == 0 && ctx->seen_dataset_count < GAND_MAX_DATASETS * 6)
            snprintf(ctx->seen_datasets[ctx->seen_dataset_count++], 80, "%.79s", name);
    } else if (strcmp(section, "server") != 0 && strcmp(section, "limits") != 0 &&
               strcmp(section, "tls") != 0 && strcmp(section, "executor") != 0) {
        snprintf(ctx->first_error, sizeof ctx->first_error,
                 "[%.100s]: unknown section; the sections are [server], [limits], [tls], "
                 "[executor] and [datasets]",
                 section);
        return 0;
    } else {
        const key_desc *k = find_key(section, name);
        if (!k) {
            char known[256];
            keys_of(section, known, sizeof known);
            snprintf(msg, sizeof msg, "unknown key; the keys of [%s] are: %s", section, known);
            rc = -1;
        } else if (ctx->seen[k - keys]) {
            snprintf(msg, sizeof msg,
                     "given twice (or an indented line continues the line before)");
            rc = -1;
        } else {
            ctx->seen[k - keys] = true;
            rc = set_key(ctx->s, k, value, ctx->base_dir, msg, sizeof msg);
        }
    }
    if (rc != 0) {
        snprintf(ctx->first_error, sizeof ctx->first_error, "[%s] %s: %s", section, name, msg);
        return 0;
    }
    return 1;
}

static int load_file(gand_settings *s, const char *path, char *err, size_t err_len)
{
    parse_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        snprintf(err, err_len, "%s: out of memory", path);
        return -1;
    }
    ctx->s = s;
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    snprintf(ctx->base_dir, sizeof ctx->base_dir, "%s", dirname(copy));
    int rc = ini_parse(path, on_ini_value, ctx);
    int ret = 0;
    if (rc == -1) {
        snprintf(err, err_len, "%s: cannot open the config file: %s", path, strerror(errno));
        ret = -1;
    } else if (rc == -2) {
        snprintf(err, err_len, "%s: out of memory reading the config file", path);
        ret = -1;
    } else if (rc > 0) {
        if (ctx->first_error[0])
            snprintf(err, err_len, "%s:%d: %s", path, rc, ctx->first_error);
        else
            snprintf(err, err_len,
                     "%s:%d: syntax error: expected '[section]', 'key = value', or a comment "
                     "starting with ; or #",
                     path, rc);
        ret = -1;
    }
    if (ret == 0)
        snprintf(s->config_path, sizeof s->config_path, "%s", path);
    free(ctx);
    return ret;
}

/* [tls]: both keys or neither (the files are read, and checked, by gand serve). */
static int check_tls(const gand_settings *s, char *err, size_t err_len)
{
    if (!s->tls_cert[0] == !s->tls_key[0])
        return 0;
    snprintf(err, err_len,
             "%s: [tls] %s: must be set together with %s (HTTPS needs the certificate and its "
             "private key)",
             s->config_path[0] ? s->config_path : "(built-in defaults)",
             s->tls_cert[0] ? "tls_key" : "tls_cert", s->tls_cert[0] ? "tls_cert" : "tls_key");
    return -1;
}

/* ---- flags --------------------------------------------------------------------------------- */

static int apply_flag(gand_settings *s, const char *flag, const char *section, const char *name,
                      const char *value, char *err, size_t err_len)
{
    char msg[640];
    const key_desc *k = find_key(section, name);
    if (set_key(s, k, value, NULL, msg, sizeof msg) != 0) {
        snprintf(err, err_len, "%s: %s", flag, msg);
        return -1;
    }
    return 0;
}

int settings_load(gand_settings *s, const gand_flags *flags, char *err, size_t err_len)
{
    settings_defaults(s);
    const char *file = flags->config;
    if (!file && access(settings_default_config_path(), F_OK) == 0)
        file = settings_default_config_path();
    if (file && load_file(s, file, err, err_len) != 0)
        return -1;

    if (flags->listen &&
        apply_flag(s, "--listen", "server", "listen", flags->listen, err, err_len) != 0)
        return -1;
    if (flags->state_dir &&
        apply_flag(s, "--state-dir", "server", "state_dir", flags->state_dir, err, err_len) != 0)
        return -1;
    if (flags->device &&
        apply_flag(s, "--device", "server", "device", flags->device, err, err_len) != 0)
        return -1;
    if (flags->log_level &&
        apply_flag(s, "--log-level", "server", "log_level", flags->log_level, err, err_len) != 0)
        return -1;
    if (flags->web_dir &&
        apply_flag(s, "--web-dir", "server", "web_dir", flags->web_dir, err, err_len) != 0)
        return -1;
    if (flags->javascript_dir && apply_flag(s, "--javascript-dir", "server", "javascript_dir",
                                            flags->javascript_dir, err, err_len) != 0)
        return -1;
    if (flags->token_file &&
        apply_flag(s, "--token-file", "server", "token_file", flags->token_file, err, err_len) != 0)
        return -1;
    for (int i = 0; i < flags->data_count; i++) {
        const char *arg = flags->data[i];
        const char *eq = strchr(arg, '=');
        char name[128], msg[640];
        if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof name) {
            snprintf(err, err_len,
                     "--data: must be NAME=PATH (e.g. small=/data/small.idx3.gz), "
                     "got '%s'",
                     arg);
            return -1;
        }
        memcpy(name, arg, (size_t)(eq - arg));
        name[eq - arg] = '\0';
        char cwd[PATH_MAX];
        const char *base = getcwd(cwd, sizeof cwd) ? cwd : NULL;
        if (set_dataset(s, name, eq + 1, base, msg, sizeof msg) != 0) {
            snprintf(err, err_len, "--data %s: %s", arg, msg);
            return -1;
        }
    }

    if (!s->datasets[0].path[0]) {
        snprintf(err, err_len,
                 "the bundled data set (%s) was not found in $GAND_DATADIR or the install or "
                 "source data directory; name its path with [datasets] mnist = PATH or "
                 "--data mnist=PATH",
                 gand_bundled_datasets[0].images);
        return -1;
    }
    if (check_tls(s, err, err_len) != 0)
        return -1;
    return resolve_datasets(s, err, err_len);
}

/* ---- reload -------------------------------------------------------------------------------- */

static bool key_equal(const gand_settings *a, const gand_settings *b, const key_desc *k)
{
    const char *pa = (const char *)a + k->offset, *pb = (const char *)b + k->offset;
    switch (k->kind) {
    case K_LISTEN:
    case K_PATH:
    case K_DEVICE:
    case K_FILE:
    case K_HOSTS:
    case K_EXECUTOR:
    case K_STRING:
        return strcmp(pa, pb) == 0;
    case K_BOOL:
        return memcmp(pa, pb, sizeof(bool)) == 0;
    case K_LOG_LEVEL:
    case K_INT:
        return memcmp(pa, pb, sizeof(int)) == 0;
    case K_LONG:
        return memcmp(pa, pb, sizeof(long)) == 0;
    }
    return true;
}

static void append(char *buf, size_t len, const char *what)
{
    size_t used = strlen(buf);
    if (used < len)
        snprintf(buf + used, len - used, "%s%s", used ? ", " : "", what);
}

void settings_diff(const gand_settings *old_s, const gand_settings *new_s, char *live,
                   size_t live_len, char *restart, size_t restart_len)
{
    live[0] = restart[0] = '\0';
    for (size_t i = 0; i < N_KEYS; i++) {
        if (key_equal(old_s, new_s, &keys[i]))
            continue;
        char what[96];
        snprintf(what, sizeof what, "%s.%s", keys[i].section, keys[i].name);
        append(keys[i].live ? live : restart, keys[i].live ? live_len : restart_len, what);
    }
    bool same = old_s->dataset_count == new_s->dataset_count;
    for (int i = 0; same && i < old_s->dataset_count; i++)
        same =
            strcmp(old_s->datasets[i].name, new_s->datasets[i].name) == 0 &&
            strcmp(old_s->datasets[i].path, new_s->datasets[i].path) == 0 &&
            old_s->datasets[i].holdout == new_s->datasets[i].holdout &&
            strcmp(old_s->datasets[i].test_path, new_s->datasets[i].test_path) == 0 &&
            strcmp(old_s->datasets[i].classifier_path, new_s->datasets[i].classifier_path) == 0 &&
            strcmp(old_s->datasets[i].labels_path, new_s->datasets[i].labels_path) == 0 &&
            strcmp(old_s->datasets[i].test_labels_path, new_s->datasets[i].test_labels_path) == 0;
    if (!same)
        append(restart, restart_len, "datasets");
}
