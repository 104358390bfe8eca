"""A plugin of the tests' own that answers every hook the way a user's plugin would, so that
tests/test_hooks.py exercises each hook through a plugin (a test copies this file into the
plugins folder its config names). What it saw is kept in its service ``probe`` (wm.service("probe")).
"""

from wellmate import ApiError, Index, Provider, ProviderError, Setting, Tagger, hookimpl, new_id, now_iso
from wellmate_plugins.storage_files import FileStorage


class Probe:
    """What the probe's hooks saw, per Wellmate: its service."""

    def __init__(self, wm, clock):
        self.wm, self.clock = wm, clock
        self.greeting = wm.config["probe"]["greeting"]
        self.turns = []  # (hook, agent, text) of each before_reply / after_reply call
        self.seen = []  # (who, turn) for each Turn a hook or the echo provider was given
        self.deliveries = []  # (channel, text) of each reminder delivered on the probe channel
        self.events = []  # "startup", "shutdown"


class Clock:
    """A second service, registered after the first and built first: the first looks it up."""

    def __init__(self):
        self.ticks = 0


@hookimpl
def config_schema():
    return {"probe": {
        "greeting": Setting("hello", "What GET /api/v1/probe says."),
        "suffix": Setting("", "Text after_reply appends to each reply (with a blank line)."),
    }}


@hookimpl
def register_services(register):
    register("probe", lambda wm: Probe(wm, wm.service("probe_clock")))
    register("probe_clock", lambda wm: Clock())


class ProbeStorage(FileStorage):
    name = "probe"


@hookimpl
def register_storage(register):
    register("probe", lambda settings, wm: ProbeStorage(settings, wm))


class EchoProvider(Provider):
    """Says back the user's last message after a prefix; 'fail' makes it fail (the chain goes on).
    Given a chat turn, it says whose turn it was and the probe's flag, as a platform provider
    keys its conversations by user and session."""

    settings = {"prefix": Setting("echo: ", "What comes before the user's words.")}

    def reply(self, messages, turn=None):
        text = messages[-1]["content"]
        if text == "fail":
            raise ProviderError("asked to fail")
        if text == "crash":  # a provider's bug, such as an upstream answer it did not expect
            return {"not": "text"}["text"]
        if turn is not None:
            self.wm.service("probe").seen.append(("echo", turn))
            text += f" ({turn.user['username']}, {turn.flags.get('probe', '-')})"
        return self.config["prefix"] + text


class ParrotProvider(Provider):
    """A provider written before turns: reply and stream take only the messages."""

    def reply(self, messages):
        return "parrot: " + messages[-1]["content"]

    def stream(self, messages):
        yield "parrot: "
        yield messages[-1]["content"]


class MynahProvider(Provider):
    """Another written before turns, with reply only: the default stream calls it without the turn."""

    def reply(self, messages):
        return "mynah: " + messages[-1]["content"]


class MacawProvider(Provider):
    """Written before turns, with an option of its own after the messages: it must not get the turn."""

    def reply(self, messages, temperature=0.7):
        return f"macaw: {messages[-1]['content']} at {temperature}"


@hookimpl
def register_providers(register):
    register("echo", EchoProvider)
    register("parrot", ParrotProvider)
    register("mynah", MynahProvider)
    register("macaw", MacawProvider)


class ShoutTagger(Tagger):
    """Everything in capitals is angry; the rest is calm."""

    def tag(self, text, labels):
        letters = [c for c in text if c.isalpha()]
        return "angry" if letters and all(c.isupper() for c in letters) else "calm"


@hookimpl
def register_taggers(register):
    register("shout", ShoutTagger)


@hookimpl
def register_record_types(register):
    register("waist", {"title": "腰围", "unit": "cm", "min": 40, "max": 200, "units": {"in": 2.54}})


@hookimpl
def register_collections(register):
    # Notes a user leaves the probe, listed newest first: the one lookup the probe makes.
    register("probe_notes", indexes=[Index(("user_id",), "created_at")])


@hookimpl
def export_user_data(user, wm):
    def notes():  # oldest first, two at a time: a generator the export reads as it writes
        before = None
        while True:
            page, before = wm.storage.find("probe_notes", {"user_id": user["id"]}, order="created_at", limit=2,
                                           before=before)
            yield from ({"text": note["text"], "created_at": note["created_at"]} for note in page)
            if before is None:
                return
    return {"probe_notes": notes()}


@hookimpl
def routes(app, wm):
    probe = wm.service("probe")

    @app.post("/api/v1/probe/notes")
    def add_note():
        user = wm.require_user()
        text = str(wm.json_body().get("text") or "")
        return wm.storage.insert("probe_notes", {"id": new_id(), "user_id": user["id"], "text": text,
                                                "created_at": now_iso()})

    @app.get("/api/v1/probe/notes")
    def list_notes():
        user = wm.require_user()
        notes, _ = wm.storage.find("probe_notes", {"user_id": user["id"]}, order="-created_at", limit=10)
        return {"items": [note["text"] for note in notes]}

    @app.get("/api/v1/probe")
    def read_probe():
        wm.require_user()
        return {"greeting": probe.greeting, "clock": type(probe.clock).__name__, "events": probe.events}

    @app.get("/api/v1/probe/refuse")
    def refuse():
        raise ApiError(418, "probe_refuses", "The probe refuses.")


@hookimpl
def startup(wm):
    wm.service("probe").events.append("startup")


@hookimpl
def shutdown(wm):
    probe = wm.service("probe")
    probe.events.append("shutdown")
    (wm.data_dir / "probe-shutdown").write_text(",".join(probe.events))


@hookimpl
def prompt_context(user, agent):
    return {"probe_name": f"{user.get('username')}@{agent}"}


@hookimpl
def before_reply(agent, text, turn, wm):
    probe = wm.service("probe")
    probe.turns.append(("before_reply", agent, text))
    probe.seen.append(("before_reply", turn))
    turn.flags["probe"] = "curious" if text.startswith("probe ") else "calm"  # a fact for providers
    if text.startswith("probe cite"):  # what the reply draws on, for the client to link
        return {"sources": [{"id": "probe-page", "title": "The probe's page"}, {"id": "probe-page", "title": "again"}]}
    if text == "probe, answer yourself":
        return {"reply": "the probe answered", "provider": "probe"}
    if text.startswith("probe "):
        return {"prefix": "[probe] "}
    return None


@hookimpl
def after_reply(text, reply, turn, wm):
    probe = wm.service("probe")
    probe.turns.append(("after_reply", text, reply))
    probe.seen.append(("after_reply", turn))
    suffix = wm.config["probe"]["suffix"]
    return f"\n\n{suffix}" if suffix else None


@hookimpl
def cli(subparsers, wm_factory):
    parser = subparsers.add_parser("probe", help="print the probe's greeting")
    parser.add_argument("--shout", action="store_true")

    def run(args):
        wm = wm_factory()
        try:
            greeting = wm.service("probe").greeting
            print(greeting.upper() if args.shout else greeting)
        finally:
            wm.close()
        return 0

    parser.set_defaults(func=run)


@hookimpl
def register_channels(register):
    register("probe", ready=lambda user, wm: None if user.get("full_name") != "Unreachable" else "no probe for you")


@hookimpl
def deliver_reminder(reminder, message, user, channel, wm):
    wm.service("probe").deliveries.append((channel, message["text"]))
    return {"status": "sent", "detail": f"probe got {reminder['title']} for {user['id']}"}
