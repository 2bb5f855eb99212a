/* SPDX-License-Identifier: Apache-2.0 */
/* op_topic: CreateTopics/DeleteTopics through librdkafka's admin API (the
 * same for the Weir store and Kafka) and a TCP reachability probe. */
#include "op_topic.h"

#include <librdkafka/rdkafka.h>
#include <sasl/sasl.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Sets `name` to `value` unless value is NULL; nonzero on error. */
static int conf_opt(rd_kafka_conf_t *conf, const char *name, const char *value, char *es,
                    size_t eslen)
{
    return value && rd_kafka_conf_set(conf, name, value, es, eslen) != RD_KAFKA_CONF_OK;
}

/* librdkafka initializes Cyrus SASL on its first client, and Cyrus then
 * loads every plugin it finds (with their own libcrypto, libdb...). The
 * operator authenticates only with a username and password, which
 * librdkafka does itself (PLAIN, SCRAM-SHA-256/512); Cyrus would serve only
 * GSSAPI, which needs a keytab the operator never has. So Cyrus gets an
 * empty plugin path: its built-in EXTERNAL stays, nothing is loaded. */
static pthread_once_t sasl_once = PTHREAD_ONCE_INIT;

static void sasl_no_plugins(void)
{
    sasl_set_path(SASL_PATH_TYPE_PLUGIN, "/nonexistent");
}

static rd_kafka_t *client(const char *bootstrap, const op_topic_auth_t *auth, int timeout_ms,
                          char *err, size_t errlen)
{
    char es[512], tmo[32];
    rd_kafka_conf_t *conf;
    rd_kafka_t *h;
    const op_topic_auth_t none = {0};
    const char *mech;
    if (!auth)
        auth = &none;
    /* A username without a mechanism means SASL/PLAIN, as most clients do. */
    mech = auth->sasl_mechanism ? auth->sasl_mechanism : auth->username ? "PLAIN" : NULL;
    pthread_once(&sasl_once, sasl_no_plugins);
    conf = rd_kafka_conf_new();
    snprintf(tmo, sizeof(tmo), "%d", timeout_ms);
    if (!conf || rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, es, sizeof(es)) ||
        rd_kafka_conf_set(conf, "socket.timeout.ms", tmo, es, sizeof(es)) ||
        rd_kafka_conf_set(conf, "log_level", "3", es, sizeof(es)) ||
        conf_opt(conf, "security.protocol", auth->security_protocol, es, sizeof(es)) ||
        conf_opt(conf, "sasl.mechanism", mech, es, sizeof(es)) ||
        conf_opt(conf, "sasl.username", auth->username, es, sizeof(es)) ||
        conf_opt(conf, "sasl.password", auth->password, es, sizeof(es)) ||
        conf_opt(conf, "ssl.ca.pem", auth->ca_pem, es, sizeof(es))) {
        snprintf(err, errlen, "librdkafka configuration: %s", conf ? es : "out of memory");
        if (conf)
            rd_kafka_conf_destroy(conf);
        return NULL;
    }
    h = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof(es));
    if (!h) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "librdkafka: %s", es);
    }
    return h;
}

/* Runs one admin request (create = 1: CreateTopics, else DeleteTopics). */
static int admin(const char *bootstrap, const op_topic_auth_t *auth, const char *topic,
                 int partitions, int create, int timeout_ms, int *existed, char *err, size_t errlen)
{
    char es[512];
    rd_kafka_t *h = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_AdminOptions_t *ao = NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_DeleteTopic_t *dt = NULL;
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_topic_result_t **res;
    size_t cnt = 0;
    int rc = -EIO;
    if (existed)
        *existed = 0;
    h = client(bootstrap, auth, timeout_ms, err, errlen);
    if (!h)
        return -EIO;
    q = rd_kafka_queue_new(h);
    ao = rd_kafka_AdminOptions_new(h, create ? RD_KAFKA_ADMIN_OP_CREATETOPICS
                                             : RD_KAFKA_ADMIN_OP_DELETETOPICS);
    if (!q || !ao) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, es, sizeof(es));
    rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, es, sizeof(es));
    if (create) {
        nt = rd_kafka_NewTopic_new(topic, partitions, -1, es, sizeof(es));
        if (!nt) {
            snprintf(err, errlen, "topic %s: %s", topic, es);
            goto out;
        }
        rd_kafka_CreateTopics(h, &nt, 1, ao, q);
    } else {
        dt = rd_kafka_DeleteTopic_new(topic);
        if (!dt) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        rd_kafka_DeleteTopics(h, &dt, 1, ao, q);
    }
    /* The admin request carries its own timeout; poll a little longer. */
    ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (!ev) {
        snprintf(err, errlen, "no answer from %s within %d ms", bootstrap, timeout_ms);
        rc = -ETIMEDOUT;
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "%s", rd_kafka_event_error_string(ev));
        rc = rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR__TIMED_OUT ? -ETIMEDOUT : -EIO;
        goto out;
    }
    if (create)
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    else
        res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
    if (cnt != 1) {
        snprintf(err, errlen, "unexpected admin result (%zu topics)", cnt);
        goto out;
    }
    switch (rd_kafka_topic_result_error(res[0])) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        rc = 0;
        break;
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
        rc = create ? 0 : -EIO;
        if (existed)
            *existed = 1;
        break;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        rc = create ? -EIO : 0;
        break;
    default:
        break;
    }
    if (rc != 0)
        snprintf(err, errlen, "topic %s: %s", topic,
                 rd_kafka_topic_result_error_string(res[0])
                     ? rd_kafka_topic_result_error_string(res[0])
                     : "error");
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    if (dt)
        rd_kafka_DeleteTopic_destroy(dt);
    if (ao)
        rd_kafka_AdminOptions_destroy(ao);
    if (q)
        rd_kafka_queue_destroy(q);
    rd_kafka_destroy(h);
    return rc;
}

int op_topic_create(const char *bootstrap, const op_topic_auth_t *auth, const char *topic,
                    int partitions, int timeout_ms, int *existed, char *err, size_t errlen)
{
    return admin(bootstrap, auth, topic, partitions, 1, timeout_ms, existed, err, errlen);
}

int op_topic_delete(const char *bootstrap, const op_topic_auth_t *auth, const char *topic,
                    int timeout_ms, char *err, size_t errlen)
{
    return admin(bootstrap, auth, topic, 0, 0, timeout_ms, NULL, err, errlen);
}

int op_topic_probe_tcp(const char *host, int port, int timeout_ms, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL, *a;
    char ps[16];
    int rc, last = -ECONNREFUSED;
    snprintf(ps, sizeof(ps), "%d", port);
    rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
        return -EHOSTUNREACH;
    }
    for (a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last = -errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            close(fd);
            freeaddrinfo(ai);
            return 0;
        }
        if (errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            rc = poll(&p, 1, timeout_ms);
            if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
                close(fd);
                freeaddrinfo(ai);
                return 0;
            }
            last = rc == 0 ? -ETIMEDOUT : -(soerr ? soerr : EIO);
        } else {
            last = -errno;
        }
        close(fd);
    }
    freeaddrinfo(ai);
    snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port, strerror(-last));
    return last;
}
