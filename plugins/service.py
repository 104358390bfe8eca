"""Service routes: liveness and storage checks for monitors and the mini-program's status page."""

import time

import bottle

import wellmate
from wellmate import ApiError, hookimpl
from wellmate_plugins._openapi import Api, boolean, number, obj, string


def health_report(wm) -> dict:
    """What the server's health is: ``status`` "ok", or "unavailable" (with an ``error``) when
    storage cannot be written, which a route answers as a 503. For every health route."""
    scheduler, reminders = wm.service("scheduler"), wm.service("reminders")
    # Storage that cannot be written (the last write failed, a read-only folder) is a 503
    # with what failed: a monitor sees it before users lose their input. trouble() reads
    # no data, so polling health stays cheap.
    trouble = wm.storage.trouble()
    return {
        **({"error": {"code": "storage_unavailable", "message": f"Writes to the {wm.storage.name} storage "
                                                                f"fail: {trouble}"}} if trouble else {}),
        "status": "unavailable" if trouble else "ok",
        # "model": whether an AI model can answer; not a failure (the shipped config has none), so
        # it never changes the status: it tells the operator how to connect one.
        "checks": {"storage": trouble or "ok", "model": wm.setup_notice or "ok"},
        "version": wellmate.__version__,
        "uptime_s": round(wm.uptime(), 3),
        "storage": wm.storage.name,
        "scheduler_running": bool(scheduler and scheduler.running),
        "next_reminder_at": reminders.next_fire_at() if reminders else None,  # when the scheduler has work next
        "providers": {name: conf["plugin"] for name, conf in wm.config["providers"].items()},
    }


@hookimpl
def routes(app, wm):
    @app.get("/api/v1/test/health", api=Api(
        "Liveness, storage and model checks for a monitor (503 when storage cannot be written)", auth="public",
        responses={200: obj({"status": string(enum=["ok", "unavailable"]), "checks": obj({"storage": string(), "model": string()}),
                             "version": string(), "uptime_s": number(), "storage": string(), "scheduler_running": boolean(),
                             "next_reminder_at": string(nullable=True), "providers": obj()},
                            required=["status", "checks", "version", "uptime_s", "storage", "scheduler_running", "providers"],
                            title="Health")}))
    def health():
        report = health_report(wm)
        if report["status"] != "ok":
            bottle.response.status = 503
            bottle.response.set_header("Retry-After", str(wellmate.STORAGE_RETRY_AFTER))
        return report

    @app.get("/api/v1/test/db", api=Api(
        "Ping the storage", auth="public",
        responses={200: obj({"ok": boolean(), "backend": string(), "latency_ms": number()}, required=["ok", "backend", "latency_ms"])},
        errors={503: "the storage did not answer"}))
    def db():
        started = time.perf_counter()
        try:
            wm.storage.ping()
        except Exception as e:
            raise ApiError(503, "storage_unavailable", f"The {wm.storage.name} storage did not answer: {e}")
        return {"ok": True, "backend": wm.storage.name, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
