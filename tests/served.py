"""A Wellmate app served by a real waitress server on a free 127.0.0.1 port, as `wellmate.serve`
serves it: the tests (conftest.Served) and the bench scripts use this, with no pytest needed."""

import threading

import wellmate


class Served:
    def __init__(self, wm, threads: int | None = None, **options):
        """``options`` override the app's own waitress settings (`wm.waitress_options`)."""
        self.wm = wm
        self.server = wellmate.create_server(wm, "127.0.0.1", 0, threads=threads, **options)
        self.port = self.server.effective_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._serve, daemon=True, name="waitress")
        self.thread.start()

    def _serve(self):
        self.server.run()
        self.server.shut_down(5)  # in waitress's loop thread, as serve() does

    def stop(self):
        self.server.request_stop()
        self.thread.join(timeout=15)
