# SPDX-License-Identifier: Apache-2.0
# Shared runtime-built protobuf/gRPC plumbing for Weir's Python UDFs: the
# MessagingService contract (examples/udf/proto/messaging.proto) and the
# standard grpc.health.v1 service, without protoc-generated code.
"""Runtime-built message classes and gRPC handlers for Weir Python UDFs.

The message classes are built from FileDescriptorProtos assembled here, in a
private descriptor pool, so there is no generated ``*_pb2.py`` code that can
drift out of step with the installed protobuf runtime, and nothing clashes
with a generated module a UDF may import as well. The descriptors are the
same as protoc emits for messaging.proto (names, numbers, types, json_name),
so the wire bytes are identical. Keep ``_messaging_file()`` in sync with
examples/udf/proto/messaging.proto.

Typical use::

    import weir_udf_proto as wp

    def request_reply(msg, context):
        return wp.GrpcMessage(payload=msg.payload.upper(), headers=msg.headers)

    server.add_generic_rpc_handlers(
        [wp.messaging_handler(request_reply=request_reply)])
"""

import threading

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "org.springframework.cloud.function.grpc"
SERVICE_NAME = PACKAGE + ".MessagingService"
PROTO_FILE = "messaging.proto"

# RPC name -> (client streaming, server streaming), as in messaging.proto.
METHODS = {
    "biStream": (True, True),
    "clientStream": (True, False),
    "serverStream": (False, True),
    "requestReply": (False, False),
}

_F = descriptor_pb2.FieldDescriptorProto


def method_path(name, service=SERVICE_NAME):
    """Full gRPC method path, e.g. /org...MessagingService/requestReply."""
    return "/%s/%s" % (service, name)


def _field(msg, name, number, ftype, label=_F.LABEL_OPTIONAL, type_name=None,
           json_name=None):
    f = msg.field.add()
    f.name = name
    f.number = number
    f.type = ftype
    f.label = label
    if type_name:
        f.type_name = type_name
    # protoc always records json_name (lowerCamelCase of the field name).
    f.json_name = json_name or name
    return f


def _messaging_file():
    """FileDescriptorProto equivalent to examples/udf/proto/messaging.proto."""
    fd = descriptor_pb2.FileDescriptorProto()
    fd.name = PROTO_FILE
    fd.package = PACKAGE
    fd.syntax = "proto3"
    fd.options.java_multiple_files = True

    # message GrpcMessage { bytes payload = 1; map<string,string> headers = 2; }
    msg = fd.message_type.add()
    msg.name = "GrpcMessage"
    _field(msg, "payload", 1, _F.TYPE_BYTES)
    # A map field is a repeated nested "<Name>Entry" message with map_entry set.
    entry = msg.nested_type.add()
    entry.name = "HeadersEntry"
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_STRING)
    _field(msg, "headers", 2, _F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
           type_name=".%s.GrpcMessage.HeadersEntry" % PACKAGE)

    # message GrpcPayloadCollection { repeated bytes payload = 1; }
    coll = fd.message_type.add()
    coll.name = "GrpcPayloadCollection"
    _field(coll, "payload", 1, _F.TYPE_BYTES, label=_F.LABEL_REPEATED)

    svc = fd.service.add()
    svc.name = "MessagingService"
    for name, (cstream, sstream) in METHODS.items():
        m = svc.method.add()
        m.name = name
        m.input_type = ".%s.GrpcMessage" % PACKAGE
        m.output_type = ".%s.GrpcMessage" % PACKAGE
        if cstream:
            m.client_streaming = True
        if sstream:
            m.server_streaming = True
    return fd


def _health_file():
    """FileDescriptorProto equivalent to grpc/health/v1/health.proto."""
    fd = descriptor_pb2.FileDescriptorProto()
    fd.name = "grpc/health/v1/health.proto"
    fd.package = "grpc.health.v1"
    fd.syntax = "proto3"
    req = fd.message_type.add()
    req.name = "HealthCheckRequest"
    _field(req, "service", 1, _F.TYPE_STRING)
    resp = fd.message_type.add()
    resp.name = "HealthCheckResponse"
    enum = resp.enum_type.add()
    enum.name = "ServingStatus"
    for number, name in enumerate(
            ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")):
        v = enum.value.add()
        v.name = name
        v.number = number
    _field(resp, "status", 1, _F.TYPE_ENUM,
           type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus")
    svc = fd.service.add()
    svc.name = "Health"
    for name, sstream in (("Check", False), ("Watch", True)):
        m = svc.method.add()
        m.name = name
        m.input_type = ".grpc.health.v1.HealthCheckRequest"
        m.output_type = ".grpc.health.v1.HealthCheckResponse"
        if sstream:
            m.server_streaming = True
    return fd


def _message_class(desc):
    # GetMessageClass exists from protobuf 4.22 (Python); Debian 12 ships
    # 4.21, which only has MessageFactory.GetPrototype.
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(desc.file.pool).GetPrototype(desc)


MESSAGING_FILE_PROTO = _messaging_file()
HEALTH_FILE_PROTO = _health_file()

POOL = descriptor_pool.DescriptorPool()
POOL.Add(MESSAGING_FILE_PROTO)
POOL.Add(HEALTH_FILE_PROTO)

GrpcMessage = _message_class(POOL.FindMessageTypeByName(PACKAGE + ".GrpcMessage"))
GrpcPayloadCollection = _message_class(
    POOL.FindMessageTypeByName(PACKAGE + ".GrpcPayloadCollection"))
HealthCheckRequest = _message_class(
    POOL.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest"))
HealthCheckResponse = _message_class(
    POOL.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse"))

MESSAGING_SERVICE_DESCRIPTOR = POOL.FindServiceByName(SERVICE_NAME)
HEALTH_SERVICE_NAME = "grpc.health.v1.Health"

# Serializers for grpc: bytes <-> GrpcMessage.
serialize = GrpcMessage.SerializeToString
deserialize = GrpcMessage.FromString


def messaging_handler(request_reply=None, bi_stream=None, server_stream=None,
                      client_stream=None):
    """A grpc.GenericRpcHandler for MessagingService.

    Each argument is an ordinary grpc servicer callable: request_reply(msg,
    ctx) -> msg; bi_stream(iter, ctx) -> iter; server_stream(msg, ctx) ->
    iter; client_stream(iter, ctx) -> msg. RPCs left as None are not
    registered, so callers get UNIMPLEMENTED for them.
    """
    import grpc

    kw = dict(request_deserializer=deserialize, response_serializer=serialize)
    handlers = {}
    if request_reply is not None:
        handlers["requestReply"] = grpc.unary_unary_rpc_method_handler(request_reply, **kw)
    if bi_stream is not None:
        handlers["biStream"] = grpc.stream_stream_rpc_method_handler(bi_stream, **kw)
    if server_stream is not None:
        handlers["serverStream"] = grpc.unary_stream_rpc_method_handler(server_stream, **kw)
    if client_stream is not None:
        handlers["clientStream"] = grpc.stream_unary_rpc_method_handler(client_stream, **kw)
    return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)


class Health:
    """grpc.health.v1.Health status registry, added to a server by add_health().

    Uses Debian/PyPI's grpc_health package when importable, else a built-in
    implementation of Check (the RPC Kubernetes' gRPC probe and
    grpc_health_probe use) and Watch (sends the current status, then each
    change, until the call ends or shutdown() is called).
    """

    SERVING = 1
    NOT_SERVING = 2

    def __init__(self):
        self.impl = None  # "grpc_health" or "builtin"
        self._statuses = {}
        self._cond = threading.Condition()
        self._closed = False
        self._servicer = None

    def set(self, service, serving):
        status = self.SERVING if serving else self.NOT_SERVING
        if self._servicer is not None:
            from grpc_health.v1 import health_pb2
            self._servicer.set(service, health_pb2.HealthCheckResponse.ServingStatus.Value(
                "SERVING" if serving else "NOT_SERVING"))
            return
        with self._cond:
            self._statuses[service] = status
            self._cond.notify_all()

    def shutdown(self):
        """All services NOT_SERVING; ends builtin Watch streams."""
        if self._servicer is not None:
            self._servicer.enter_graceful_shutdown()
            return
        with self._cond:
            for k in self._statuses:
                self._statuses[k] = self.NOT_SERVING
            self._closed = True
            self._cond.notify_all()

    # -- built-in servicer ------------------------------------------------
    def _check(self, request, context):
        import grpc
        with self._cond:
            status = self._statuses.get(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return HealthCheckResponse(status=status)

    def _watch(self, request, context):
        last = None
        while context.is_active():
            with self._cond:
                status = self._statuses.get(request.service, 3)  # SERVICE_UNKNOWN
                closed = self._closed
                if status == last and not closed:
                    self._cond.wait(timeout=1.0)
                    continue
            if status != last:
                last = status
                yield HealthCheckResponse(status=status)
            if closed:
                return


def add_health(server, services=("", SERVICE_NAME)):
    """Register grpc.health.v1.Health on SERVER, every name in SERVICES
    SERVING. Returns the Health object (call .shutdown() before stopping)."""
    import grpc

    h = Health()
    try:
        from grpc_health.v1 import health, health_pb2_grpc
        h._servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(h._servicer, server)
        h.impl = "grpc_health"
    except ImportError:
        kw = dict(request_deserializer=HealthCheckRequest.FromString,
                  response_serializer=HealthCheckResponse.SerializeToString)
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            HEALTH_SERVICE_NAME, {
                "Check": grpc.unary_unary_rpc_method_handler(h._check, **kw),
                "Watch": grpc.unary_stream_rpc_method_handler(h._watch, **kw),
            })])
        h.impl = "builtin"
    for s in services:
        h.set(s, True)
    return h
