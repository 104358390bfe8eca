"""The scheduler: one background thread that runs the reminders' tick every
``reminders.tick_seconds``, using the `schedule` library.

Started by the startup hook and stopped by shutdown. Never two at once:

- in one process, `Scheduler.start` on a running scheduler does nothing, and startup reuses
  the Wellmate's one scheduler (the service ``scheduler``);
- across processes, the scheduler holds an exclusive lock (``fcntl.flock``) on
  ``scheduler.lock`` in the data folder. A second server started on the same data (or a second
  Wellmate in the same process) finds it taken, logs why, and fires nothing. The kernel drops the
  lock when its holder dies, however it dies.

The first tick runs at once, so reminders that came due while the server was down fire at
startup, not a tick later.
"""

from __future__ import annotations

import logging
import threading

from wellmate import FileLock, hookimpl

log = logging.getLogger("wellmate.scheduler")

LOCK_FILE = "scheduler.lock"


class Scheduler:
    def __init__(self, tick, seconds: float, lock_path, on_stop=None):
        self.tick, self.seconds, self.lock_path = tick, seconds, lock_path
        self.on_stop = on_stop  # called first in stop(): lets work in progress give up waiting
        self.not_running_because: str | None = "not started"
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._file_lock = FileLock(lock_path)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def start(self) -> bool:
        """Start the background tick; False if another scheduler owns this data folder."""
        with self._guard:
            if self.running:
                return True
            if not self._take_lock():
                return False
            import schedule

            jobs = schedule.Scheduler()  # our own, not the module-wide default one
            jobs.every(self.seconds).seconds.do(self._tick)
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, args=(jobs,), name="wellmate-scheduler", daemon=True)
            self._thread.start()
            self.not_running_because = None
            log.info("scheduler running: a tick every %ss", self.seconds)
            return True

    def stop(self, timeout: float = 30.0):
        with self._guard:
            if self.on_stop:
                self.on_stop()
            self._stop.set()
            thread, self._thread = self._thread, None
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
                if thread.is_alive():
                    log.warning("the scheduler's tick did not finish within %ss; leaving it", timeout)
            self._file_lock.release()
            self.not_running_because = "stopped"

    def _run(self, jobs):
        self._tick()
        while not self._stop.is_set():
            jobs.run_pending()
            idle = jobs.idle_seconds
            self._stop.wait(min(max(idle if idle is not None else self.seconds, 0.0), self.seconds))

    def _tick(self):
        try:
            self.tick()
        except Exception:  # logged; the next tick tries again
            log.exception("scheduler tick failed")

    def _take_lock(self) -> bool:
        if self._file_lock.acquire():
            return True
        self.not_running_because = (f"another Wellmate (pid {self._file_lock.holder()}) holds {self.lock_path}: "
                                    "it fires the reminders of this data folder")
        log.warning("scheduler not started: %s", self.not_running_because)
        return False


def scheduler_for(wm) -> Scheduler | None:
    """The service ``scheduler``: None when reminders are off or their plugin is disabled."""
    reminders = wm.service("reminders")
    if reminders is None or not wm.config["reminders"]["enabled"]:
        return None
    return Scheduler(reminders.tick, wm.config["reminders"]["tick_seconds"], wm.data_dir / LOCK_FILE,
                     on_stop=reminders.stop_waiting)


@hookimpl
def register_services(register):
    register("scheduler", scheduler_for)


@hookimpl
def startup(wm):
    scheduler = wm.service("scheduler")
    if scheduler is not None:
        wm.service("reminders").resume()
        scheduler.start()


@hookimpl
def shutdown(wm):
    scheduler = wm.service("scheduler")
    if scheduler is not None:
        scheduler.stop()
