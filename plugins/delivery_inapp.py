"""The in-app reminder channel, ``inapp``: the reminder arrives as a message from the agent in the
user's most recent session with that agent (a new session if there is none), marked with
``reminder_id`` and counted in the session's ``unread`` until the user opens it."""

import threading

from wellmate import hookimpl, new_id

RECENT = 20  # messages looked through for one already sent under the same fire_id
# Deliveries run side by side (reminders.delivery_threads): two reminders of one user must not
# each find no session and start one.
_finding_session = threading.Lock()


@hookimpl
def register_channels(register):
    register("inapp", ready=ready)


def ready(user, wm):
    if wm.service("chat") is None:
        return "chat is switched off on this server (the chat plugin is disabled)"
    return None


@hookimpl
def deliver_reminder(reminder, message, user, wm):
    chat, agent = wm.service("chat"), message["agent"]
    with _finding_session:
        sessions, _ = chat.sessions.list(user["id"], agent=agent, limit=1)
        if not sessions:
            sessions = [chat.sessions.create(user["id"], agent, message["title"])]
    session = sessions[0]
    # Resumed after a crash between sending and recording: it is there already.
    recent, _ = chat.sessions.messages(session["id"], limit=RECENT)
    for old in recent:
        if old.get("fire_id") == message["fire_id"]:
            return {"status": "sent", "detail": f"already in session {session['id']}",
                    "session_id": session["id"], "message_id": old["id"]}
    stored = chat.push(session["id"], {"id": new_id(), "content": message["text"],
                                       "reminder_id": reminder["id"], "fire_id": message["fire_id"]})
    return {"status": "sent", "detail": f"a message from {agent} in session {session['id']}",
            "session_id": session["id"], "message_id": stored["id"]}
