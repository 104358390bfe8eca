"""A Wellmate app served by a real waitress server on a free 127.0.0.1 port, as `wellmate.serve`
serves it: the tests (conftest.Served) and the bench scripts use this, with no pytest needed."""

import threading


class Served:
    def __init__(self, wm, threads: int | None = None, **options):
        """``options`` override the app's own waitress settings (`wm.waitress_options`)."""
        from waitress.server import create_server

        self.wm = wm
        # waitress's body limit sits above ours, as in serve(), so oversized bodies get our JSON 413.
        self.server = create_server(wm.server_app, host="127.0.0.1", port=0,
                                    threads=threads or wm.config["server"]["threads"],
                                    max_request_body_size=max(wm.max_body * 4, 64 * 1024 * 1024),
                                    ident="wellmate", **{**wm.waitress_options, **options})
        self.port = self.server.effective_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="waitress")
        self.thread.start()

    def stop(self):
        # Worker threads first: a worker that has just sent a response still pulls the trigger,
        # and once the trigger is closed that is an EBADF in the worker (a flaky test error).
        # Then close every channel from inside waitress's own loop thread, which then ends.
        server = self.server
        server.task_dispatcher.shutdown(timeout=5)
        try:
            server.trigger.pull_trigger(lambda: server.asyncore.close_all(server._map))
        except OSError:
            # The trigger's pipe is already gone (the loop closed it): close what is left here.
            server.asyncore.close_all(server._map, ignore_all=True)
        self.thread.join(timeout=5)
