"""A plugin of the tests' own that watches what the observing hooks report (request_finished,
turn_finished, reminder_delivered, storage_operation) and keeps it in its service ``observer``;
``GET /api/v1/observer/crash`` fails as a plugin's bug would (a 500)."""

import threading

from wellmate import hookimpl


class Observer:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # FinishedRequest
        self.turns = []  # (turn, outcome)
        self.deliveries = []  # (reminder id, delivery)
        self.storage = []  # (operation, collection, seconds)


@hookimpl
def register_services(register):
    register("observer", lambda wm: Observer())


@hookimpl
def request_finished(request, wm):
    with wm.service("observer").lock:
        wm.service("observer").requests.append(request)


@hookimpl
def turn_finished(turn, outcome, wm):
    wm.service("observer").turns.append((turn, outcome))


@hookimpl
def reminder_delivered(reminder, delivery, wm):
    wm.service("observer").deliveries.append((reminder["id"], delivery))


@hookimpl
def storage_operation(operation, collection, seconds, wm):
    observer = wm.service("observer")
    if observer is not None:  # asked while the services are still being built
        observer.storage.append((operation, collection, seconds))


@hookimpl
def routes(app, wm):
    @app.get("/api/v1/observer/crash")
    def crash():
        raise RuntimeError("the observer's bug")
