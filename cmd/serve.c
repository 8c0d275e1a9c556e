/*
 * cmd/serve.c — `gand serve` (and `gand` alone): the daemon.
 *
 * Start-up order: settings (exit 2 on any bad one), signals blocked before
 * any thread exists, the listening socket (systemd's when socket-activated),
 * the registry (loads every run), the HTTP API, the worker, READY=1.
 *
 * The main thread then only waits for signals (sigtimedwait, woken once a
 * second to look after systemd): STATUS= follows registry_status_line, and
 * WATCHDOG=1 is sent only while the worker's heartbeat advances, so a stuck
 * worker (a hung GPU call) gets the service restarted instead of pinged.
 * SIGHUP re-reads the config file and applies what can change live (and
 * re-reads the token file); SIGTERM/SIGINT stop accepting, let the active run
 * checkpoint, and exit 0.
 *
 * Security at start-up (README "Security"): the token file and the TLS files
 * are read before anything listens, and a bad one is exit 2 like any bad
 * setting; a listening address that is not loopback without a token is
 * refused (exit 2), since anyone who reaches it could start, stop and delete
 * runs; TLS that this libmicrohttpd cannot do is refused (exit 2).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/auth.h"
#include "cmd/commands.h"
#include "daemon/log.h"
#include "daemon/registry.h"
#include "daemon/settings.h"
#include "kernels/backend.h"
#include "kernels/cpu/blas_kernels.h"

#ifndef GAND_VERSION
#define GAND_VERSION "0"
#endif

enum { STATUS_EVERY_S = 5, DEFAULT_STALL_S = 120, LISTEN_BACKLOG = 128 };

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: gand serve [--config FILE] [--listen ADDR:PORT] [--state-dir DIR]\n"
        "                  [--data NAME=PATH]... [--device auto|cpu|cuda]\n"
        "                  [--log-level err|warning|notice|info|debug] [--web-dir DIR]\n"
        "                  [--javascript-dir DIR] [--token-file FILE] [--check]\n"
        "\n"
        "Runs the gand daemon: the HTTP API on ADDR:PORT (default 127.0.0.1:8080) and one\n"
        "worker that trains the queued runs. Settings come from FILE (default %s when\n"
        "it exists), and flags override them. --data adds or replaces a data set (the\n"
        "bundled mnist, mnist-60k and mnist-10k are always there). --token-file names a\n"
        "file holding the bearer token every API request must carry (required to listen\n"
        "beyond loopback).\n"
        "--check prints the settings in effect and exits.\n"
        "SIGHUP reloads FILE and the token file; SIGTERM checkpoints the active run and exits.\n",
        settings_default_config_path());
}

/* ---- signals ------------------------------------------------------------------------------- */

static pthread_t main_thread;

/* Runs only in a thread that does not block the signal (never the main thread). */
static void forward_to_main_thread(int sig)
{
    int saved = errno;
    pthread_kill(main_thread, sig); /* async-signal-safe; pending until sigtimedwait takes it */
    errno = saved;
}

/* ---- the listening socket ------------------------------------------------------------------- */

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return in6->sin6_addr.s6_addr[12] == 127;
        return false;
    }
    return ss->ss_family == AF_UNIX;
}

static void describe(const struct sockaddr_storage *ss, bool tls, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    const char *scheme = tls ? "https" : "http";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(buf, len, "%s://%s:%u", scheme, host, ntohs(in->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, len, "%s://[%s]:%u", scheme, host, ntohs(in6->sin6_port));
    } else if (ss->ss_family == AF_UNIX) {
        snprintf(buf, len, "a unix socket");
    } else {
        snprintf(buf, len, "a socket of family %d", ss->ss_family);
    }
}

/* Our own listening socket on host:port; -1 with a message when it cannot be had. */
static int listen_on(const gand_settings *s, char *err, size_t err_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", s->listen_port);
    int gai = getaddrinfo(s->listen_host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_len, "listen = %s: cannot resolve '%s': %s", s->listen, s->listen_host,
                 gai_strerror(gai));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, err_len, "cannot listen on %s: %s", s->listen, strerror(saved));
    return fd;
}

/* ---- secrets: the token file, the TLS files ------------------------------------------------- */

/* The token named by s->token_file into tok (len 0 when none is named); -1 after logging why. */
static int load_token(const gand_settings *s, const char *who, char *tok, size_t cap, size_t *len)
{
    *len = 0;
    tok[0] = '\0';
    if (!s->token_file[0])
        return 0;
    char warn[640], err[1024];
    if (auth_read_token_file(s->token_file, tok, cap, len, warn, sizeof warn, err, sizeof err) !=
        0) {
        log_err("%s: %s", who, err);
        return -1;
    }
    if (warn[0])
        log_warning("%s: %s", who, warn);
    return 0;
}

enum { PEM_MAX = 1 << 20 };

/* A whole PEM file as a string (malloc'd); NULL after logging why. */
static char *read_pem(const char *key, const char *path, bool secret)
{
    FILE *f = fopen(path, "rbe");
    if (!f) {
        log_err("gand: [tls] %s = %s: cannot open it: %s", key, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (secret && fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
        log_warning("gand: [tls] %s = %s can be read by its group or by others (mode %04o); "
                    "chmod 600 it",
                    key, path, (unsigned)(st.st_mode & 07777));
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    bool bad = !buf || ferror(f) || n > PEM_MAX;
    fclose(f);
    if (!bad) {
        buf[n] = '\0';
        bad = !strstr(buf, "-----BEGIN ");
    }
    if (bad) {
        log_err("gand: [tls] %s = %s: %s", key, path,
                !buf          ? "out of memory"
                : n > PEM_MAX ? "larger than 1 MiB"
                              : "not a PEM file (no '-----BEGIN' line)");
        if (buf)
            explicit_bzero(buf, n <= PEM_MAX ? n : PEM_MAX);
        free(buf);
        return NULL;
    }
    return buf;
}

static void free_pem(char *pem)
{
    if (pem) {
        explicit_bzero(pem, strlen(pem));
        free(pem);
    }
}

/* Read both TLS files (none configured: both NULL, 0); -1 after logging why. */
static int load_tls(const gand_settings *s, char **cert, char **key)
{
    *cert = *key = NULL;
    if (!s->tls_cert[0])
        return 0;
    if (!api_tls_supported()) {
        log_err("gand: [tls] is configured, but this libmicrohttpd was built without TLS "
                "support (MHD_FEATURE_TLS); install one built with GnuTLS, or remove [tls] and "
                "put a TLS-terminating proxy in front");
        return -1;
    }
    *cert = read_pem("tls_cert", s->tls_cert, false);
    *key = *cert ? read_pem("tls_key", s->tls_key, true) : NULL;
    if (!*cert || !*key) {
        free_pem(*cert);
        free_pem(*key);
        *cert = *key = NULL;
        return -1;
    }
    return 0;
}

/* ---- systemd -------------------------------------------------------------------------------- */

static void notify_status(gand_registry *reg, char *last, size_t len)
{
    char line[256], msg[300];
    registry_status_line(reg, line, sizeof line);
    if (strcmp(line, last) == 0)
        return;
    snprintf(last, len, "%s", line);
    snprintf(msg, sizeof msg, "STATUS=%s", line);
    sd_notify(0, msg);
}

/* SIGHUP: the token file is read again (its name may have changed), public_reads applies. */
static void reload_auth(gand_settings *cur, const gand_settings *next, gand_api *api)
{
    char tok[AUTH_TOKEN_MAX + 1];
    size_t len = 0;
    if (!next->token_file[0]) {
        if (cur->token_file[0])
            log_warning("reload: token_file is no longer set, but authentication cannot be "
                        "switched off by a reload: the current token stays until a restart");
        else
            cur->public_reads = next->public_reads;
        return;
    }
    if (load_token(next, "reload", tok, sizeof tok, &len) != 0) {
        log_err("reload: keeping the current token");
        return;
    }
    api_set_auth(api, tok, len, next->public_reads);
    explicit_bzero(tok, sizeof tok);
    snprintf(cur->token_file, sizeof cur->token_file, "%s", next->token_file);
    cur->public_reads = next->public_reads;
    log_notice("reload: bearer token read again from %s%s", cur->token_file,
               cur->public_reads ? " (reads are public)" : "");
}

static void reload(gand_settings *cur, const gand_flags *flags, gand_api *api, gand_registry *reg,
                   char *last_status, size_t status_len)
{
    sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
    gand_settings *next = malloc(sizeof *next);
    char err[1024];
    if (!next) {
        log_err("reload: out of memory; keeping the current settings");
    } else if (settings_load(next, flags, err, sizeof err) != 0) {
        log_err("reload: %s; keeping the current settings", err);
    } else {
        char live[512], restart[512];
        settings_diff(cur, next, live, sizeof live, restart, sizeof restart);
        /* apply the live ones; the others stay as they are until a restart */
        cur->log_level = next->log_level;
        gand_log_set_level(cur->log_level);
        cur->limits.max_body_bytes = next->limits.max_body_bytes;
        cur->limits.max_event_streams = next->limits.max_event_streams;
        cur->limits.max_sample_n = next->limits.max_sample_n;
        api_set_live_limits(api, &cur->limits);
        reload_auth(cur, next, api);
        log_notice("reload: %s: applied: %s; need a restart to apply: %s",
                   next->config_path[0] ? next->config_path : "(built-in defaults)",
                   live[0] ? live : "nothing changed", restart[0] ? restart : "nothing");
    }
    free(next);
    last_status[0] = '\0';
    sd_notify(0, "READY=1");
    notify_status(reg, last_status, status_len);
}

static void log_settings(const gand_settings *s, FILE *f)
{
    fprintf(
        f,
        "config = %s\n[server]\nlisten = %s\nstate_dir = %s\ndevice = %s\nlog_level = %s\n"
        "web_dir = %s\njavascript_dir = %s\ntoken_file = %s\npublic_reads = %s\n"
        "allowed_hosts = %s\nhttp_threads = %d\n"
        "[limits]\nmax_body_bytes = %ld\nmax_connections = %d\nmax_connections_per_ip = %d\n"
        "connection_timeout_s = %d\nheader_timeout_s = %d\nbody_timeout_s = %d\n"
        "max_event_streams = %d\nmax_sample_n = %d\n"
        "max_runs = %d\n[tls]\ntls_cert = %s\ntls_key = %s\n[datasets]\n",
        s->config_path[0] ? s->config_path : "(none: built-in defaults)", s->listen, s->state_dir,
        s->device, gand_log_level_name(s->log_level), s->web_dir[0] ? s->web_dir : "(none)",
        s->javascript_dir[0] ? s->javascript_dir : "(none)",
        s->token_file[0] ? s->token_file : "(none: no authentication)",
        s->public_reads ? "true" : "false", s->allowed_hosts, s->http_threads,
        s->limits.max_body_bytes, s->limits.max_connections, s->limits.max_connections_per_ip,
        s->limits.connection_timeout_s, s->limits.header_timeout_s, s->limits.body_timeout_s,
        s->limits.max_event_streams, s->limits.max_sample_n, s->limits.max_runs,
        s->tls_cert[0] ? s->tls_cert : "(none: plain HTTP)", s->tls_key[0] ? s->tls_key : "(none)");
    for (int i = 0; i < s->dataset_count; i++) {
        const gand_dataset_entry *d = &s->datasets[i];
        fprintf(f, "%s = %s\n%s.holdout = %d\n", d->name, d->path, d->name, d->holdout);
        if (d->test_path[0])
            fprintf(f, "%s.test = %s\n", d->name, d->test_path);
        if (d->classifier_path[0])
            fprintf(f, "%s.classifier = %s\n", d->name, d->classifier_path);
        if (d->labels_path[0])
            fprintf(f, "%s.labels = %s\n", d->name, d->labels_path);
        if (d->test_labels_path[0])
            fprintf(f, "%s.test_labels = %s\n", d->name, d->test_labels_path);
    }
}

/* ---- the command ---------------------------------------------------------------------------- */

int gand_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"state-dir", required_argument, NULL, 's'},
                                         {"data", required_argument, NULL, 'd'},
                                         {"device", required_argument, NULL, 'D'},
                                         {"log-level", required_argument, NULL, 'L'},
                                         {"web-dir", required_argument, NULL, 'w'},
                                         {"javascript-dir", required_argument, NULL, 'j'},
                                         {"token-file", required_argument, NULL, 't'},
                                         {"check", no_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    gand_flags flags = {0};
    bool check_only = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:l:s:d:D:L:w:j:t:Ch", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            flags.config = optarg;
            break;
        case 'l':
            flags.listen = optarg;
            break;
        case 's':
            flags.state_dir = optarg;
            break;
        case 'd':
            if (flags.data_count == GAND_MAX_DATASETS) {
                fprintf(stderr, "gand serve: --data: at most %d data sets\n", GAND_MAX_DATASETS);
                return 2;
            }
            flags.data[flags.data_count++] = optarg;
            break;
        case 'D':
            flags.device = optarg;
            break;
        case 'L':
            flags.log_level = optarg;
            break;
        case 'w':
            flags.web_dir = optarg;
            break;
        case 'j':
            flags.javascript_dir = optarg;
            break;
        case 't':
            flags.token_file = optarg;
            break;
        case 'C':
            check_only = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gand serve: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    static gand_settings settings; /* large (paths); lives for the process */
    char err[1024];
    if (settings_load(&settings, &flags, err, sizeof err) != 0) {
        log_err("gand: %s", err);
        return 2;
    }
    /* the secrets are read (and checked) before anything listens; --check checks them too */
    static char token[AUTH_TOKEN_MAX + 1];
    size_t token_len = 0;
    char *tls_cert = NULL, *tls_key = NULL;
    if (load_token(&settings, "gand", token, sizeof token, &token_len) != 0 ||
        load_tls(&settings, &tls_cert, &tls_key) != 0)
        return 2;
    if (check_only) {
        explicit_bzero(token, sizeof token);
        free_pem(tls_cert);
        free_pem(tls_key);
        log_settings(&settings, stdout);
        return 0;
    }
    gand_log_set_level(settings.log_level);
    if (settings.limits.max_event_streams >= settings.limits.max_connections)
        log_warning("gand: max_event_streams (%d) is not below max_connections (%d): open event "
                    "streams can take every connection",
                    settings.limits.max_event_streams, settings.limits.max_connections);

    /*
     * Blocked before our threads exist, so they inherit the mask and the main
     * thread takes the signals with sigtimedwait. Two catches: a launcher may
     * have left them ignored (a shell's background job ignores SIGINT; an
     * ignored signal is dropped while sigtimedwait waits), and threads that
     * libraries start before main() (OpenBLAS's pool) do not block them. So
     * each gets a handler that forwards it to the main thread.
     */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    main_thread = pthread_self();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_to_main_thread;
    sa.sa_mask = mask;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    log_notice("gand %s starting (backends built: %s); config: %s", GAND_VERSION,
               gk_backends_built(),
               settings.config_path[0] ? settings.config_path : "built-in defaults");
    const char *blas = gk_blas_fit_kernels(); /* what main's call did */
    if (blas[0])
        log_notice("%s", blas);

    int listen_fd = -1;
    bool activated = false;
    int nfds = sd_listen_fds(1);
    if (nfds > 0) {
        listen_fd = SD_LISTEN_FDS_START;
        if (sd_is_socket(listen_fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
            log_err("gand: the socket systemd passed (fd %d) is not a listening stream socket",
                    listen_fd);
            free_pem(tls_cert);
            free_pem(tls_key);
            return 1;
        }
        if (nfds > 1)
            log_warning("gand: systemd passed %d sockets; using the first", nfds);
        activated = true;
    } else {
        if (nfds < 0)
            log_warning("gand: sd_listen_fds: %s", strerror(-nfds));
        listen_fd = listen_on(&settings, err, sizeof err);
        if (listen_fd < 0) {
            log_err("gand: %s", err);
            free_pem(tls_cert);
            free_pem(tls_key);
            return 1;
        }
    }
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    memset(&ss, 0, sizeof ss);
    char where[128] = "?";
    if (getsockname(listen_fd, (struct sockaddr *)&ss, &sslen) == 0)
        describe(&ss, tls_cert != NULL, where, sizeof where);
    if (!is_loopback(&ss) && token_len == 0) {
        log_err("gand: refusing to listen on %s without authentication: it is not a loopback "
                "address, so anyone who can reach it could start, stop and delete runs. Set "
                "[server] token_file (or --token-file FILE) to a file holding a secret token, or "
                "listen on 127.0.0.1",
                where);
        if (!activated)
            close(listen_fd);
        free_pem(tls_cert);
        free_pem(tls_key);
        return 2;
    }
    if (!is_loopback(&ss) && !tls_cert)
        log_warning("gand: listening on %s, which is not a loopback address, without TLS: the "
                    "bearer token and all data cross the network in clear text; set [tls] "
                    "tls_cert and tls_key, or put a TLS-terminating proxy in front",
                    where);
    if (token_len > 0)
        log_notice("gand: API requests need the bearer token of %s%s", settings.token_file,
                   settings.public_reads ? " (except reads: public_reads = true)" : "");

    registry_options ro = {
        .state_dir = settings.state_dir,
        .device = settings.device,
        .datasets = settings.datasets,
        .dataset_count = settings.dataset_count,
        .max_runs = settings.limits.max_runs,
        /* the API enforces the configured (live) max_sample_n; the registry only the hard cap */
        .max_sample_n = 1024,
        .executor = settings.executor,
        .slurm = &settings.slurm,
    };
    gan_error gerr = {{0}, {0}};
    gand_registry *reg = registry_open(&ro, &gerr);
    if (!reg) {
        log_err("gand: cannot open the state directory %s: %s%s%s", settings.state_dir,
                gerr.field[0] ? gerr.field : "", gerr.field[0] ? ": " : "", gerr.message);
        if (!activated)
            close(listen_fd);
        free_pem(tls_cert);
        free_pem(tls_key);
        return 1;
    }
    api_options ao = {.registry = reg,
                      .listen_fd = listen_fd,
                      .limits = &settings.limits,
                      .web_dir = settings.web_dir,
                      .javascript_dir = settings.javascript_dir,
                      .token = token,
                      .token_len = token_len,
                      .public_reads = settings.public_reads,
                      .allowed_hosts = settings.allowed_hosts,
                      .http_threads = settings.http_threads,
                      .tls_cert_pem = tls_cert,
                      .tls_key_pem = tls_key};
    gand_api *api = api_start(&ao, err, sizeof err);
    explicit_bzero(token, sizeof token); /* the API keeps its own copies */
    free_pem(tls_cert);
    free_pem(tls_key);
    if (!api) {
        log_err("gand: %s", err);
        registry_close(reg);
        return 1;
    }
    if (registry_start(reg, &gerr) != 0) {
        log_err("gand: cannot start the worker: %s%s%s", gerr.field[0] ? gerr.field : "",
                gerr.field[0] ? ": " : "", gerr.message);
        api_stop(api);
        registry_close(reg);
        return 1;
    }
    /* registry_start returns once the worker has opened the backend (or failed to) */
    char backend[64] = "", device[256] = "", why[512] = "";
    registry_backend_info(reg, backend, sizeof backend, device, sizeof device, why, sizeof why);
    log_notice("gand: listening on %s%s; backend %s (%s); state in %s", where,
               activated ? " (socket from systemd)" : "", backend, why, settings.state_dir);

    char last_status[256] = "";
    sd_notify(0, "READY=1");
    notify_status(reg, last_status, sizeof last_status);

    uint64_t wd_usec = 0;
    bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0;
    long stall_ms = watchdog ? (long)(wd_usec / 1000) : DEFAULT_STALL_S * 1000L;
    if (watchdog)
        log_info("gand: systemd watchdog every %llu ms; pinged while the worker's heartbeat "
                 "advances",
                 (unsigned long long)(wd_usec / 1000));

    uint64_t last_hb = registry_heartbeat(reg);
    struct timespec now, last_advance, last_ping = {0, 0}, last_status_at;
    clock_gettime(CLOCK_MONOTONIC, &now);
    last_advance = last_status_at = now;
    bool stalled = false, advanced_since_ping = true;
    int exit_code = 0;
    for (;;) {
        struct timespec tick = {1, 0};
        siginfo_t si;
        int sig = sigtimedwait(&mask, &si, &tick);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (sig == SIGTERM || sig == SIGINT) {
            log_notice("gand: %s received; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig == SIGHUP)
            reload(&settings, &flags, api, reg, last_status, sizeof last_status);

        uint64_t hb = registry_heartbeat(reg);
        if (hb != last_hb) {
            last_hb = hb;
            last_advance = now;
            advanced_since_ping = true;
            if (stalled) {
                stalled = false;
                api_set_worker_stalled(api, false);
                log_notice("gand: the worker's heartbeat advances again");
            }
        }
        long quiet_ms = (now.tv_sec - last_advance.tv_sec) * 1000 +
                        (now.tv_nsec - last_advance.tv_nsec) / 1000000;
        if (!stalled && quiet_ms > stall_ms) {
            stalled = true;
            api_set_worker_stalled(api, true);
            log_err("gand: the worker's heartbeat has not advanced for %ld s%s", quiet_ms / 1000,
                    watchdog ? "; no longer pinging the systemd watchdog" : "");
        }
        if (watchdog && advanced_since_ping &&
            (now.tv_sec - last_ping.tv_sec) * 1000000LL +
                    (now.tv_nsec - last_ping.tv_nsec) / 1000 >=
                (long long)(wd_usec / 4)) {
            sd_notify(0, "WATCHDOG=1");
            last_ping = now;
            advanced_since_ping = false;
        }
        if (now.tv_sec - last_status_at.tv_sec >= STATUS_EVERY_S) {
            notify_status(reg, last_status, sizeof last_status);
            last_status_at = now;
        }
    }

    sd_notify(0, "STOPPING=1\nSTATUS=stopping: checkpointing the active run");
    api_quiesce(api);
    registry_shutdown(reg); /* the active run checkpoints and stays "running" on disk */
    api_stop(api);
    registry_close(reg);
    if (!activated)
        close(listen_fd);
    log_notice("gand: stopped");
    return exit_code;
}
