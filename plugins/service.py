"""Service routes: liveness and storage checks for monitors and the mini-program's status page."""

import time

import wellmate
from wellmate import ApiError, hookimpl


@hookimpl
def routes(app, wm):
    @app.get("/api/v1/test/health")
    def health():
        scheduler = getattr(wm, "scheduler", None)
        return {
            "status": "ok",
            "version": wellmate.__version__,
            "uptime_s": round(wm.uptime(), 3),
            "storage": wm.storage.name,
            "scheduler_running": bool(scheduler and scheduler.running),
            "next_reminder_at": wm.storage.next_fire_at(),  # when the scheduler has work next
            "providers": {name: conf["plugin"] for name, conf in wm.config["providers"].items()},
        }

    @app.get("/api/v1/test/db")
    def db():
        started = time.perf_counter()
        try:
            wm.storage.ping()
        except Exception as e:
            raise ApiError(503, "storage_unavailable", f"The {wm.storage.name} storage did not answer: {e}")
        return {"ok": True, "backend": wm.storage.name, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
