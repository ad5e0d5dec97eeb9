"""Flask and Flask-Session settings as the (name, string) pairs the C ABI's
sessionstore_manager_open_flask() takes."""

import datetime
import urllib.parse
from collections.abc import Mapping

# Flask settings outside SESSION_* that sessions use, and sessionstore's own at-rest settings.
_FLASK_KEYS = (
    "SECRET_KEY",
    "PERMANENT_SESSION_LIFETIME",
    "SQLALCHEMY_DATABASE_URI",
    "SESSIONSTORE_DATA_KEYS",
    "SESSIONSTORE_COMPRESS_THRESHOLD",
)

# Flask-Session settings holding objects this library does not need: the SQL store is named
# by SQLALCHEMY_DATABASE_URI.
_UNUSED_OBJECTS = (
    "SESSION_SQLALCHEMY",
    "SESSION_SQLALCHEMY_BIND_KEY",
    "SESSION_SQLALCHEMY_SCHEMA",
    "SESSION_SQLALCHEMY_SEQUENCE",
)


def _redis_url(client):
    """The URL of a redis.Redis client (Flask-Session's SESSION_REDIS)."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if kwargs is None or "host" not in kwargs:
        raise TypeError(
            "SESSION_REDIS: give a redis:// URL (only TCP redis.Redis clients are converted)"
        )
    scheme = "rediss" if "SSL" in pool.connection_class.__name__ else "redis"
    user = urllib.parse.quote(kwargs.get("username") or "", safe="")
    password = urllib.parse.quote(kwargs.get("password") or "", safe="")
    credentials = f"{user}:{password}@" if password else ""
    return f"{scheme}://{credentials}{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def _text(name, value):
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, datetime.timedelta):
        return str(int(value.total_seconds()))
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode()
    if name == "SESSION_REDIS":
        return _redis_url(value)
    raise TypeError(
        f"{name}: expected a str, bool, int or timedelta, got {type(value).__name__} "
        "(give stores as URL strings)"
    )


def flask_settings(config):
    """The settings of ``config`` that sessions use, as (name, str) pairs; None values
    (Flask's unset defaults) are left out, but for SESSION_COOKIE_SAMESITE, where Flask's
    None means no SameSite attribute."""
    if not isinstance(config, Mapping):
        raise TypeError(f"expected a mapping of Flask settings, got {type(config).__name__}")
    settings = {
        name: value
        for name, value in config.items()
        if isinstance(name, str)
        and (name.startswith("SESSION_") or name in _FLASK_KEYS)
        and name not in _UNUSED_OBJECTS
    }
    if "SESSION_COOKIE_SAMESITE" in settings and settings["SESSION_COOKIE_SAMESITE"] is None:
        settings["SESSION_COOKIE_SAMESITE"] = ""
    return [(name, _text(name, value)) for name, value in settings.items() if value is not None]
