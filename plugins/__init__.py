"""Wellmate's built-in plugins, imported as the package ``wellmate_plugins`` (see
``wellmate.builtin_plugins_package``).

Each module named in ``wellmate.BUILTIN_PLUGINS`` is a plugin: functions marked ``@hookimpl``.
Modules whose names start with ``_`` are libraries the plugins share, never registered:
``_text`` (finding words), ``_http`` (a JSON and SSE client), ``_textmodel`` (a small text
classifier), ``_reply_emotion`` (the mascot's label for a reply). A plugin imports them, and
another plugin's module, by name: ``from wellmate_plugins._text import Terms``.

Nothing here runs on import: a plugin builds what it keeps for one Wellmate in a service
(``register_services``), never in a module global.
"""
