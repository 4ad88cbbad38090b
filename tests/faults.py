"""Faults for bench.proxy's `intercept` hook: what a cloud API does on a bad day, in the error
shapes ELBv2 (XML) and the Compute API (JSON) really send.

A `Faults` object picks, request by request and from a seeded random generator, whether a fault
applies; the request is forwarded or not as the fault says (a lost answer is forwarded first, so
the change lands and only the answer is lost), and every injection is counted by kind.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from bench.proxy import HANG, RESET, Answer, Request, Response

AWS_WRITES = frozenset({"ModifyListener", "ModifyLoadBalancerAttributes"})
GCP_WRITES = frozenset({"POST", "PATCH", "DELETE", "PUT"})


class Kind(StrEnum):
    UNAVAILABLE = "503"  # the request never reached the service
    THROTTLED = "throttled"  # ELBv2's Throttling (400) or Google's 429
    RESET = "reset"  # the connection is reset, no answer
    LOST_500 = "lost-500"  # forwarded (the change lands), then answered 500
    LOST_CUT = "lost-cut"  # forwarded, then the 200 answer is cut off mid-body
    EXPIRED = "expired"  # the credentials expired: every request from then on is refused
    DENIED = "denied"  # writes are refused (AccessDenied / PERMISSION_DENIED)
    BLACK_HOLE = "black-hole"  # accepted, never answered


@dataclass
class Faults:
    """Inject `kind` into a share `rate` of the requests it applies to (writes only for the lost
    answers and AccessDenied), after letting the first `after` requests through; `resets` is a
    share of the other requests whose connection is reset as well (weather is mixed)."""

    dialect: str  # "aws" or "gcp"
    kind: Kind
    upstream: str = ""  # the Compute API's URL, to let a lost write's operation finish
    rate: float = 1.0
    after: int = 0
    resets: float = 0.0
    seed: int = 16
    injected: Counter[str] = field(default_factory=Counter)
    seen: int = 0
    active: bool = True
    first: float | None = None  # time.monotonic() of the first request
    _random: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def is_write(self, request: Request) -> bool:
        if self.dialect == "aws":
            return request.action in AWS_WRITES
        return request.method in GCP_WRITES

    def _hit(self, request: Request) -> Kind | None:
        with self._lock:
            self.seen += 1
            if self.first is None:
                self.first = time.monotonic()
            if not self.active or self.seen <= self.after:
                return None
            if self.kind in (Kind.LOST_500, Kind.LOST_CUT, Kind.DENIED) and not self.is_write(
                request
            ):
                return None
            if self.kind is Kind.EXPIRED or self._random.random() < self.rate:
                return self.kind
            return Kind.RESET if self._random.random() < self.resets else None

    def __call__(self, request: Request, forward: Callable[[], Response]) -> Answer:
        kind = self._hit(request)
        if kind is None:
            return forward()
        self.injected[kind.value] += 1
        if kind is Kind.RESET:
            return RESET
        if self.kind is Kind.BLACK_HOLE:
            return HANG
        if self.kind is Kind.LOST_500:
            landed = forward()
            self._settle(landed)
            return self._error(500, request)
        if self.kind is Kind.LOST_CUT:
            landed = forward()
            self._settle(landed)
            return Response(landed.status, landed.headers, landed.body[: len(landed.body) // 2])
        if self.kind is Kind.UNAVAILABLE:
            return self._error(503, request)
        if self.kind is Kind.THROTTLED:
            return self._error(429, request)
        if self.kind is Kind.EXPIRED:
            return self._error(401, request)
        return self._error(403, request)

    def _settle(self, answer: Response) -> None:
        """On the Compute API a write returns an Operation that finishes later; a client whose
        answer was lost does not know it, so let the operation finish as Google's would."""
        if self.dialect != "gcp" or answer.status != 200:
            return
        operation = json.loads(answer.body)
        if operation.get("kind") != "compute#operation":
            return
        path = urllib.parse.urlsplit(operation["selfLink"]).path
        upstream = urllib.parse.urlsplit(self.upstream)
        for _ in range(50):
            connection = http.client.HTTPConnection(upstream.hostname or "", upstream.port)
            try:
                connection.request("GET", path)
                status = json.loads(connection.getresponse().read()).get("status")
            finally:
                connection.close()
            if status == "DONE":
                return
            time.sleep(0.01)
        raise AssertionError(f"operation {path} did not finish")

    def _error(self, status: int, request: Request) -> Response:
        if self.dialect == "aws" and request.service == "apigateway":
            return _rest_json_error(status)
        if self.dialect == "aws":
            return _aws_error(status)
        return _gcp_error(status)


AWS_CODES = {
    500: ("Receiver", "InternalFailure", "We encountered an internal error. Please try again."),
    503: ("Receiver", "ServiceUnavailable", "Service is unavailable. Please try again later."),
    429: ("Sender", "Throttling", "Rate exceeded"),
    401: ("Sender", "ExpiredToken", "The security token included in the request is expired"),
    403: ("Sender", "AccessDenied", "User is not authorized to perform this action"),
}


def _aws_error(status: int) -> Response:
    """ELBv2's query-protocol error document (Throttling and ExpiredToken come as HTTP 400)."""
    error_type, code, message = AWS_CODES[status]
    body = (
        '<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
        f"<Error><Type>{error_type}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000016</RequestId></ErrorResponse>"
    ).encode()
    http_status = 400 if status in (429, 401) else status
    return Response(http_status, [("Content-Type", "text/xml")], body)


REST_JSON_CODES = {
    500: (500, "InternalServerErrorException", "Internal server error"),
    503: (503, "ServiceUnavailableException", "Service unavailable"),
    429: (429, "TooManyRequestsException", "Too Many Requests"),
    401: (403, "ExpiredTokenException", "The security token included in the request is expired"),
    403: (403, "AccessDeniedException", "User is not authorized to perform this action"),
}


def _rest_json_error(status: int) -> Response:
    """API Gateway's REST-JSON error: the code in `x-amzn-ErrorType`, the message in the body."""
    http_status, code, message = REST_JSON_CODES[status]
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    return Response(http_status, headers, json.dumps({"message": message}).encode())


GCP_CODES = {
    500: ("INTERNAL", "backendError", "Internal error. Please try again."),
    503: ("UNAVAILABLE", "backendError", "The service is currently unavailable."),
    429: ("RESOURCE_EXHAUSTED", "rateLimitExceeded", "Rate Limit Exceeded"),
    401: ("UNAUTHENTICATED", "authError", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "forbidden", "Required 'compute.targetHttpsProxies' permission"),
}


def _gcp_error(status: int) -> Response:
    """Google's JSON error shape, as the Compute API sends it."""
    state, reason, message = GCP_CODES[status]
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": state,
        }
    }
    return Response(
        status, [("Content-Type", "application/json; charset=UTF-8")], json.dumps(body).encode()
    )
