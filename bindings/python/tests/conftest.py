"""Fixtures: managers on real stores (SQLite in a temporary directory, Redis on
127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432), each test under its own key prefix."""

import threading
import uuid

import pytest
import redis

from sessionstore import SessionManager

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test?table=sessionstore_pytest"


def store_url(kind, tmp_path):
    """The URL of one of the test stores."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/sessions.db"
    if kind == "redis":
        return REDIS_URL
    if kind == "postgres":
        return POSTGRES_URL
    raise ValueError(kind)


@pytest.fixture
def prefix():
    """A key prefix of this test's own, so tests sharing a server never meet; the test's
    Redis keys are deleted after it."""
    prefix = f"pytest:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    # SCAN visits the whole keyspace (the Rust tests leave many keys): large batches.
    keys = list(client.scan_iter(f"{prefix}*", count=10_000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def store(request, tmp_path):
    """Each test store's URL in turn."""
    return store_url(request.param, tmp_path)


@pytest.fixture
def manager(store, prefix):
    """A manager on each test store."""
    with SessionManager(store, secret="pytest secret", key_prefix=prefix) as manager:
        yield manager


@pytest.fixture
def redis_manager(prefix):
    """A manager on Redis."""
    with SessionManager(REDIS_URL, secret="pytest secret", key_prefix=prefix) as manager:
        yield manager


def cookie_of(saved):
    """The Cookie header value a browser sends back after a response with ``saved``."""
    assert saved.set_cookie, saved
    return saved.set_cookie.split(";", 1)[0]


def stored_session(manager, **values):
    """Saves a new session holding ``values``; returns its cookie."""
    session = manager.load(None)
    session.update(values)
    return cookie_of(manager.save(session))


def run_in_threads(count, work):
    """Runs ``work()`` on ``count`` threads at once; returns the exceptions they raised."""
    failures = []

    def guarded():
        try:
            work()
        except Exception as error:  # reported by the caller
            failures.append(error)

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures
