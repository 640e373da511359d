#!/usr/bin/env python3
"""A real gRPC service and client (python3-grpcio, no generated code: a
generic handler with raw bytes) for the live HTTP/2 test.

  grpc_service.py serve PORT SECRET      # serves /payments.v1.Payments/Refund
  grpc_service.py call PORT TOKEN N [AUTHORITY]
                                         # N unary calls with Bearer TOKEN
                                         # (:authority AUTHORITY if given)

The server checks `authorization: Bearer <JWT>` as a JWT middleware would:
HS256 with SECRET and exp in the future, else UNAUTHENTICATED (16); a
valid token without scope "refund" gets PERMISSION_DENIED (7). The client
prints each call's status code.
"""
import base64
import hashlib
import hmac
import json
import sys
import time
from concurrent import futures

import grpc

METHOD = "/payments.v1.Payments/Refund"


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check(token, secret):
    try:
        h, p, s = token.split(".")
        want = hmac.new(secret.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(want, b64d(s)):
            return grpc.StatusCode.UNAUTHENTICATED
        claims = json.loads(b64d(p))
        if claims.get("exp", 0) < time.time():
            return grpc.StatusCode.UNAUTHENTICATED
        if "refund" not in claims.get("scope", "").split():
            return grpc.StatusCode.PERMISSION_DENIED
        return grpc.StatusCode.OK
    except Exception:
        return grpc.StatusCode.UNAUTHENTICATED


def serve(port, secret):
    def refund(request, context):
        auth = dict(context.invocation_metadata()).get("authorization", "")
        code = check(auth[7:] if auth.lower().startswith("bearer ") else "", secret)
        if code != grpc.StatusCode.OK:
            context.abort(code, "token rejected")
        return b"refunded"

    handler = grpc.method_handlers_generic_handler("payments.v1.Payments", {
        "Refund": grpc.unary_unary_rpc_method_handler(
            refund, request_deserializer=None, response_serializer=None)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("serving", flush=True)
    server.wait_for_termination()


def call(port, token, n, authority=None):
    options = [("grpc.default_authority", authority)] if authority else []
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as ch:
        stub = ch.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        for _ in range(n):
            try:
                stub(b"order-42", metadata=(("authorization", f"Bearer {token}"),), timeout=10)
                print(0)
            except grpc.RpcError as e:
                print(e.code().value[0])


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        call(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]),
             sys.argv[5] if len(sys.argv) > 5 else None)
