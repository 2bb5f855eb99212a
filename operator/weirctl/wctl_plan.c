/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_plan: the pure part of `weirctl run`: manifests in, topics, per-replica
 * pipeline specs and UDF commands out. */
#include "wctl_plan.h"

#include "op_render.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jstr2(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);

    if (b != NULL)
        v = json_object_get(v, b);
    return json_string_value(v);
}

const char *wctl_plan_udf_command(const json_t *proc, const char *container, const char *image,
                                  const json_t *udf_map)
{
    const char *cmd;
    char key[320];

    cmd = json_string_value(json_object_get(json_object_get(udf_map, "containers"), container));
    if (cmd == NULL && image != NULL)
        cmd = json_string_value(json_object_get(json_object_get(udf_map, "images"), image));
    if (cmd != NULL)
        return cmd;
    snprintf(key, sizeof(key), "%s%s", WCTL_ANNOTATION_COMMAND, container);
    return json_string_value(
        json_object_get(json_object_get(json_object_get(proc, "metadata"), "annotations"), key));
}

static int put(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
    if (*o + n + 1 > outlen)
        return -ENOSPC;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
    return 0;
}

int wctl_plan_expand_command(const char *cmd, int declared, int port, int replica, char *out,
                             size_t outlen)
{
    char ps[16], rs[16], ds[16];
    size_t o = 0, dl, i = 0, n = strlen(cmd);

    if (outlen == 0)
        return -ENOSPC;
    out[0] = '\0';
    snprintf(ps, sizeof(ps), "%d", port);
    snprintf(rs, sizeof(rs), "%d", replica);
    snprintf(ds, sizeof(ds), "%d", declared);
    dl = strlen(ds);
    while (i < n) {
        if (strncmp(cmd + i, "{port}", 6) == 0) {
            if (put(out, outlen, &o, ps, strlen(ps)) != 0)
                return -ENOSPC;
            i += 6;
        } else if (strncmp(cmd + i, "{replica}", 9) == 0) {
            if (put(out, outlen, &o, rs, strlen(rs)) != 0)
                return -ENOSPC;
            i += 9;
        } else if (declared > 0 && strncmp(cmd + i, ds, dl) == 0 &&
                   (i == 0 || !isalnum((unsigned char)cmd[i - 1])) &&
                   !isalnum((unsigned char)cmd[i + dl])) {
            if (put(out, outlen, &o, ps, strlen(ps)) != 0)
                return -ENOSPC;
            i += dl;
        } else {
            if (put(out, outlen, &o, cmd + i, 1) != 0)
                return -ENOSPC;
            i++;
        }
    }
    return 0;
}

static int set_bootstrap(json_t *cluster, const char *bootstrap)
{
    if (!json_is_object(cluster))
        return 0;
    return json_object_set_new(cluster, "bootstrap", json_string(bootstrap)) != 0 ? -ENOMEM : 0;
}

int wctl_plan_rewrite_spec(json_t *spec, const char *bootstrap, int index, const int *udf_ports,
                           size_t nports)
{
    const char *lists[] = {"inputs", "outputs"};
    json_t *udfs = json_object_get(spec, "udfs");
    json_t *e, *rep;
    size_t i;

    if (json_array_size(udfs) != nports)
        return -EINVAL;
    for (size_t l = 0; l < 2; l++)
        json_array_foreach (json_object_get(spec, lists[l]), i, e)
            if (set_bootstrap(json_object_get(e, "cluster"), bootstrap) != 0)
                return -ENOMEM;
    if (set_bootstrap(json_object_get(json_object_get(spec, "deadLetter"), "cluster"), bootstrap) !=
        0)
        return -ENOMEM;
    rep = json_object_get(spec, "replica");
    if (json_is_object(rep) && json_object_set_new(rep, "index", json_integer(index)) != 0)
        return -ENOMEM;
    json_array_foreach (udfs, i, e) {
        char ep[32];

        snprintf(ep, sizeof(ep), "127.0.0.1:%d", udf_ports[i]);
        if (json_object_set_new(e, "endpoint", json_string(ep)) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* Partitions of a Stream, as op_render counts them. */
static json_int_t stream_partitions(const json_t *st)
{
    const json_t *spec = json_object_get(st, "spec");
    const json_t *pc = json_object_get(spec, "partitionCount");

    if (json_is_integer(pc))
        return json_integer_value(pc);
    return json_object_get(spec, "keyExpression") != NULL ||
                   json_array_size(json_object_get(spec, "keys")) > 0
               ? 5
               : 1;
}

static const json_t *find_container(const json_t *proc, const char *name)
{
    const json_t *cs = json_object_get(
        json_object_get(json_object_get(json_object_get(proc, "spec"), "template"), "spec"),
        "containers");
    const json_t *c;
    size_t i;

    json_array_foreach (cs, i, c) {
        const char *n = jstr2(c, "name", NULL);
        if (n != NULL && strcmp(n, name) == 0)
            return c;
    }
    return NULL;
}

static int endpoint_port(const char *ep)
{
    const char *colon = ep ? strrchr(ep, ':') : NULL;

    return colon ? atoi(colon + 1) : 0;
}

/* One replica of processor `proc`: its spec and UDF commands. */
static int plan_replica(const json_t *proc, const char *origin, const json_t *rendered, int index,
                        const wctl_plan_opts_t *opts, int *next_port, json_t *replicas_plan,
                        char *err, size_t errlen)
{
    const char *name = jstr2(proc, "metadata", "name");
    json_t *spec = json_deep_copy(rendered);
    json_t *udfs = json_array(), *rp = NULL, *e;
    int ports[16];
    size_t i, nudf = json_array_size(json_object_get(rendered, "udfs"));
    char pod[320];
    int r = -ENOMEM;

    if (spec == NULL || udfs == NULL)
        goto out;
    if (nudf > 16) {
        snprintf(err, errlen, "%s: Processor %s: more than 16 UDFs", origin, name);
        r = -EINVAL;
        goto out;
    }
    json_array_foreach (json_object_get(rendered, "udfs"), i, e) {
        const char *container = jstr2(e, "name", NULL);
        const json_t *c = find_container(proc, container);
        const char *image = jstr2(c, "image", NULL);
        const char *cmd = wctl_plan_udf_command(proc, container, image, opts->udf_map);
        char expanded[4096];

        if (cmd == NULL) {
            snprintf(err, errlen,
                     "%s: Processor %s: UDF container \"%s\" (image %s) has no local command: "
                     "add the annotation %s%s: \"COMMAND\" to the Processor, or an entry in "
                     "--udf-map",
                     origin, name, container, image ? image : "(none)", WCTL_ANNOTATION_COMMAND,
                     container);
            r = -EINVAL;
            goto out;
        }
        if (*next_port > opts->udf_port_max) {
            snprintf(err, errlen, "%s: Processor %s: out of UDF ports (%d-%d are all used)", origin,
                     name, opts->udf_port_base, opts->udf_port_max);
            r = -EINVAL;
            goto out;
        }
        ports[i] = (*next_port)++;
        if (wctl_plan_expand_command(cmd, endpoint_port(jstr2(e, "endpoint", NULL)), ports[i],
                                     index, expanded, sizeof(expanded)) != 0) {
            snprintf(err, errlen, "%s: Processor %s: UDF command of \"%s\" is too long", origin,
                     name, container);
            r = -EINVAL;
            goto out;
        }
        if (json_array_append_new(udfs, json_pack("{s:s, s:s?, s:s, s:i}", "container", container,
                                                  "image", image, "command", expanded, "port",
                                                  ports[i])) != 0)
            goto out;
    }
    r = wctl_plan_rewrite_spec(spec, opts->bootstrap, index, ports, nudf);
    if (r != 0)
        goto out;
    snprintf(pod, sizeof(pod), "weir-proc-%s-%d", name, index);
    rp = json_pack("{s:i, s:s, s:O, s:O}", "index", index, "podName", pod, "spec", spec, "udfs",
                   udfs);
    if (rp == NULL || json_array_append_new(replicas_plan, rp) != 0) {
        r = -ENOMEM;
        goto out;
    }
    r = 0;
out:
    json_decref(spec);
    json_decref(udfs);
    return r;
}

static int plan_processor(const json_t *proc, const char *origin, const json_t *deps,
                          const wctl_plan_opts_t *opts, int *next_port, json_t *procs, char *err,
                          size_t errlen)
{
    op_render_config_t cfg = {0};
    const char *name = jstr2(proc, "metadata", "name");
    const char *type = jstr2(proc, "spec", "type");
    json_t *rendered = NULL, *replicas_plan = NULL, *outputs = NULL, *e;
    char msg[1024];
    op_render_err_t rc;
    json_int_t replicas;
    size_t i;
    int r = -ENOMEM;

    if (type != NULL && strcmp(type, "SRP") != 0) {
        snprintf(err, errlen,
                 "%s: Processor %s: type %s cannot run locally (weirctl run executes SRP "
                 "processors; %s)",
                 origin, name, type,
                 strcmp(type, "FSQL") == 0 ? "streaming SQL is not supported yet"
                                           : "an SCS processor is a container image");
        return -EINVAL;
    }
    rc = op_render_pipeline(&cfg, proc, deps, &rendered, msg, sizeof(msg));
    if (rc != OP_RENDER_OK) {
        snprintf(err, errlen, "%s: Processor %s: %s: %s", origin, name, op_render_err_reason(rc),
                 msg);
        return rc == OP_RENDER_ERR_NOMEM ? -ENOMEM : -EINVAL;
    }
    replicas = json_integer_value(json_object_get(json_object_get(rendered, "replica"), "count"));
    if (replicas < 1)
        replicas = 1;
    replicas_plan = json_array();
    outputs = json_array();
    if (replicas_plan == NULL || outputs == NULL)
        goto out;
    json_array_foreach (json_object_get(rendered, "outputs"), i, e)
        if (json_array_append(outputs, json_object_get(e, "topic")) != 0)
            goto out;
    for (json_int_t k = 0; k < replicas; k++) {
        r = plan_replica(proc, origin, rendered, (int)k, opts, next_port, replicas_plan, err,
                         errlen);
        if (r != 0)
            goto out;
    }
    r = json_array_append_new(procs, json_pack("{s:s, s:s, s:I, s:s, s:O, s:O}", "name", name,
                                               "namespace", jstr2(proc, "metadata", "namespace"),
                                               "replicas", replicas, "origin", origin, "outputs",
                                               outputs, "replicas_plan", replicas_plan)) != 0
            ? -ENOMEM
            : 0;
out:
    json_decref(rendered);
    json_decref(replicas_plan);
    json_decref(outputs);
    return r;
}

int wctl_plan_build(const wctl_manifest_t *m, const wctl_plan_opts_t *opts, json_t **plan,
                    char *err, size_t errlen)
{
    json_t *deps = wctl_manifest_deps(m);
    json_t *topics = json_array(), *procs = json_array(), *seen = json_object();
    const json_t *st, *proc;
    size_t i, nproc = 0;
    int next_port = opts->udf_port_base;
    int r = -ENOMEM;

    *plan = NULL;
    if (deps == NULL || topics == NULL || procs == NULL || seen == NULL)
        goto out;
    json_array_foreach (m->streams, i, st) {
        const char *topic = jstr2(st, "spec", "name");
        json_int_t parts = stream_partitions(st);
        char sname[600];
        const json_t *prev = json_object_get(seen, topic);

        if (parts < 1 || parts > 65536) {
            snprintf(err, errlen, "%s: Stream %s: spec.partitionCount must be 1..65536",
                     wctl_manifest_origin(m, "Stream", st), jstr2(st, "metadata", "name"));
            r = -EINVAL;
            goto out;
        }
        /* Two Streams may name one topic (a processor's output is another's
         * input across namespaces); the larger partition count wins. */
        if (prev != NULL) {
            if (json_integer_value(json_object_get(prev, "partitions")) < parts)
                json_object_set_new((json_t *)prev, "partitions", json_integer(parts));
            continue;
        }
        snprintf(sname, sizeof(sname), "%s/%s", jstr2(st, "metadata", "namespace"),
                 jstr2(st, "metadata", "name"));
        if (json_array_append_new(topics, json_pack("{s:s, s:I, s:s}", "topic", topic, "partitions",
                                                    parts, "stream", sname)) != 0 ||
            json_object_set(seen, topic, json_array_get(topics, json_array_size(topics) - 1)))
            goto out;
    }
    json_array_foreach (m->processors, i, proc) {
        const json_t *rep = json_object_get(json_object_get(proc, "spec"), "replicas");

        nproc += json_is_integer(rep) && json_integer_value(rep) > 0
                     ? (size_t)json_integer_value(rep)
                     : 1;
        if (nproc > WCTL_PLAN_PROCESSES_MAX) {
            snprintf(err, errlen, "%s: more than %d processor replicas in all",
                     wctl_manifest_origin(m, "Processor", proc), WCTL_PLAN_PROCESSES_MAX);
            r = -EINVAL;
            goto out;
        }
        r = plan_processor(proc, wctl_manifest_origin(m, "Processor", proc), deps, opts, &next_port,
                           procs, err, errlen);
        if (r != 0)
            goto out;
    }
    *plan = json_pack("{s:O, s:O}", "topics", topics, "processors", procs);
    r = *plan != NULL ? 0 : -ENOMEM;
out:
    if (r == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    json_decref(deps);
    json_decref(topics);
    json_decref(procs);
    json_decref(seen);
    return r;
}
