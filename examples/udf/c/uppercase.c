/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Weir example UDF in C: an uppercase mapper on the weir_udf SDK.
 * requestReply: payload uppercased (ASCII letters, byte by byte), the request
 * headers (including contentType) echoed back, plus udf=NAME (c-uppercase;
 * --udf-name NAME changes it).
 */
#include "weir_udf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void uppercase(const weir_udf_request *req, weir_udf_reply *rep, void *arg)
{
    uint8_t *out = malloc(req->payload_len ? req->payload_len : 1);
    if (out == NULL) {
        weir_udf_reply_error(rep, WEIR_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < req->payload_len; i++) {
        uint8_t b = req->payload[i];
        out[i] = b >= 'a' && b <= 'z' ? (uint8_t)(b - 'a' + 'A') : b;
    }
    int rv = weir_udf_reply_payload(rep, out, req->payload_len);
    free(out);
    for (size_t i = 0; rv == 0 && i < req->n_headers; i++)
        rv = weir_udf_reply_header(rep, req->headers[i].key, req->headers[i].value);
    if (rv == 0)
        rv = weir_udf_reply_header(rep, "udf", arg);
    if (rv != 0)
        weir_udf_reply_error(rep, WEIR_GRPC_RESOURCE_EXHAUSTED, "out of memory");
}

/* --udf-name NAME: the value of the `udf` reply header. */
static int parse_name(const char *opt, const char *value, void *arg)
{
    if (strcmp(opt, "--udf-name") != 0 || value == NULL)
        return -1;
    *(const char **)arg = value;
    return 0;
}

int main(int argc, char **argv)
{
    const char *name = "c-uppercase";
    weir_udf_options opt;
    if (weir_udf_parse_args(&opt, argc, argv, parse_name, &name) != 0) {
        fprintf(stderr, "  --udf-name NAME  value of the udf reply header (default c-uppercase)\n");
        return 2;
    }
    return weir_udf_serve(&opt, name, uppercase, (void *)name);
}
