"""The grpc_health example checked with a client nobody here wrote: gRPC's
own Python stubs (grpcio-health-checking). Run by scripts/check-grpc-interop
with the example's HTTP and gRPC addresses and its PID; exits non-zero on
the first mismatch."""
import os
import queue
import signal
import sys
import threading
import time
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

http_addr, grpc_addr, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
Status = health_pb2.HealthCheckResponse
SERVING, NOT_SERVING, SERVICE_UNKNOWN = Status.SERVING, Status.NOT_SERVING, Status.SERVICE_UNKNOWN
name = Status.ServingStatus.Name

channel = grpc.insecure_channel(grpc_addr)
stub = health_pb2_grpc.HealthStub(channel)


def ok(what):
    print(f"  ok: {what}", flush=True)


def check(service):
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def expect_check(service, want):
    got = check(service)
    assert got == want, f"Check({service!r}) = {name(got)}, expected {name(want)}"
    ok(f"Check({service!r}) = {name(want)}")


def toggle():
    request = urllib.request.Request(f"http://{http_addr}/demo/toggle", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode().strip()


class Watch:
    """A Watch call read on its own thread, its messages in a queue."""

    def __init__(self, service):
        self.service = service
        self.messages = queue.Queue()
        self.call = stub.Watch(health_pb2.HealthCheckRequest(service=service))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for message in self.call:
                self.messages.put(message.status)
            self.messages.put("ended")
        except grpc.RpcError as e:
            self.messages.put(f"error {e.code()}")

    def expect(self, want, within=10):
        wanted = name(want) if isinstance(want, int) else want
        try:
            got = self.messages.get(timeout=within)
        except queue.Empty:
            raise AssertionError(f"Watch({self.service!r}): nothing within {within} s, expected {wanted}")
        shown = name(got) if isinstance(got, int) else got
        assert got == want, f"Watch({self.service!r}) sent {shown}, expected {wanted}"
        ok(f"Watch({self.service!r}) sent {wanted}")

    def expect_quiet(self, during):
        try:
            got = self.messages.get(timeout=during)
        except queue.Empty:
            ok(f"Watch({self.service!r}) quiet for {during} s")
            return
        raise AssertionError(f"Watch({self.service!r}) sent {got} while nothing changed")


# Check: readiness, probes, tags, unknown names.
for service in ["", "app", "payments", "tag:core", "tag:external"]:
    expect_check(service, SERVING)
try:
    check("no-such-service")
    raise AssertionError("Check of an unknown service did not fail")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.NOT_FOUND, e.code()
    ok("Check('no-such-service') fails with NOT_FOUND")

# List, from the current protocol.
listed = {k: v.status for k, v in stub.List(health_pb2.HealthListRequest(), timeout=5).statuses.items()}
for service in ["", "app", "scratch-dir", "payments", "tag:core", "tag:disk", "tag:external"]:
    assert listed.get(service) == SERVING, f"List: {service!r} -> {listed.get(service)}"
ok(f"List has {len(listed)} services, all SERVING")

# Watch: the status at once, then one message per transition.
payments = Watch("payments")
overall = Watch("")
unknown = Watch("no-such-service")
payments.expect(SERVING, within=5)
overall.expect(SERVING, within=5)
unknown.expect(SERVICE_UNKNOWN, within=5)

assert toggle() == "payments is now failing"
payments.expect(NOT_SERVING)
expect_check("payments", NOT_SERVING)
expect_check("tag:external", SERVING)  # payments is not critical
expect_check("", SERVING)
assert toggle() == "payments is now healthy"
# Within one poll, or after the demo's circuit breaker (3 failures, 30 s)
# if it opened meanwhile.
payments.expect(SERVING, within=45)
payments.expect_quiet(2.5)
overall.expect_quiet(0.1)
unknown.expect_quiet(0.1)

# SIGTERM: readiness fails at once on every name, the calls end after the drain delay.
os.kill(pid, signal.SIGTERM)
overall.expect(NOT_SERVING, within=3)
payments.expect(NOT_SERVING, within=3)
expect_check("", NOT_SERVING)
overall.expect("ended", within=10)
payments.expect("ended", within=10)
print("grpc interop: all checks passed")
