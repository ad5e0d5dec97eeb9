"""SessionManager and Session: the Pythonic face of the C ABI's manager and session handles."""

import ctypes
import datetime
import itertools
import json
from collections import namedtuple
from collections.abc import Mapping, MutableMapping
from ctypes import byref, c_bool, c_char_p, c_int64, c_size_t, c_uint64, c_void_p

from . import _capi
from ._capi import check, encode_text, lib
from ._errors import ClosedError
from ._values import pack, unpack

Saved = namedtuple("Saved", "set_cookie vary_cookie ended")
Saved.__doc__ = """What a response must carry after SessionManager.save().

set_cookie: a Set-Cookie header value to send, or None when the cookie need not change.
vary_cookie: whether to send ``Vary: Cookie``.
ended: whether the session ended (destroyed, emptied, or logged out by a concurrent
request, in which case this save wrote nothing).
"""

SessionInfo = namedtuple("SessionInfo", "id_hint bound_at expires_at")
SessionInfo.__doc__ = """One session of an owner, as SessionManager.sessions_of() lists it.

id_hint: a short one-way digest telling the sessions apart (Session.id_hint is the current
one's); never the id. bound_at, expires_at: UTC datetimes (to the second).
"""

_COOKIE_MODES = {"plain": 0, "signed": 1, "flask": 2}
_SAME_SITE = {"lax": 0, "strict": 1, "none": 2, None: 3}
_FORMATS = {"msgpack": 0, "json": 1}
_CONCURRENCY = {"no_lost_updates": 0, "last_writer_wins": 1}


def _choice(choices, name):
    def convert(value):
        key = value.lower() if isinstance(value, str) else value
        if key not in choices:
            expected = ", ".join(repr(choice) for choice in choices)
            raise ValueError(f"{name}: {value!r} is not one of {expected}")
        return choices[key]

    return convert


def _seconds(value):
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"expected seconds (a non-negative number or a timedelta), got {value!r}")
    return int(value)


def _text(name):
    return lambda value: encode_text(value, name)


# keyword argument: (C setter, conversion of the Python value).
_OPTIONS = {
    "cookie_mode": ("cookie_mode", _choice(_COOKIE_MODES, "cookie_mode")),
    "cookie_name": ("cookie_name", _text("cookie_name")),
    "cookie_domain": ("cookie_domain", _text("cookie_domain")),
    "cookie_path": ("cookie_path", _text("cookie_path")),
    "cookie_http_only": ("cookie_http_only", bool),
    "cookie_secure": ("cookie_secure", bool),
    "cookie_same_site": ("cookie_same_site", _choice(_SAME_SITE, "cookie_same_site")),
    "cookie_partitioned": ("cookie_partitioned", bool),
    "key_prefix": ("prefix", _text("key_prefix")),
    "format": ("format", _choice(_FORMATS, "format")),
    "permanent": ("permanent", bool),
    "idle_lifetime": ("idle_lifetime", _seconds),
    "absolute_lifetime": ("absolute_lifetime", _seconds),
    "refresh_each_request": ("refresh_each_request", bool),
    "touch_interval": ("touch_interval", _seconds),
    "concurrency": ("concurrency", _choice(_CONCURRENCY, "concurrency")),
    "max_attempts": ("max_attempts", int),
    "cleanup_every": ("cleanup_every", int),
    "max_size": ("max_size", int),
    "decrypt_only": ("decrypt_only", bool),
    "compress_threshold": ("compress_threshold", int),
    "max_sessions_per_owner": ("max_sessions_per_owner", int),
}


class _Handle:
    """A C handle freed exactly once: by close(), by whoever takes it, or by the finalizer."""

    __slots__ = ("_slot", "_free", "_what")

    def __init__(self, pointer, free, what):
        # list.pop() is atomic: two closing threads cannot both get the pointer.
        self._slot = [pointer]
        self._free = free
        self._what = what

    @property
    def pointer(self):
        if not self._slot:
            raise ClosedError(f"this {self._what} was already saved or closed")
        return self._slot[0]

    @property
    def closed(self):
        return not self._slot

    def take(self):
        """The pointer, now the caller's to consume; the handle is closed."""
        try:
            return self._slot.pop()
        except IndexError:
            raise ClosedError(f"this {self._what} was already saved or closed") from None

    def close(self):
        try:
            pointer = self._slot.pop()
        except IndexError:
            return
        self._free(pointer)

    def __del__(self):
        # At interpreter exit the library may be unloaded already; then the OS reclaims.
        if self._slot and lib is not None:
            self.close()


class _Closable:
    """close() and ``with`` for the owner of a _Handle in ``self._handle``."""

    def close(self):
        """Releases the handle (idempotent)."""
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class SessionManager(_Closable):
    """Loads and saves sessions: open one per application and share it by every thread.

    ``url`` names the store (``redis://127.0.0.1:6379/0``, ``sqlite:///var/app/sessions.db``,
    ``postgres://user@host/db``, ``memory://``, ...: the store URLs of the Rust and C APIs).
    ``secret`` is a str, or a list of str for rotation (the first signs, all verify); with a
    secret, cookies are signed unless ``cookie_mode`` says otherwise. Other options, all
    optional: cookie_mode ("plain", "signed", "flask"), cookie_name, cookie_domain,
    cookie_path, cookie_http_only, cookie_secure, cookie_same_site ("Lax", "Strict", "None",
    or None to omit it), cookie_partitioned, key_prefix, format ("msgpack", "json"),
    permanent, idle_lifetime, absolute_lifetime, touch_interval (seconds or timedelta),
    refresh_each_request, concurrency ("no_lost_updates", "last_writer_wins"),
    max_attempts, cleanup_every, max_size, max_sessions_per_owner; at rest: data_keys (a
    base64 256-bit key, or a list of them for rotation: the first encrypts, all decrypt),
    decrypt_only (the keys decrypt, saves are plain: turning encryption off without losing
    sessions) and compress_threshold (bytes). Flask-Session cannot read encrypted or
    compressed records.

    Raises ConfigError for an invalid URL or setting and StoreError when the store cannot
    be opened. close() (or the end of a ``with`` block) releases it; sessions still out
    keep the store open until they are saved or closed.
    """

    def __init__(self, url, secret=None, data_keys=None, **options):
        url = encode_text(url, "url")
        secrets = [] if secret is None else [secret] if isinstance(secret, str) else list(secret)
        if data_keys is None:
            data_keys = []
        elif isinstance(data_keys, str):
            data_keys = [data_keys]
        setters = []
        for name, value in options.items():
            if name not in _OPTIONS:
                raise TypeError(f"SessionManager got an unknown option {name!r}")
            setter, convert = _OPTIONS[name]
            setters.append((getattr(lib, f"sessionstore_options_set_{setter}"), convert(value)))
        handle = c_void_p()
        check(lib.sessionstore_options_new(byref(handle)))
        try:
            for each in secrets:
                check(lib.sessionstore_options_add_secret(handle, encode_text(each, "secret")))
            for each in data_keys:
                check(lib.sessionstore_options_add_data_key(handle, encode_text(each, "data_keys")))
            for setter, value in setters:
                check(setter(handle, value))
            manager = c_void_p()
            check(lib.sessionstore_manager_open(url, handle, byref(manager)))
        finally:
            lib.sessionstore_options_free(handle)
        self._handle = _Handle(manager.value, lib.sessionstore_manager_free, "manager")

    @classmethod
    def from_flask_config(cls, config):
        """Opens a manager from Flask-Session settings (a Flask ``app.config`` or any mapping),
        as the C ABI's sessionstore_manager_open_flask() takes them: SESSION_TYPE,
        SECRET_KEY, SESSION_USE_SIGNER, SESSION_PERMANENT, SESSION_KEY_PREFIX,
        PERMANENT_SESSION_LIFETIME, SESSION_REDIS (a URL or a redis.Redis client),
        SQLALCHEMY_DATABASE_URI, SESSION_COOKIE_*, ... Settings outside SESSION_* that
        sessions do not use are ignored; an unknown SESSION_* name is a ConfigError.
        """
        from ._flask_config import flask_settings

        pairs = flask_settings(config)
        names = (c_char_p * len(pairs))(*(encode_text(name, "setting") for name, _ in pairs))
        values = (c_char_p * len(pairs))(
            *(encode_text(value, name) for name, value in pairs)
        )
        manager = c_void_p()
        check(lib.sessionstore_manager_open_flask(names, values, len(pairs), byref(manager)))
        self = cls.__new__(cls)
        self._handle = _Handle(manager.value, lib.sessionstore_manager_free, "manager")
        return self

    def load(self, cookie_header=None):
        """Loads the session named by a request's ``Cookie`` header value (None: the request
        had none). A missing, forged, unknown or expired cookie gives a fresh empty session;
        only a failing store raises (StoreError). One store round trip, without the GIL."""
        header = None if cookie_header is None else encode_text(cookie_header, "cookie_header")
        session = c_void_p()
        check(lib.sessionstore_manager_load(self._handle.pointer, header, byref(session)))
        return Session(session.value)

    def save(self, session):
        """Writes what the request changed and returns what the response must carry
        (Saved). The session is consumed whatever the outcome: it cannot be used again.

        Concurrent requests of one user never lose each other's changes: on a conflict the
        save replays this request's changes (sets, deletions, incr and modify operations) on
        the fresher value and retries."""
        self._handle.pointer  # a closed manager raises ClosedError before anything else
        pointer = session._handle.take()
        saved = _capi.Saved()
        _capi.callback_failure.error = None
        check(lib.sessionstore_session_save(pointer, byref(saved)))
        return Saved(_capi.take_string(saved.set_cookie), saved.vary_cookie, saved.ended)

    def purge_expired(self):
        """Deletes expired records (SQL and filesystem stores); returns how many."""
        count = c_uint64()
        check(lib.sessionstore_manager_purge_expired(self._handle.pointer, byref(count)))
        return count.value

    def sessions_of(self, owner):
        """The sessions bound to ``owner`` (Session.set_owner), oldest binding first, as
        SessionInfo(id_hint, bound_at, expires_at) with UTC datetimes; never ids or
        cookies. Entries of sessions that ended are pruned from the owner's index."""
        out = c_void_p()
        check(
            lib.sessionstore_manager_sessions_of(
                self._handle.pointer, encode_text(owner, "owner"), byref(out)
            )
        )
        return [
            SessionInfo(
                item["id_hint"],
                datetime.datetime.fromtimestamp(item["bound_at"], datetime.timezone.utc),
                datetime.datetime.fromtimestamp(item["expires_at"], datetime.timezone.utc),
            )
            for item in json.loads(_capi.take_string(out.value))
        ]

    def end_sessions_of(self, owner, except_id=None):
        """Ends every session of ``owner`` but the one with id ``except_id`` (None: all of
        them; "log out everywhere but here"); returns how many."""
        count = c_uint64()
        keep = None if except_id is None else encode_text(except_id, "except_id")
        check(
            lib.sessionstore_manager_end_sessions_of(
                self._handle.pointer, encode_text(owner, "owner"), keep, byref(count)
            )
        )
        return count.value

    def stats(self):
        """A snapshot of the manager's metrics as a dict: the loads_*, saves_*,
        conflict_retries, bytes_read and bytes_written counts, and ``store``, per operation
        (load, create, ...) its calls, errors, latency_nanos and latency_buckets. Raises
        ConfigError unless the store URL turned metrics on (``metrics=on``)."""
        out = _capi.Stats()
        check(lib.sessionstore_manager_stats(self._handle.pointer, byref(out)))
        counts = {
            name: getattr(out, name)
            for name, _ in _capi.Stats._fields_
            if not name.startswith("store_")
        }
        counts["store"] = {
            name: {
                "calls": out.store_calls[n],
                "errors": out.store_errors[n],
                "latency_nanos": out.store_latency_nanos[n],
                "latency_buckets": list(out.store_latency_buckets[n]),
            }
            for n, name in enumerate(_capi.STATS_OPERATION_NAMES)
        }
        return counts

    def metrics_text(self):
        """The metrics in the Prometheus text format, for a ``/metrics`` endpoint; raises as
        stats() does."""
        out = c_void_p()
        check(lib.sessionstore_manager_metrics_text(self._handle.pointer, byref(out)))
        return _capi.take_string(out.value)


# Modify operations handed to the library, by the id passed as the callback's user data;
# an entry lives until the library releases it (the session saved or closed).
_operations = {}
_operation_ids = itertools.count(1)


@_capi.MODIFY_FN
def _run_operation(user_data, current, current_len, out):
    try:
        key, function, default = _operations[user_data]
        value = unpack(key, ctypes.string_at(current, current_len)) if current else default
        packed = pack(key, function(value))
        return lib.sessionstore_modify_out_set(out, packed, len(packed))
    except BaseException as error:  # re-raised by the call that ran the callback
        _capi.callback_failure.error = error
        return 1


@_capi.RELEASE_FN
def _release_operation(user_data):
    _operations.pop(user_data, None)


class Session(_Closable, MutableMapping):
    """One request's session, from SessionManager.load(), handed to SessionManager.save().

    A mutable mapping of str keys (``get``, ``[]``, ``in``, ``del``, ``keys``, ``clear``,
    ``len``, iteration; reserved keys such as ``_permanent`` included). Each access calls
    the library: values are decoded on every read and written at once. Use it from one
    thread at a time. Unsaved, it is released, and nothing written, by close(), by the end
    of a ``with`` block, or when garbage; after save() or close() every use raises
    ClosedError.
    """

    def __init__(self, pointer):
        self._handle = _Handle(pointer, lib.sessionstore_session_free, "session")

    def _key(self, key):
        return encode_text(key, "session key")

    def __getitem__(self, key):
        packed = self.get_packed(key)
        if packed is None:
            raise KeyError(key)
        return unpack(key, packed)

    def get_packed(self, key):
        """The MessagePack bytes stored under ``key``, or None when it is absent."""
        data, length = c_void_p(), c_size_t()
        result = lib.sessionstore_session_get_msgpack(
            self._handle.pointer, self._key(key), byref(data), byref(length)
        )
        if result == _capi.NOT_FOUND:
            return None
        check(result)
        return _capi.take_bytes(data.value, length.value)

    def __setitem__(self, key, value):
        self.set_packed(key, pack(key, value))

    def set_packed(self, key, packed):
        """Stores one MessagePack-encoded value under ``key``."""
        check(
            lib.sessionstore_session_set_msgpack(
                self._handle.pointer, self._key(key), packed, len(packed)
            )
        )

    def update(self, other=(), /, **more):
        """Sets several keys: every value is encoded first, so a value of a type sessions
        cannot hold (TypeError naming its key) leaves the session unchanged."""
        items = list(other.items() if isinstance(other, Mapping) else other) + list(more.items())
        packed = [(key, pack(key, value)) for key, value in items]
        for key, data in packed:
            self.set_packed(key, data)

    def __delitem__(self, key):
        if key not in self:
            raise KeyError(key)
        self.remove(key)

    def remove(self, key):
        """Removes ``key``; the removal is replayed on a conflicting save even when the key
        was absent (a concurrent request may have added it). Returns whether it was there."""
        existed = c_bool()
        check(
            lib.sessionstore_session_remove(self._handle.pointer, self._key(key), byref(existed))
        )
        return existed.value

    def __contains__(self, key):
        found = c_bool()
        check(
            lib.sessionstore_session_contains(self._handle.pointer, self._key(key), byref(found))
        )
        return found.value

    def _keys(self):
        keys = c_void_p()
        check(lib.sessionstore_session_keys(self._handle.pointer, byref(keys)))
        try:
            count = lib.sessionstore_keys_count(keys)
            return [lib.sessionstore_keys_get(keys, i).decode() for i in range(count)]
        finally:
            lib.sessionstore_keys_free(keys)

    def __iter__(self):
        return iter(self._keys())

    def __len__(self):
        return len(self._keys())

    def clear(self):
        """Removes every key (the session then ends unless something is written after)."""
        check(lib.sessionstore_session_clear(self._handle.pointer))

    def incr(self, key, delta=1):
        """Adds ``delta`` to the integer under ``key`` (missing counts as 0) and returns the
        result. The operation is recorded, not its result: no concurrent increment is lost."""
        result = c_int64()
        check(
            lib.sessionstore_session_incr(
                self._handle.pointer, self._key(key), delta, byref(result)
            )
        )
        return result.value

    def modify(self, key, function, default=None):
        """Replaces the value under ``key`` with ``function(current)`` (``default`` when the
        key is absent) and returns it. The function is recorded: when a concurrent request
        changed the session, the save calls it again on the fresher value, so nothing is
        lost. It must be pure (it may run several times). An exception it raises here or
        during the save propagates from that call, and that save stores nothing."""
        operation_id = next(_operation_ids)
        _operations[operation_id] = (key, function, default)
        _capi.callback_failure.error = None
        # The library releases the entry (through _release_operation) on failure too.
        check(
            lib.sessionstore_session_modify(
                self._handle.pointer,
                self._key(key),
                _run_operation,
                operation_id,
                _release_operation,
            )
        )
        return self[key]

    def regenerate(self):
        """Gives the session a new id on save, keeping its data; call it on login."""
        check(lib.sessionstore_session_regenerate(self._handle.pointer))

    def destroy(self):
        """Ends the session: on save its record is deleted and the cookie expired."""
        check(lib.sessionstore_session_destroy(self._handle.pointer))

    def set_owner(self, owner):
        """Binds the session to ``owner`` (the application's user id, 1 to 256 bytes) from
        its save on; kept across regenerate(), ended by destroy(), clear() and expiry."""
        check(lib.sessionstore_session_set_owner(self._handle.pointer, encode_text(owner, "owner")))

    @property
    def owner(self):
        """The owner the session is bound to, or None."""
        out = c_void_p()
        check(lib.sessionstore_session_owner(self._handle.pointer, byref(out)))
        return _capi.take_string(out.value)

    @property
    def id_hint(self):
        """The hint SessionManager.sessions_of() lists for this session (safe to show)."""
        out = c_void_p()
        check(lib.sessionstore_session_id_hint(self._handle.pointer, byref(out)))
        return _capi.take_string(out.value)

    def _flag(self, function):
        value = c_bool()
        check(function(self._handle.pointer, byref(value)))
        return value.value

    @property
    def permanent(self):
        """Whether the cookie outlives the browser session (Expires/Max-Age)."""
        return self._flag(lib.sessionstore_session_is_permanent)

    @permanent.setter
    def permanent(self, value):
        check(lib.sessionstore_session_set_permanent(self._handle.pointer, bool(value)))

    @property
    def new(self):
        """Whether the session was not found in the store (it gets a new id once written)."""
        return self._flag(lib.sessionstore_session_is_new)

    @property
    def modified(self):
        """Whether this request changed anything (data, permanence, id)."""
        return self._flag(lib.sessionstore_session_is_modified)

    @property
    def empty(self):
        """Whether the session holds nothing but reserved keys (it is then not stored)."""
        return self._flag(lib.sessionstore_session_is_empty)

    @property
    def id(self):
        """The session id (a credential: never log it)."""
        out = c_void_p()
        check(lib.sessionstore_session_id(self._handle.pointer, byref(out)))
        return _capi.take_string(out.value)

    @property
    def closed(self):
        """Whether the session was saved or closed."""
        return self._handle.closed

    def __repr__(self):
        state = "closed" if self.closed else f"{len(self)} keys"
        return f"<sessionstore.Session {state}>"
