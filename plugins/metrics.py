"""Prometheus metrics at ``GET /metrics`` (docs/observability.md): requests by route template and
status, their latency, chat turns by agent and provider, each provider's latency and failures, the
time to a stream's first text, reminder deliveries by channel and status, storage operation time,
and the process's own (memory, CPU, open files).

Every label is bounded by config or code, never by what a client sends: the route's template
(not the path, which holds ids), a method from HTTP's own list, agents and providers from
config.yaml, channels and collections that plugins declare.

Off the public internet by default: with ``metrics.token`` empty, only a request from this
machine (127.0.0.1, ::1) that no proxy forwarded is answered (behind Caddy every request comes
from 127.0.0.1, with X-Forwarded-For: those are refused); with a token, a scraper anywhere sends
``Authorization: Bearer <token>``. prometheus_client is imported here only.
"""

import hmac
import ipaddress

import bottle

from wellmate import ApiError, Setting, __version__, client_address, forwarded, hookimpl
from wellmate_plugins._openapi import Api, download

METHODS = frozenset(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
UNMATCHED = "(none)"  # the route label of a request no route answered (a 404, a 405)

# Seconds. A stream's request lasts as long as the reply: up to minutes.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120)
# A files-backend get takes ~2 us, an fsynced append ~0.2 ms on an SSD and ~5 ms on a Pi's SD card.
STORAGE_BUCKETS = (0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


@hookimpl
def config_schema():
    return {"metrics": {
        "enabled": Setting(True, "Serve Prometheus metrics at /metrics.", bool),
        "token": Setting("", "A bearer token Prometheus sends (authorization: {credentials: ...}); empty: /metrics "
                             "answers only this machine's requests that no proxy forwarded."),
    }}


class Metrics:
    """This Wellmate's metrics, in a registry of its own (a process may hold several Wellmates:
    the tests build hundreds)."""

    def __init__(self, wm):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client.process_collector import ProcessCollector

        self.token = wm.config["metrics"]["token"]
        self.registry = registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)
        Gauge("wellmate_info", "Wellmate's version.", ["version"], registry=registry).labels(__version__).set(1)
        self.requests = Counter("wellmate_http_requests", "HTTP requests answered, by route template and status.",
                                ["method", "route", "status"], registry=registry)
        self.latency = Histogram("wellmate_http_request_duration_seconds",
                                 "Time to answer an HTTP request (a stream: until it ended), by route template.",
                                 ["method", "route"], buckets=HTTP_BUCKETS, registry=registry)
        self.turns = Counter("wellmate_chat_turns", "Chat turns, by agent, what answered (none: nothing) and "
                             "how they ended (complete, incomplete, fallback, failed).",
                             ["agent", "provider", "status", "streamed"], registry=registry)
        self.provider_latency = Histogram("wellmate_provider_duration_seconds", "Time a provider took to answer "
                                          "a chat turn in full, or to fail (outcome ok or failed).",
                                          ["provider", "outcome"], buckets=PROVIDER_BUCKETS, registry=registry)
        self.provider_failures = Counter("wellmate_provider_failures", "Providers that failed a chat turn "
                                         "(the next in the chain was asked).", ["provider"], registry=registry)
        self.first_delta = Histogram("wellmate_stream_first_delta_seconds", "Time from asking a provider to its "
                                     "first text in a streamed chat turn.", ["provider"], buckets=PROVIDER_BUCKETS,
                                     registry=registry)
        self.deliveries = Counter("wellmate_reminder_deliveries", "Reminder deliveries, by channel (none: a time "
                                  "missed as a whole) and status.", ["channel", "status"], registry=registry)
        self.storage = Histogram("wellmate_storage_operation_duration_seconds", "Time of a storage operation, "
                                 "by operation and collection (messages: the chat message log).",
                                 ["operation", "collection"], buckets=STORAGE_BUCKETS, registry=registry)
        self.storage_series = {}  # (operation, collection) -> its histogram: labels() costs ~3 us a call

    def storage_series_of(self, operation: str, collection: str):
        series = self.storage_series.get((operation, collection))
        if series is None:
            series = self.storage_series.setdefault((operation, collection), self.storage.labels(operation, collection))
        return series

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def check_access(self) -> None:
        """Raise the error for a request that may not read the metrics."""
        if self.token:
            given = bottle.request.environ.get("HTTP_AUTHORIZATION", "")
            if not hmac.compare_digest(given.encode("utf-8", "replace"), f"Bearer {self.token}".encode()):
                raise ApiError(401, "unauthorized", "Send 'Authorization: Bearer <metrics.token>'.",
                               headers={"WWW-Authenticate": "Bearer"})
            return
        if forwarded() or not is_loopback(client_address()):
            raise ApiError(403, "metrics_forbidden", "/metrics answers only requests from this machine that no "
                                                     "proxy forwarded; set metrics.token to scrape it from elsewhere.")


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)


@hookimpl
def register_services(register):
    register("metrics", lambda wm: Metrics(wm) if wm.config["metrics"]["enabled"] else None)


@hookimpl
def request_finished(request, wm):
    metrics = wm.service("metrics")
    if metrics is None:
        return
    method = request.method if request.method in METHODS else "OTHER"
    route = request.route or UNMATCHED
    metrics.requests.labels(method, route, str(request.status)).inc()
    metrics.latency.labels(method, route).observe(request.seconds)


@hookimpl
def turn_finished(turn, outcome, wm):
    metrics = wm.service("metrics")
    if metrics is None:
        return
    metrics.turns.labels(turn.agent, outcome.provider or "none", outcome.status, str(outcome.streamed).lower()).inc()
    for attempt in outcome.attempts:
        metrics.provider_latency.labels(attempt.provider, "ok" if attempt.error is None else "failed").observe(
            attempt.seconds)
        if attempt.error is not None:
            metrics.provider_failures.labels(attempt.provider).inc()
        if attempt.first_delta is not None:
            metrics.first_delta.labels(attempt.provider).observe(attempt.first_delta)


@hookimpl
def reminder_delivered(delivery, wm):
    metrics = wm.service("metrics")
    if metrics is not None:
        metrics.deliveries.labels(delivery.get("channel") or "none", str(delivery.get("status"))).inc()


@hookimpl
def storage_operation(operation, collection, seconds, wm):
    metrics = wm.service("metrics")
    if metrics is not None:
        metrics.storage_series_of(operation, collection).observe(seconds)


@hookimpl
def routes(app, wm):
    metrics = wm.service("metrics")
    if metrics is None:
        return

    @app.get("/metrics", api=Api(
        "Prometheus metrics", auth="public",  # its own check: from this machine, or metrics.token
        responses={200: download("text/plain", attachment=False)},  # the version and charset follow prometheus_client
        errors={401: "metrics.token is set and was not sent", 403: "not from this machine, or forwarded by a proxy"}))
    def read_metrics():
        metrics.check_access()
        from prometheus_client import CONTENT_TYPE_LATEST

        bottle.response.content_type = CONTENT_TYPE_LATEST
        return metrics.exposition()
