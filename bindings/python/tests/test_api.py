"""The plain API against real stores: values, errors, handles, threads, modify replays."""

import datetime
import pathlib
import re

import msgspec
import pytest
from conftest import REDIS_URL, cookie_of, run_in_threads, store_url, stored_session
from markupsafe import Markup

import sessionstore
from sessionstore import (
    ClosedError,
    ConfigError,
    ContentionError,
    InvalidArgumentError,
    SessionManager,
    StoreError,
    TooLargeError,
    TypeMismatchError,
)

REPOSITORY = pathlib.Path(__file__).resolve().parents[3]
WHEN = datetime.datetime(2026, 12, 2, 1, 30, 15, 250000, tzinfo=datetime.timezone.utc)

# value stored -> value read back
ROUND_TRIPS = {
    "text": ("grüße ✓", "grüße ✓"),
    "empty": ("", ""),
    "int": (42, 42),
    "negative": (-7, -7),
    "i64 max": (2**63 - 1, 2**63 - 1),
    "i64 min": (-(2**63), -(2**63)),
    "u64 max": (2**64 - 1, 2**64 - 1),
    "float": (1.5, 1.5),
    "true": (True, True),
    "false": (False, False),
    "none": (None, None),
    "bytes": (b"\x00\xffbin", b"\x00\xffbin"),
    "bytearray": (bytearray(b"ab"), b"ab"),
    "list": ([1, "a", None, [2.5]], [1, "a", None, [2.5]]),
    "tuple": ((1, ("x", 2)), [1, ["x", 2]]),
    "dict": ({"k": [1, 2], "n": {"x": 1.0}}, {"k": [1, 2], "n": {"x": 1.0}}),
    "markup": (Markup("<b>hi</b>"), "<b>hi</b>"),
    "datetime": (WHEN, WHEN),
}


def test_every_value_type_round_trips(manager):
    session = manager.load(None)
    for key, (value, _) in ROUND_TRIPS.items():
        session[key] = value
    cookie = cookie_of(manager.save(session))
    with manager.load(cookie) as loaded:
        assert not loaded.new
        for key, (_, expected) in ROUND_TRIPS.items():
            assert loaded[key] == expected, key
            assert type(loaded[key]) is type(expected), key
        assert set(loaded) == set(ROUND_TRIPS) | {"_permanent"}
        assert len(loaded) == len(ROUND_TRIPS) + 1


def test_values_are_the_messagepack_flask_session_writes(redis_manager):
    session = redis_manager.load(None)
    session["cart"] = {"items": ("tea", "cake"), "total": 2.5}
    written = msgspec.msgpack.encode({"items": ["tea", "cake"], "total": 2.5})
    assert session.get_packed("cart") == written
    assert session.get_packed("missing") is None


@pytest.mark.parametrize(
    "value",
    [{1, 2}, object(), datetime.datetime(2026, 1, 1), 2**64, {"nested": {frozenset()}}],
    ids=["set", "object", "naive datetime", "int beyond u64", "nested set"],
)
def test_a_value_sessions_cannot_hold_is_a_type_error_naming_the_key(redis_manager, value):
    session = redis_manager.load(None)
    session["kept"] = 1
    with pytest.raises(TypeError, match="'bad key'"):
        session["bad key"] = value
    with pytest.raises(TypeError, match="'bad key'"):
        session.update({"other": 2, "bad key": value})
    assert "bad key" not in session and "other" not in session
    cookie = cookie_of(redis_manager.save(session))
    with redis_manager.load(cookie) as loaded:
        assert dict(loaded) == {"_permanent": True, "kept": 1}


def test_mapping_operations(redis_manager):
    with redis_manager.load(None) as session:
        assert session.new and session.empty and not session.modified
        assert session.get("x") is None and session.get("x", 5) == 5
        with pytest.raises(KeyError):
            session["x"]
        with pytest.raises(KeyError):
            del session["x"]
        session["x"] = 1
        assert "x" in session and session.modified and not session.empty
        assert session.setdefault("y", [1]) == [1]
        assert session.pop("x") == 1 and "x" not in session
        assert sorted(session.keys()) == ["_permanent", "y"]
        session.clear()
        assert len(session) == 0 and session.empty
        assert len(session.id) == 43


def test_incr_and_permanent(redis_manager):
    session = redis_manager.load(None)
    assert session.incr("n") == 1
    assert session.incr("n", 41) == 42
    assert session.permanent
    session.permanent = False
    assert not session.permanent
    saved = redis_manager.save(session)
    assert "Expires" not in saved.set_cookie and saved.vary_cookie and not saved.ended
    with redis_manager.load(cookie_of(saved)) as loaded:
        assert loaded["n"] == 42 and not loaded.permanent


def test_regenerate_moves_the_data_to_a_new_id_and_destroy_ends(manager):
    cookie = stored_session(manager, user="ann")
    session = manager.load(cookie)
    old_id = session.id
    session.regenerate()
    new_cookie = cookie_of(manager.save(session))
    assert new_cookie != cookie
    with manager.load(cookie) as stale:
        assert stale.new and "user" not in stale
    session = manager.load(new_cookie)
    assert session["user"] == "ann" and session.id != old_id
    session.destroy()
    saved = manager.save(session)
    assert saved.ended and "Max-Age=0" in saved.set_cookie
    with manager.load(new_cookie) as gone:
        assert gone.new


def test_a_saved_or_closed_session_raises_closed_error(redis_manager):
    session = redis_manager.load(None)
    session["a"] = 1
    redis_manager.save(session)
    assert session.closed
    for use in (
        lambda: session["a"],
        lambda: session.__setitem__("a", 2),
        lambda: session.incr("a"),
        lambda: session.permanent,
        lambda: redis_manager.save(session),
    ):
        with pytest.raises(ClosedError, match="already saved or closed"):
            use()
    with redis_manager.load(None) as other:
        other["b"] = 1
    assert other.closed
    other.close()  # idempotent
    with pytest.raises(ClosedError):
        len(other)


def test_a_closed_manager_raises_closed_error_and_its_sessions_still_save(prefix):
    manager = SessionManager("memory://", key_prefix=prefix)
    session = manager.load(None)
    session["a"] = 1
    manager.close()
    with pytest.raises(ClosedError):
        manager.load(None)
    with pytest.raises(ClosedError):
        manager.save(session)
    assert not session.closed, "a refused save does not consume the session"
    session.close()


def test_a_session_raising_in_a_with_block_is_released_unsaved(redis_manager):
    cookie = stored_session(redis_manager, n=1)
    with pytest.raises(RuntimeError):
        with redis_manager.load(cookie) as session:
            session["n"] = 99
            raise RuntimeError("the view failed")
    assert session.closed
    with redis_manager.load(cookie) as loaded:
        assert loaded["n"] == 1


def test_each_error_carries_its_result_name_and_the_library_message(tmp_path, prefix):
    with pytest.raises(ConfigError) as config:
        SessionManager("nosuchstore://x")
    assert config.value.result == "SESSIONSTORE_CONFIG" and config.value.code == 5
    assert "nosuchstore" in config.value.message and "SESSIONSTORE_CONFIG" in str(config.value)
    with pytest.raises(TypeError, match="unknown option 'colour'"):
        SessionManager("memory://", colour="blue")
    with pytest.raises(ValueError, match="cookie_mode"):
        SessionManager("memory://", cookie_mode="loud")

    with pytest.raises(StoreError) as store:
        SessionManager("redis://127.0.0.1:1/0", key_prefix=prefix).load("session=" + "A" * 43)
    assert store.value.result == "SESSIONSTORE_STORE" and "redis" in store.value.message

    manager = SessionManager(store_url("sqlite", tmp_path), max_size=200, max_attempts=1)
    session = manager.load(None)
    session["big"] = "x" * 1000
    with pytest.raises(TooLargeError) as too_large:
        manager.save(session)
    assert too_large.value.result == "SESSIONSTORE_TOO_LARGE"

    session = manager.load(None)
    session["name"] = "ann"
    with pytest.raises(TypeMismatchError) as mismatch:
        session.incr("name")
    assert isinstance(mismatch.value, TypeError) and "name" in mismatch.value.message
    session["n"] = 2**63 - 1
    with pytest.raises(InvalidArgumentError, match="overflows"):
        session.incr("n")

    cookie = cookie_of(manager.save(session))
    first, second = manager.load(cookie), manager.load(cookie)
    first["a"] = 1
    second["b"] = 2
    manager.save(first)
    with pytest.raises(ContentionError) as contention:
        manager.save(second)
    assert contention.value.result == "SESSIONSTORE_CONTENTION"
    for error in (config, store, too_large, mismatch, contention):
        assert isinstance(error.value, sessionstore.Error)


def test_threads_sharing_one_manager_lose_no_increment(redis_manager):
    cookie = stored_session(redis_manager, hits=0)

    def requests():
        for _ in range(100):
            session = redis_manager.load(cookie)
            session.incr("hits")
            assert not redis_manager.save(session).ended

    assert run_in_threads(8, requests) == []
    with redis_manager.load(cookie) as session:
        assert session["hits"] == 800


def test_modify_is_replayed_on_the_fresher_value_after_a_conflict(manager):
    cookie = stored_session(manager, log=["start"])
    first, second = manager.load(cookie), manager.load(cookie)
    calls = []

    def add(item):
        def append(log):
            calls.append(item)
            return log + [item]

        return append

    assert first.modify("log", add("first")) == ["start", "first"]
    assert second.modify("log", add("second")) == ["start", "second"]
    assert second.modify("count", lambda n: n + 1, default=0) == 1
    manager.save(first)
    manager.save(second)
    assert calls == ["first", "second", "second"], "the second save replayed its operation"
    with manager.load(cookie) as session:
        assert session["log"] == ["start", "first", "second"]
        assert session["count"] == 1


def test_a_failing_modify_changes_nothing_and_a_failing_replay_stores_nothing(redis_manager):
    cookie = stored_session(redis_manager, n=1)
    session = redis_manager.load(cookie)
    with pytest.raises(ZeroDivisionError):
        session.modify("n", lambda n: n / 0)
    with pytest.raises(TypeError, match="'n'"):
        session.modify("n", lambda n: {n})
    assert session["n"] == 1 and not session.modified

    def at_most_ten(n):
        if n > 10:
            raise ValueError(f"{n} is too many")
        return n + 1

    session.modify("n", at_most_ten)
    session["other"] = "only if saved"
    concurrent = redis_manager.load(cookie)
    concurrent["n"] = 50
    redis_manager.save(concurrent)
    with pytest.raises(ValueError, match="50 is too many"):
        redis_manager.save(session)
    with redis_manager.load(cookie) as stored:
        assert stored["n"] == 50 and "other" not in stored


def test_library_version_matches_the_package():
    assert sessionstore.library_version == sessionstore.__version__


def test_the_manager_opens_from_flask_settings(prefix):
    manager = SessionManager.from_flask_config(
        {
            "SESSION_TYPE": "redis",
            "SESSION_REDIS": REDIS_URL,
            "SESSION_KEY_PREFIX": prefix,
            "SECRET_KEY": b"flask secret",
            "SESSION_USE_SIGNER": True,
            "PERMANENT_SESSION_LIFETIME": datetime.timedelta(hours=1),
            "SESSION_COOKIE_DOMAIN": None,
            "DEBUG": False,
        }
    )
    saved = manager.save(stored_via(manager))
    assert "Max-Age=3600" in saved.set_cookie
    value = cookie_of(saved).split("=", 1)[1]
    assert "." in value, "SESSION_USE_SIGNER signs the id the itsdangerous way"
    with pytest.raises(ConfigError, match="SESSION_TYPO"):
        SessionManager.from_flask_config({"SESSION_TYPE": "redis", "SESSION_TYPO": "x"})
    with pytest.raises(TypeError, match="SESSION_MEMCACHED"):
        SessionManager.from_flask_config({"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": []})


def stored_via(manager):
    session = manager.load(None)
    session["x"] = 1
    return session


def test_every_declared_function_is_in_the_header_with_as_many_arguments():
    from sessionstore import _capi

    header = (REPOSITORY / "include/sessionstore.h").read_text()
    for name, (_, argtypes) in _capi._SIGNATURES.items():
        declaration = re.search(rf"^[a-z_ ]+[ *]{name}\(([^;]*)\);", header, re.M)
        assert declaration, name
        parameters = declaration.group(1).strip()
        assert (0 if parameters == "void" else parameters.count(",") + 1) == len(argtypes), name


def test_flask_session_sqlalchemy_settings_name_the_sql_store(tmp_path):
    config = {
        "SESSION_TYPE": "sqlalchemy",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/flask.db",
        "SESSION_SQLALCHEMY": object(),  # Flask-Session's db object: not needed here
        "SESSION_PERMANENT": False,
        "SESSION_COOKIE_SAMESITE": None,
    }
    with SessionManager.from_flask_config(config) as manager:
        saved = manager.save(stored_via(manager))
        assert "SameSite" not in saved.set_cookie and "Expires" not in saved.set_cookie
        with manager.load(cookie_of(saved)) as session:
            assert session["x"] == 1
    assert (tmp_path / "flask.db").is_file()


def test_metrics_count_known_traffic():
    manager = SessionManager("memory://?metrics=on")
    session = manager.load()
    session["n"] = 1
    cookie = cookie_of(manager.save(session))
    manager.save(manager.load(cookie))
    stats = manager.stats()
    assert (stats["loads_no_cookie"], stats["loads_hit"]) == (1, 1)
    assert (stats["saves_created"], stats["saves_unchanged"]) == (1, 1)
    assert stats["store"]["load"]["calls"] == 1
    assert sum(stats["store"]["load"]["latency_buckets"]) == 1
    assert 'sessionstore_loads_total{backend="memory",outcome="hit"} 1\n' in manager.metrics_text()
    off = SessionManager("memory://")
    with pytest.raises(ConfigError, match="metrics=on"):
        off.stats()
    with pytest.raises(ConfigError):
        off.metrics_text()
