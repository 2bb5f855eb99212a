/* SPDX-License-Identifier: Apache-2.0 */
/* Description: fuzzes the whole store request path (framing, decoding,
 * dispatch, partition ops, response encoding) against a real in-process
 * store on a loopback port. Input byte 0 picks the mode: even sends the rest
 * as one framed request payload, odd sends the rest as a raw byte stream.
 * After every input a fresh connection must still get an ApiVersions answer,
 * and at exit the store must stop cleanly (every log closed, no leaks). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dp_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static dp_store_t *store;
static char dir[64];

static void stop_store(void)
{
    char cmd[128];

    if (store == NULL)
        return;
    if (dp_store_stop(store) != 0) {
        fprintf(stderr, "fuzz_store: the store did not stop cleanly\n");
        abort();
    }
    store = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_store: could not remove %s\n", dir);
}

static void start_store(void)
{
    dp_store_config_t cfg;
    char err[256];

    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/weir-fuzz-store-XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    dp_store_config_defaults(&cfg);
    cfg.data_dir = dir;
    cfg.bind_host = "127.0.0.1";
    cfg.port = 0;
    cfg.workers = 2;
    cfg.log.segment_bytes = 1 << 20;
    cfg.worker_memory_bytes = (size_t)64 << 20;
    cfg.max_request_bytes = 1 << 20;
    cfg.fetch_wait_max_ms = 20;
    if (dp_store_start(&store, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_store: start: %s\n", err);
        abort();
    }
    atexit(stop_store);
}

static int dial(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)dp_store_port(store))};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        abort();
    return fd;
}

/* Reads whatever arrives within `ms`, or up to `want` bytes; returns bytes
 * read. */
static size_t drain(int fd, uint8_t *buf, size_t cap, size_t want, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    size_t got = 0;

    while (got < cap && got < want && poll(&p, 1, ms) == 1) {
        ssize_t n = recv(fd, buf + got, cap - got, 0);

        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static void check_alive(void)
{
    static const uint8_t req[] = {0, 0, 0, 14, 0, 18, 0, 0, 0, 0, 0, 42, 0, 4, 'f', 'u', 'z', 'z'};
    static const uint8_t want[] = {0, 0, 0, 42, 0, 0}; /* correlation id 42, error 0 */
    uint8_t buf[4096];
    int fd = dial();
    size_t got;

    if (send(fd, req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req))
        abort();
    got = drain(fd, buf, sizeof(buf), 10, 5000);
    if (got < 10 || memcmp(buf + 4, want, sizeof(want)) != 0) {
        fprintf(stderr, "fuzz_store: the store stopped answering ApiVersions\n");
        abort();
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t out[1 << 16];
    int fd;

    if (store == NULL)
        start_store();
    if (size < 1)
        return 0;
    fd = dial();
    if ((data[0] & 1) == 0) {
        uint32_t n = htonl((uint32_t)(size - 1));

        (void)!send(fd, &n, 4, MSG_NOSIGNAL);
    }
    (void)!send(fd, data + 1, size - 1, MSG_NOSIGNAL);
    drain(fd, out, sizeof(out), sizeof(out), 30);
    close(fd);
    check_alive();
    return 0;
}
