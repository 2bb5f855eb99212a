/* SPDX-License-Identifier: Apache-2.0 */
/*
 * weir_udf: a small, single-threaded C SDK for writing Weir UDF sidecars.
 *
 * A UDF is a gRPC server for the streaming-runtimes MessagingService
 * contract (examples/udf/proto/messaging.proto). This SDK serves its
 * `requestReply` RPC (the one Weir's dataplane calls) over plaintext HTTP/2
 * (h2c) with nghttp2, and uses protobuf-c code generated from the same proto
 * (dataplane/src/dp_udf_pb.{h,c}) for the messages. It is meant to be read
 * and copied: one poll() loop, one nghttp2 server session per connection,
 * your handler called synchronously for every complete request.
 *
 *     static void upper(const weir_udf_request *req, weir_udf_reply *rep, void *arg)
 *     {
 *         ... weir_udf_reply_payload(rep, buf, len);
 *         ... weir_udf_reply_header(rep, "udf", "c-uppercase");
 *     }
 *     int main(int argc, char **argv)
 *     {
 *         weir_udf_options o;
 *         if (weir_udf_parse_args(&o, argc, argv, NULL, NULL) != 0)
 *             return 2;
 *         return weir_udf_serve(&o, "c-uppercase", upper, NULL);
 *     }
 *
 * The same handler serves requestReply and biStream (called per request
 * message as it arrives; one reply per request, in order; a failed request
 * ends the stream with its status). clientStream, serverStream and unknown
 * paths are answered with gRPC status UNIMPLEMENTED.
 */
#ifndef WEIR_UDF_H
#define WEIR_UDF_H

#include <stddef.h>
#include <stdint.h>

/* gRPC status codes used by the SDK (and handy for handlers). */
enum {
    WEIR_GRPC_OK = 0,
    WEIR_GRPC_INVALID_ARGUMENT = 3,
    WEIR_GRPC_RESOURCE_EXHAUSTED = 8,
    WEIR_GRPC_UNIMPLEMENTED = 12,
    WEIR_GRPC_INTERNAL = 13,
};

/* One header of the GrpcMessage `headers` map (NUL-terminated strings). */
typedef struct weir_udf_header {
    const char *key;
    const char *value;
} weir_udf_header;

/* The request GrpcMessage; valid only during the handler call. */
typedef struct weir_udf_request {
    const uint8_t *payload;
    size_t payload_len;
    const weir_udf_header *headers;
    size_t n_headers;
} weir_udf_request;

/* Value of header KEY in REQ, or NULL. */
const char *weir_udf_header_get(const weir_udf_request *req, const char *key);

/* The reply being built by a handler (opaque). */
typedef struct weir_udf_reply weir_udf_reply;

/* Set the reply payload (copied). Returns 0, or -1 on out of memory. */
int weir_udf_reply_payload(weir_udf_reply *rep, const void *data, size_t len);
/* Add a reply header (copied). Returns 0 or -1. */
int weir_udf_reply_header(weir_udf_reply *rep, const char *key, const char *value);
/* Append one element to a GrpcPayloadCollection reply (copied). When any
 * element is added, the reply payload is the serialized collection and
 * anything given to weir_udf_reply_payload() is ignored. Returns 0 or -1. */
int weir_udf_reply_element(weir_udf_reply *rep, const void *data, size_t len);
/* Fail the call with gRPC status STATUS (non-zero) and MESSAGE. */
void weir_udf_reply_error(weir_udf_reply *rep, int status, const char *message);

/* A decoded GrpcPayloadCollection (what window aggregation sends). */
typedef struct weir_udf_collection weir_udf_collection;

/* Decode DATA as a GrpcPayloadCollection; NULL if malformed. */
weir_udf_collection *weir_udf_collection_decode(const uint8_t *data, size_t len);
size_t weir_udf_collection_size(const weir_udf_collection *c);
/* Element I (0 <= I < size); its length in *LEN. */
const uint8_t *weir_udf_collection_item(const weir_udf_collection *c, size_t i, size_t *len);
void weir_udf_collection_free(weir_udf_collection *c);

/* Handler for one requestReply call. Leave REP empty for an empty reply. */
typedef void (*weir_udf_fn)(const weir_udf_request *req, weir_udf_reply *rep, void *arg);

typedef struct weir_udf_options {
    const char *host;   /* bind address; default "127.0.0.1" */
    int port;           /* default $UDF_PORT, else 55554; 0 = any free port */
    size_t max_message; /* largest request message; default 4 MiB */
} weir_udf_options;

/* Called for an option the SDK does not know (e.g. "--key", "team");
 * return 0 if accepted. VALUE is the next argument (NULL if none). */
typedef int (*weir_udf_extra_opt)(const char *opt, const char *value, void *arg);

/* Defaults, then --host H and --port N from ARGV; every other "--opt value"
 * pair goes to EXTRA (an error if EXTRA is NULL or rejects it). Returns 0,
 * or -1 after printing usage to stderr. */
int weir_udf_parse_args(weir_udf_options *o, int argc, char **argv, weir_udf_extra_opt extra,
                        void *arg);

/* Serve until SIGTERM/SIGINT. Logs one JSON line per event on stdout, e.g.
 * {"level":"info","msg":"udf ready","port":55554,"udf":"NAME"}.
 * Returns 0 on a clean stop, 1 on a setup error (e.g. bind failed). */
int weir_udf_serve(const weir_udf_options *o, const char *name, weir_udf_fn fn, void *arg);

#endif
