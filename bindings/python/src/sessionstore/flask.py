"""Flask integration: ``sessionstore.flask.Session(app)`` in place of Flask-Session's.

Switching from Flask-Session 0.8 is a two-line change (the import, and nothing else when the
store is named by Flask-Session's own settings)::

    from sessionstore.flask import Session   # was: from flask_session import Session
    Session(app)

The store comes from Flask-Session's settings (SESSION_TYPE with SESSION_REDIS as a
redis.Redis client or a URL, SQLALCHEMY_DATABASE_URI, SESSION_MEMCACHED, SESSION_MONGODB,
SESSION_FILE_DIR; see SessionManager.from_flask_config), or from ``SESSIONSTORE_URL``, any
store URL of the library (``redis://...``, ``postgres://...``, ``sqlite:///...``,
``memory://``), which then takes precedence. Either way SECRET_KEY, SESSION_USE_SIGNER,
SESSION_PERMANENT, SESSION_KEY_PREFIX, PERMANENT_SESSION_LIFETIME,
SESSION_REFRESH_EACH_REQUEST, SESSION_SERIALIZATION_FORMAT and Flask's SESSION_COOKIE_*
settings mean what they mean in Flask-Session.

No lost updates. The request's session records what the view changed, per key, and the save
replays it on the fresher value when a concurrent request of the same user saved first:

- ``session[key] = value`` of a key this request did not read, or read as absent without a
  default (``if key not in session``, ``session.setdefault``, ``session.get(key)``):
  replayed as that set;
- ``del session[key]``, ``session.pop(key)``, ``session.clear()``: replayed as such;
- ``session.incr(key, n)`` and ``session.modify(key, fn)``: replayed as the operation;
- a key read as an int (or absent, through ``session.get(key, int_default)``), then set to
  an int: ``session["n"] = session.get("n", 0) + 1``, ``session["n"] += 2``: replayed as
  adding the difference (new - read) to the fresher value;
- a key read as a list (or absent, through ``session.get(key, list_default)``), then set to
  a list that starts with it: ``flashes = session.get("_flashes", []);
  flashes.append(m); session["_flashes"] = flashes`` (Flask's ``flash()``): replayed as
  appending the new items to the fresher list;
- any other read-then-set (strings, dicts, a list that lost items): replayed as the set,
  so a concurrent change of that key is overwritten. ``n *= 2`` on an int falls under the
  difference rule. Use ``session.modify(key, fn)`` where the operation must be replayed.

Values read and changed in place (``session["cart"].append(x)``) are written too, by the same
rules, without ``session.modified = True``.
"""

from flask.sessions import SessionInterface as FlaskSessionInterface
from flask.sessions import SessionMixin

from ._capi import encode_text
from ._session import SessionManager
from ._values import pack, unpack

_INT64 = range(-(2**63), 2**63)

# Flask settings -> SessionManager option (for SESSIONSTORE_URL); converted as Flask means
# them.
_URL_MODE_OPTIONS = {
    "SESSION_PERMANENT": "permanent",
    "SESSION_KEY_PREFIX": "key_prefix",
    "PERMANENT_SESSION_LIFETIME": "idle_lifetime",
    "SESSION_REFRESH_EACH_REQUEST": "refresh_each_request",
    "SESSION_SERIALIZATION_FORMAT": "format",
    "SESSION_COOKIE_NAME": "cookie_name",
    "SESSION_COOKIE_DOMAIN": "cookie_domain",
    "SESSION_COOKIE_PATH": "cookie_path",
    "SESSION_COOKIE_HTTPONLY": "cookie_http_only",
    "SESSION_COOKIE_SECURE": "cookie_secure",
    "SESSION_COOKIE_PARTITIONED": "cookie_partitioned",
}


def manager_for(config):
    """The SessionManager a Flask app's config names (SESSIONSTORE_URL, or Flask-Session's
    settings)."""
    url = config.get("SESSIONSTORE_URL")
    if not url:
        return SessionManager.from_flask_config(config)
    options = {
        option: config[name]
        for name, option in _URL_MODE_OPTIONS.items()
        if config.get(name) is not None
    }
    # Flask's None means "no SameSite attribute".
    options["cookie_same_site"] = config.get("SESSION_COOKIE_SAMESITE")
    # As Flask-Session: the id signed the itsdangerous way with SESSION_USE_SIGNER, else bare.
    options["cookie_mode"] = "flask" if config.get("SESSION_USE_SIGNER") else "plain"
    secret = config.get("SECRET_KEY")
    if isinstance(secret, bytes):
        secret = secret.decode()
    return SessionManager(url, secret=secret or None, **options)


class Session:
    """The Flask extension: ``Session(app)``, or ``Session()`` then ``init_app(app)``.

    ``manager``, a SessionManager, replaces the one the app's config names."""

    def __init__(self, app=None, manager=None):
        self.manager = manager
        self.interface = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        """Opens the manager (from ``app.config`` unless given) and installs the interface."""
        self.interface = SessionInterface(self.manager or manager_for(app.config))
        app.session_interface = self.interface


class SessionInterface(FlaskSessionInterface):
    """Loads each request's session from the store and saves it with the response."""

    def __init__(self, manager):
        self.manager = manager

    def open_session(self, app, request):
        return RequestSession(self.manager.load(request.headers.get("Cookie")))

    def save_session(self, app, session, response):
        if not isinstance(session, RequestSession):
            return
        saved = session.save_to(self.manager)
        if saved.set_cookie:
            response.headers.add("Set-Cookie", saved.set_cookie)
        if saved.vary_cookie:
            response.vary.add("Cookie")

    def regenerate(self, session):
        """Flask-Session 0.8's ``app.session_interface.regenerate(session)``."""
        session.regenerate()


_UNSET = object()


class RequestSession(SessionMixin):
    """``flask.session`` for one request: a mutable mapping recording per-key changes (see
    the module's documentation for how the save replays them)."""

    def __init__(self, native):
        self._native = native
        # Values as the view sees them: read from the store or set by the view.
        self._values = {}
        # Keys known to be absent: read as missing or deleted by this request.
        self._absent = set()
        # What each value was derived from, for keys read before this request set them:
        # None when read as absent without a default, else (MessagePack, whether it was the
        # default of session.get rather than a stored value). The save compares with it.
        self._baselines = {}
        # Keys set by the view, written to the library's session when saved (in order).
        self._pending = {}
        self._cleared = False
        self.modified = False

    def _lookup(self, key):
        """The value of ``key``, or _UNSET; fetched from the library on first use."""
        if key in self._values:
            return self._values[key]
        if key in self._absent or self._cleared:
            return _UNSET
        packed = self._native.get_packed(key)
        if packed is None:
            self._baselines[key] = None
            self._absent.add(key)
            return _UNSET
        self._baselines[key] = (packed, False)
        value = self._values[key] = unpack(key, packed)
        return value

    def __getitem__(self, key):
        value = self._lookup(key)
        if value is _UNSET:
            raise KeyError(key)
        return value

    def get(self, key, default=None):
        """``session[key]``, or ``default``, which a later set of the key derives from."""
        value = self._lookup(key)
        if value is not _UNSET:
            return value
        if isinstance(default, (int, list)) and self._baselines.get(key, _UNSET) is None:
            self._baselines[key] = (pack(key, default), True)
        return default

    def __contains__(self, key):
        return self._lookup(key) is not _UNSET

    def __setitem__(self, key, value):
        # A key or value sessions cannot hold is a TypeError now rather than at the save.
        encode_text(key, "session key")
        pack(key, value)
        self._values[key] = value
        self._absent.discard(key)
        self._pending[key] = None
        self.modified = True

    def update(self, other=(), /, **more):
        """Sets several keys, or none when a value is of a type sessions cannot hold."""
        items = dict(other, **more)
        for key, value in items.items():
            pack(key, value)
        for key, value in items.items():
            self[key] = value

    def __delitem__(self, key):
        if key not in self:
            raise KeyError(key)
        self._native.remove(key)
        self._forget(key)
        self._absent.add(key)
        self.modified = True

    def _forget(self, key):
        self._values.pop(key, None)
        self._pending.pop(key, None)
        self._baselines.pop(key, None)

    def _keys(self):
        stored = [] if self._cleared else self._native.keys()
        return list(dict.fromkeys([*stored, *self._pending]))

    def __iter__(self):
        return iter(self._keys())

    def __len__(self):
        return len(self._keys())

    def clear(self):
        self._native.clear()
        self._reset()
        self.modified = True

    def _reset(self):
        self._values.clear()
        self._absent.clear()
        self._baselines.clear()
        self._pending.clear()
        self._cleared = True

    def incr(self, key, delta=1):
        """Adds ``delta`` to the integer under ``key``; replayed as an increment."""
        self._write_pending(key)
        return self._record(key, self._native.incr(key, delta))

    def modify(self, key, function, default=None):
        """``session[key] = function(session.get(key, default))``, replayed by calling
        ``function`` again on the fresher value (it must be pure)."""
        self._write_pending(key)
        return self._record(key, self._native.modify(key, function, default))

    def _record(self, key, value):
        self._values[key] = value
        self._baselines[key] = (pack(key, value), False)
        self._absent.discard(key)
        self.modified = True
        return value

    def _write_pending(self, key):
        if key in self._pending:
            self._write(key)

    def _write(self, key):
        """Hands this request's value of ``key`` to the library's session, as a set or, when
        it was derived from the value read, as the operation that derives it."""
        self._pending.pop(key, None)
        value = self._values[key]
        packed = pack(key, value)
        baseline = self._baselines.get(key)
        self._baselines[key] = (packed, False)
        if baseline is None:
            self._native.set_packed(key, packed)
            return
        read, from_default = baseline
        if read == packed:
            return
        old = unpack(key, read)
        # A missing key counts as the default read (else as nothing: 0, or the empty list).
        default = old if from_default else None
        if type(value) is int and type(old) is int:
            delta = value - old
            if value in _INT64 and delta in _INT64:
                if from_default:
                    self._native.modify(key, _adding(delta, value), default)
                else:
                    self._native.incr(key, delta)
                return
        if isinstance(value, list) and isinstance(old, list):
            if pack(key, value[: len(old)]) == read:
                self._native.modify(key, _appending(value[len(old) :], value), default or [])
                return
        self._native.set_packed(key, packed)

    def _differs_from_read(self, key, value):
        baseline = self._baselines.get(key)
        return baseline is not None and baseline[0] != pack(key, value)

    def save_to(self, manager):
        """Writes the view's changes to the library's session and saves it (consumed)."""
        changed_in_place = [
            key
            for key, value in self._values.items()
            if key not in self._pending and self._differs_from_read(key, value)
        ]
        for key in [*self._pending, *changed_in_place]:
            self._write(key)
        return manager.save(self._native)

    @property
    def permanent(self):
        return self._native.permanent

    @permanent.setter
    def permanent(self, value):
        self._native.permanent = value

    @property
    def new(self):
        return self._native.new

    def regenerate(self):
        """A new session id on save, the data kept: call it on login."""
        self._native.regenerate()

    def destroy(self):
        """Ends the session: its record is deleted and the cookie expired."""
        self._native.destroy()
        self._reset()
        self.modified = True

    def set_owner(self, owner):
        """Binds the session to ``owner`` (the user id) from this request's save on, so that
        ``app.session_interface.manager.sessions_of(owner)`` lists it and
        ``end_sessions_of(owner)`` ends it; kept across regenerate()."""
        self._native.set_owner(owner)
        self.modified = True

    @property
    def owner(self):
        """The owner the session is bound to, or None."""
        return self._native.owner

    @property
    def id_hint(self):
        """The hint ``sessions_of`` lists for this session (safe to show)."""
        return self._native.id_hint

    @property
    def id(self):
        """The session id (a credential: never log it)."""
        return self._native.id

    def close(self):
        """Releases the request's session unsaved (also done when it is garbage)."""
        self._native.close()


def _adding(delta, replacement):
    """The replay of an int derived from the one read: the fresher int plus the difference
    (``replacement``, this request's value, when the key now holds something else)."""
    return lambda current: current + delta if type(current) is int else replacement


def _appending(items, replacement):
    """The replay of a list grown from the one read: the fresher list plus the new items
    (``replacement``, this request's list, when the key now holds something else)."""
    return lambda current: current + items if isinstance(current, list) else replacement
