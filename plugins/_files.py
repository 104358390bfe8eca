"""Helpers for plugins that read files users edit (tips, word lists, tables): where to find one
(`data_file_candidates`, `first_file`), a tab-separated table (`read_table`) and a YAML file
re-read when it changes (`WatchedYaml`). A library, not a plugin. (`atomic_write` and
`fsync_dir` stay in wellmate: the storage backend, which tests load on its own, writes with them.)"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import yaml

from wellmate import HERE, load_yaml

log = logging.getLogger("wellmate")


def data_file_candidates(wm, name: str) -> list[Path]:
    """Where to look for a data file named in config: next to config.yaml, then the copy shipped
    with Wellmate, so a config kept elsewhere (/etc/wellmate) works without copying every file."""
    base = Path(wm.base) if wm is not None and getattr(wm, "base", None) else HERE
    return list(dict.fromkeys([(base / name).resolve(), (HERE / name).resolve()]))


def first_file(paths: list[Path]) -> tuple[Path, tuple | str]:
    """The first of ``paths`` that exists, with a stamp that changes when it is edited or
    replaced ("missing", with the first path, when none exists)."""
    for candidate in paths:
        try:
            st = candidate.stat()
        except OSError:
            continue
        return candidate, (candidate, st.st_mtime_ns, st.st_size)
    return paths[0], "missing"


def read_table(path: Path) -> list[dict]:
    """The rows of a tab-separated file as dicts keyed by its header line; blank lines and
    lines starting with # are skipped."""
    rows, header = [], None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
        else:
            rows.append(dict(zip(header, cells)))
    return rows


class WatchedYaml:
    """A YAML file parsed (by ``compile(data)``) on first use and again whenever it changes on
    disk, so users edit it with no restart. A broken edit keeps the last good version and logs
    why: a typo in a word list must never break chat. ``compile`` must depend on ``data`` alone,
    and what it makes must not be changed afterwards: see `_compiled`."""

    # The last text each compile function was given, and what it made of it: the Wellmates a
    # process builds (the test suite builds hundreds, benches several) share it rather than
    # compiling the same file again (prompts/safety.yaml's phrases take 0.6 s). One entry per
    # function, so an edited file replaces its old version.
    _compiled: dict = {}

    def __init__(self, paths: list[Path], compile, without: str = "going on without it", empty_ok: bool = True,
                 part=None):
        self.paths, self.compile, self.without = paths, compile, without  # the first that exists is used
        self.part = part  # text -> the text of what is read (None: all of it), where a reader needs a section only
        self.empty_ok = empty_ok  # False: an empty file is a mistake (logged, the last good version kept)
        self._stamp, self._value = None, None
        self.problem = None  # why the file on disk is not in use, for `wellmate.py check`
        self._lock = threading.Lock()

    def get(self):
        path, stamp = first_file(self.paths)
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                if path != self.paths[0]:
                    log.warning("%s not found; using %s", self.paths[0], path)
                try:
                    text = path.read_text(encoding="utf-8")
                    if self.part is not None:
                        text = self.part(text)
                    done = WatchedYaml._compiled.get(self.compile)
                    if done is None or done[0] != text:
                        data = load_yaml(text)
                        if not data and not self.empty_ok:
                            raise ValueError("the file is empty")
                        data = data or {}
                        if not isinstance(data, dict):
                            raise ValueError("the top level must be a mapping")
                        done = WatchedYaml._compiled[self.compile] = (text, self.compile(data))
                    self._value, self.problem = done[1], None
                except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError, yaml.YAMLError) as e:
                    why = " ".join(str(e).split())  # a YAML error's lines and caret, on one line
                    self.problem = f"{path}: cannot use this file ({type(e).__name__}: {why}); " + (
                        "keeping the last good version" if self._value else self.without)
                    log.error("%s", self.problem)
            return self._value if self._value is not None else self.compile({})

    def read_now(self, wm=None) -> str | None:
        """Reads the file now rather than at its first use and returns why it cannot be used (None when
        it can). A plugin calls this at set-up, so that `wellmate.py check` reports a broken file as an
        error (``wm.problems``) rather than "ok"; a retrain command calls it before training, so that
        it stops rather than learn from an empty list (see `stop_if_unusable`)."""
        self.get()
        problems = getattr(wm, "problems", None)
        if self.problem and isinstance(problems, list) and self.problem not in problems:
            problems.append(self.problem)
        return self.problem


def stop_if_unusable(watched: WatchedYaml, learns: str) -> bool:
    """For a retrain command (train-crisis, train-emotion, train-topics): whether the prompt file it learns
    from is broken, said on stderr. Trained on without it, the weights file would be written, its figures
    printed and the command succeed, with a model that learnt ``learns`` from nothing, and that reads
    them differently once the file is fixed."""
    import sys

    problem = watched.read_now()
    if problem:
        print(f"error: {problem}\nerror: not trained: the model learns {learns} from this file; fix it and "
              "run the command again", file=sys.stderr)
    return bool(problem)
