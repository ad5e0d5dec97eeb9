"""sessionstore: server-side web sessions shared by Flask, Rust and C, with no lost updates.

A thin layer over libsessionstore's C ABI (bundled with the package): the sessions, stores,
cookies and the no-lost-update saves are the library's; this package maps them to Python.

    from sessionstore import SessionManager

    manager = SessionManager("redis://127.0.0.1:6379/0", secret="change me")
    session = manager.load(request_cookie_header)     # one store round trip
    session.incr("visits")
    saved = manager.save(session)                     # Saved(set_cookie, vary_cookie, ended)

For Flask, ``sessionstore.flask.Session(app)`` replaces Flask-Session's.
"""

from ._capi import VERSION as library_version
from ._errors import (
    ClosedError,
    CodecError,
    ConfigError,
    ContentionError,
    Error,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    StoreError,
    TooLargeError,
    TypeMismatchError,
)
from ._session import Saved, Session, SessionInfo, SessionManager

__version__ = "0.1.0"

__all__ = [
    "ClosedError",
    "CodecError",
    "ConfigError",
    "ContentionError",
    "Error",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "Saved",
    "Session",
    "SessionInfo",
    "SessionManager",
    "StoreError",
    "TooLargeError",
    "TypeMismatchError",
    "library_version",
]
