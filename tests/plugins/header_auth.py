"""A plugin of the tests' own that signs requests in by a header, as a reverse proxy that has
already checked who is calling would (``X-Test-User: <username>``): another way in, added without
touching the core (tests/test_hooks.py, test_hook_authenticate and test_hook_authentication_hint)."""

from wellmate import ApiError, hookimpl

HEADER = "HTTP_X_TEST_USER"  # X-Test-User, as WSGI names it


@hookimpl
def authenticate(request, wm):
    name = request.environ.get(HEADER)
    if name is None:
        return None  # not ours: the next plugin (the bearer tokens of plugins/auth.py) is asked
    user = wm.service("accounts").find_by_username(name)
    if user is None:  # ours, and wrong: refused, whatever else the request carries
        raise ApiError(401, "unknown_test_user", f"X-Test-User: no user {name!r}.")
    return user


@hookimpl
def authentication_hint():
    return {"hint": "'X-Test-User: <username>'"}  # a header of its own, no HTTP authentication scheme
