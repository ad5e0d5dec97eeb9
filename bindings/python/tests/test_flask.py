"""The Flask integration: the session interface through Flask's test client, the replay of
per-key changes, the example app on werkzeug's threaded server, and byte compatibility with
an unchanged Flask-Session 0.8 app (tests/flask_app.py) on one Redis."""

import gc
import importlib.util
import json
import pathlib
import threading
import urllib.request
import weakref

import pytest
import redis
from conftest import REDIS_URL, run_in_threads, stored_session
from flask import Flask, flash, get_flashed_messages, jsonify, session
from markupsafe import Markup
from werkzeug.serving import make_server

from sessionstore import SessionManager
from sessionstore.flask import RequestSession, Session

REPOSITORY = pathlib.Path(__file__).resolve().parents[3]


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_app(config):
    app = Flask(__name__)
    app.config.update(config)
    Session(app)
    app.opened = []

    @app.get("/visit")
    def visit():
        session["visits"] = session.get("visits", 0) + 1
        return jsonify(visits=session["visits"])

    @app.post("/flash")
    def flash_message():
        flash(Markup("<b>saved</b>"), "info")
        return jsonify(flashed=True)

    @app.get("/messages")
    def messages():
        return jsonify(messages=get_flashed_messages(with_categories=True))

    @app.post("/login")
    def login():
        app.session_interface.regenerate(session)
        session["user"] = "ann"
        return jsonify(user=session["user"])

    @app.post("/logout")
    def logout():
        session.clear()
        return jsonify(user=None)

    @app.get("/fail")
    def fail():
        session["half"] = "done"
        app.opened.append(weakref.ref(session._get_current_object()))
        raise RuntimeError("the view failed")

    return app


@pytest.fixture
def client(prefix):
    app = make_app({"SESSIONSTORE_URL": REDIS_URL, "SESSION_KEY_PREFIX": prefix})
    return app.test_client()


def test_the_visit_counter(client):
    for n in range(1, 4):
        assert client.get("/visit").json == {"visits": n}
    response = client.get("/visit")
    assert response.headers["Vary"] == "Cookie"


def test_flash_with_markup(client):
    assert client.post("/flash").json == {"flashed": True}
    assert client.get("/messages").json == {"messages": [["info", "<b>saved</b>"]]}
    assert client.get("/messages").json == {"messages": []}, "reading the flashes pops them"


def test_login_regenerates_the_id_and_logout_ends_the_session(client):
    client.get("/visit")
    before = client.get_cookie("session").value
    assert client.post("/login").json == {"user": "ann"}
    after = client.get_cookie("session").value
    assert after != before
    assert client.get("/visit").json == {"visits": 2}, "the data moved to the new id"
    response = client.post("/logout")
    assert "session=;" in response.headers["Set-Cookie"]
    assert client.get_cookie("session") is None
    assert client.get("/visit").json == {"visits": 1}


def test_a_view_that_raises_releases_its_session_unsaved(prefix):
    app = make_app({"SESSIONSTORE_URL": REDIS_URL, "SESSION_KEY_PREFIX": prefix})
    app.testing = True  # the exception reaches the caller: Flask saves nothing
    client = app.test_client()
    client.get("/visit")
    with pytest.raises(RuntimeError, match="the view failed"):
        client.get("/fail")
    gc.collect()
    assert app.opened[0]() is None, "the request's session was released"
    assert client.get("/visit").json == {"visits": 2}
    with SessionManager(REDIS_URL, key_prefix=prefix) as manager:
        session = manager.load(f"session={client.get_cookie('session').value}")
        assert "half" not in session and session["visits"] == 2
        session.close()


def test_flask_session_settings_with_a_redis_client(prefix):
    app = make_app(
        {
            "SESSION_TYPE": "redis",
            "SESSION_REDIS": redis.Redis.from_url(REDIS_URL),
            "SESSION_KEY_PREFIX": prefix,
            "SECRET_KEY": "flask secret",
            "SESSION_USE_SIGNER": True,
        }
    )
    client = app.test_client()
    assert client.get("/visit").json == {"visits": 1}
    assert client.get("/visit").json == {"visits": 2}
    assert "." in client.get_cookie("session").value


# Two requests of one user, loaded from one cookie and saved one after the other: what the
# second one's save keeps of each's changes.


def two_requests(manager, cookie):
    return RequestSession(manager.load(cookie)), RequestSession(manager.load(cookie))


def saved_data(manager, cookie, *requests):
    for request in requests:
        request.save_to(manager)
    with manager.load(cookie) as stored:
        return dict(stored)


def test_read_then_set_of_an_int_is_replayed_as_adding_the_difference(manager):
    cookie = stored_session(manager, visits=5)
    first, second = two_requests(manager, cookie)
    first["visits"] = first.get("visits", 0) + 1
    second["visits"] += 2
    second["fresh"] = second.get("fresh", 0) + 10
    assert saved_data(manager, cookie, first, second)["visits"] == 8
    with manager.load(cookie) as stored:
        assert stored["fresh"] == 10


def test_counters_from_a_default_add_up_and_ints_set_if_absent_do_not(redis_manager):
    cookie = stored_session(redis_manager, user="ann")
    first, second = two_requests(redis_manager, cookie)
    for request in (first, second):
        request["visits"] = request.get("visits", 0) + 1
        if "uid" not in request:
            request["uid"] = 42
        request.setdefault("team", 7)
        request["score"] = request.get("score") or 3
    data = saved_data(redis_manager, cookie, first, second)
    assert data["visits"] == 2
    assert data["uid"] == 42 and data["team"] == 7 and data["score"] == 3


def test_flashes_of_concurrent_requests_are_all_kept(redis_manager):
    cookie = stored_session(redis_manager, user="ann")
    first, second = two_requests(redis_manager, cookie)
    for request, message in ((first, "one"), (second, "two")):
        flashes = request.get("_flashes", [])
        flashes.append(("info", Markup(message)))
        request["_flashes"] = flashes
    data = saved_data(redis_manager, cookie, first, second)
    assert data["_flashes"] == [["info", "one"], ["info", "two"]]


def test_lists_changed_in_place_are_saved_and_replayed(redis_manager):
    cookie = stored_session(redis_manager, cart=["tea"])
    first, second = two_requests(redis_manager, cookie)
    first["cart"].append("cake")
    second["cart"].extend(["jam", "bread"])
    data = saved_data(redis_manager, cookie, first, second)
    assert data["cart"] == ["tea", "cake", "jam", "bread"]


def test_sets_deletions_and_operations_of_other_keys_all_survive(redis_manager):
    cookie = stored_session(redis_manager, a=1, b=2, theme="light")
    first, second = two_requests(redis_manager, cookie)
    first["theme"] = "dark"
    del first["a"]
    first.incr("n")
    second["lang"] = "fr"
    second.modify("b", lambda b: b * 10)
    data = saved_data(redis_manager, cookie, first, second)
    assert data == {"_permanent": True, "b": 20, "theme": "dark", "lang": "fr", "n": 1}


def test_other_read_then_sets_are_replayed_as_sets(redis_manager):
    cookie = stored_session(redis_manager, name="ann", n=3)
    first, second = two_requests(redis_manager, cookie)
    first["name"] = first["name"] + "!"
    second["name"] = second["name"] + "?"
    first["n"] *= 2  # replayed as adding the difference: documented
    second["n"] += 1
    data = saved_data(redis_manager, cookie, first, second)
    assert data["name"] == "ann?", "the last save's set wins for that key"
    assert data["n"] == 7


def test_increments_after_incr_derive_from_its_result(redis_manager):
    cookie = stored_session(redis_manager, n=1)
    first, second = two_requests(redis_manager, cookie)
    assert first.incr("n", 5) == 6
    first["n"] = first["n"] + 1
    second["n"] = second["n"] + 100
    assert saved_data(redis_manager, cookie, first, second)["n"] == 107


def test_the_example_app_counts_every_concurrent_visit(redis_manager, prefix):
    example = load_module(REPOSITORY / "bindings/python/examples/app.py", "example_app")
    manager = SessionManager(REDIS_URL, secret="example secret", key_prefix=prefix)
    server = make_server("127.0.0.1", 0, example.create_app(manager), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        request = urllib.request.Request(f"{base}/login", data=b"user=ann", method="POST")
        with urllib.request.urlopen(request) as response:
            cookie = response.headers["Set-Cookie"].split(";", 1)[0]
            assert json.load(response) == {"user": "ann", "visits": 0}

        def visits():
            for _ in range(25):
                visit = urllib.request.Request(f"{base}/visit", headers={"Cookie": cookie})
                with urllib.request.urlopen(visit) as response:
                    json.load(response)

        assert run_in_threads(8, visits) == []
        whoami = urllib.request.Request(f"{base}/whoami", headers={"Cookie": cookie})
        with urllib.request.urlopen(whoami) as response:
            assert json.load(response) == {"user": "ann", "visits": 200}
    finally:
        server.shutdown()


@pytest.mark.parametrize("use_signer", ["False", "True"])
def test_sessions_are_shared_with_an_unchanged_flask_session_app(prefix, use_signer):
    settings = {
        "SESSION_TYPE": "redis",
        "SESSION_REDIS": REDIS_URL,
        "SESSION_KEY_PREFIX": prefix,
        "SECRET_KEY": "shared secret",
        "SESSION_USE_SIGNER": use_signer,
    }
    flask_session_app = load_module(REPOSITORY / "tests/flask_app.py", "flask_session_app")
    theirs = flask_session_app.create_app(settings).test_client()
    written = {"user": "ann", "n": 3, "tags": ["a", "b"], "ratio": 0.5, "ok": True, "none": None}
    assert theirs.post("/session", json=written).status_code == 200
    cookie = f"session={theirs.get_cookie('session').value}"

    manager = SessionManager.from_flask_config(settings)
    session = manager.load(cookie)
    assert not session.new
    assert {key: session[key] for key in written} == written
    session["from python"] = {"k": [1, 2]}
    session.incr("n")
    manager.save(session)

    data = theirs.get("/session").json["data"]
    assert data["from python"] == {"k": [1, 2]} and data["n"] == 4 and data["user"] == "ann"

    ours = make_app(settings).test_client()
    ours.set_cookie("session", cookie.split("=", 1)[1])
    assert ours.get("/visit").json == {"visits": 1}
    assert theirs.get("/session").json["data"]["visits"] == 1
