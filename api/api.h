/*
 * api/api.h — the HTTP API of gand, served with libmicrohttpd.
 *
 * One thread per connection (MHD's internal threads); handlers only call the
 * run registry's functions, never the backend. The main thread starts and
 * stops the server and passes it the limits that may change on SIGHUP.
 */
#ifndef GAND_API_API_H
#define GAND_API_API_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/registry.h"
#include "daemon/settings.h"

typedef struct gand_api gand_api;

typedef struct api_options {
    gand_registry *registry;
    int listen_fd; /* a bound, listening stream socket (owned by the caller) */
    const gand_limits *limits;
    const char *web_dir;        /* dashboard files ("" = none) */
    const char *javascript_dir; /* system JavaScript libraries, served under /javascript/ */
    const char *token;          /* bearer token (NULL or token_len 0: no authentication) */
    size_t token_len;
    bool public_reads;         /* with a token: reads need none */
    const char *allowed_hosts; /* names a Host may carry besides IPs and localhost (or NULL) */
    int http_threads;          /* libmicrohttpd's thread pool; 0 = one per CPU, 4..16 */
    const char *tls_cert_pem;  /* HTTPS when both are set (PEM texts, copied) */
    const char *tls_key_pem;
} api_options;

/* Was libmicrohttpd built with TLS (HTTPS) support? */
bool api_tls_supported(void);

/* Start serving on listen_fd. NULL with a message in err when MHD refuses. */
gand_api *api_start(const api_options *opt, char *err, size_t err_len);

/* Apply the limits that can change live (max_body_bytes, max_event_streams, max_sample_n). */
void api_set_live_limits(gand_api *api, const gand_limits *limits);

/* Replace the bearer token (NULL or len 0: none) and public_reads; live (SIGHUP). */
void api_set_auth(gand_api *api, const char *token, size_t len, bool public_reads);

/* The worker's heartbeat has (not) advanced lately: /healthz reports it. */
void api_set_worker_stalled(gand_api *api, bool stalled);

/* Stop accepting connections; requests in progress continue. */
void api_quiesce(gand_api *api);

/* End event streams, wait for requests in progress, free. */
void api_stop(gand_api *api);

#endif
