/* SPDX-License-Identifier: Apache-2.0 */
/* op_kube internals shared by op_kube*.c (and the unit tests): the client
 * struct, credential plumbing, the exec plugin runner, small JSON helpers. */
#ifndef OP_KUBE_INTERNAL_H
#define OP_KUBE_INTERNAL_H

#include "op_kube.h"

#include <curl/curl.h>
#include <sys/types.h>

/** Leases whose holder this client observes at once (one per election). */
#define OP_KUBE__LEASES_MAX 8

/** What a candidate saw of a Lease and when (monotonic), as in client-go. */
typedef struct op_kube__lease_obs {
    char key[256];            /* "ns/name", "" when the slot is free */
    char record[512];         /* holder|renewTime|duration|transitions */
    struct timespec observed; /* CLOCK_MONOTONIC when record last changed */
} op_kube__lease_obs_t;

struct op_kube {
    op_kube_config_t cfg;
    long connect_timeout_ms, request_timeout_ms;
    size_t max_response_bytes;
    char user_agent[128];
    char field_manager[128];
    char *base_url;                /* URL prefix requests are made on */
    struct curl_slist *connect_to; /* tls-server-name mapping, or NULL */
    CURL *curl;                    /* requests (keep-alive) */
    CURL *watch_curl;              /* watches, so callbacks may issue requests */
    void (*observe)(void *ud, const char *method, const char *path, long status, uint64_t ns);
    void *observe_ud;

    /* Bearer token cache: from token_file (re-read when it changes or after
     * a minute) or from the exec plugin (until its expiry). */
    char *token;
    bool token_valid;
    struct timespec token_read; /* CLOCK_MONOTONIC of the last read/exec */
    dev_t token_dev;
    ino_t token_ino;
    struct timespec token_mtime;
    off_t token_size;
    time_t token_expiry; /* exec: wall-clock expiry, 0 = none */
    /* exec plugins may also return a client certificate */
    char *exec_cert, *exec_key;
    size_t exec_cert_len, exec_key_len;

    op_kube__lease_obs_t leases[OP_KUBE__LEASES_MAX];
};

/** Output of one exec credential plugin run (all owned, free with _dispose). */
typedef struct op_kube__exec_cred {
    char *token;
    char *cert, *key;
    size_t cert_len, key_len;
    time_t expiry; /* 0: none given */
} op_kube__exec_cred_t;

/** Runs the exec plugin of `cfg` and parses its ExecCredential. */
op_kube_err_t op_kube__exec_run(const op_kube_config_t *cfg, op_kube__exec_cred_t *out, char *err,
                                size_t errlen);

/** Parses ExecCredential JSON text (exposed for tests). */
op_kube_err_t op_kube__exec_parse(const char *text, size_t len, op_kube__exec_cred_t *out,
                                  char *err, size_t errlen);

void op_kube__exec_cred_dispose(op_kube__exec_cred_t *c);

/** Parses an RFC 3339 timestamp ("2024-01-02T03:04:05Z", fraction and
 * offset allowed) into a time_t. Returns 0 or -1. */
int op_kube__parse_rfc3339(const char *s, time_t *out);

/** Decodes standard base64 (whitespace ignored) into a new NUL-terminated
 * buffer. Returns NULL on bad input. */
char *op_kube__b64_decode(const char *in, size_t *out_len);

/**
 * The bearer token to send now (borrowed, NULL for none), refreshing it from
 * the token file or exec plugin as needed.
 */
op_kube_err_t op_kube__token(op_kube_t *k, const char **token, char *err, size_t errlen);

/** True when the client's token can be refreshed (file or exec). */
bool op_kube__token_refreshable(const op_kube_t *k);

/** Resets `c` and sets URL, TLS, auth and common options for `url`.
 * `accept` is the Accept header's value (NULL: application/json).
 * `headers` receives the list the caller frees after the transfer. */
op_kube_err_t op_kube__setup(op_kube_t *k, CURL *c, const char *url, const char *content_type,
                             const char *accept, struct curl_slist **headers, char *err,
                             size_t errlen);

/** Maps a failed curl transfer to the enum, message in err. */
op_kube_err_t op_kube__curl_err(CURLcode rc, const char *what, char *err, size_t errlen);

/** base_url + path + ('?' or '&') + query (query may be NULL); malloc'd. */
char *op_kube__url(const op_kube_t *k, const char *path, const char *query);

/** snprintf into err (capacity errlen, may be 0) and return `e`. */
op_kube_err_t op_kube__fail(op_kube_err_t e, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Borrowed string at obj.a.b (NULL if any step is missing or not a string). */
const char *op_kube__str(const json_t *obj, const char *a, const char *b);

#endif
