"""Sessions of an owner from Python: Session.set_owner, SessionManager.sessions_of and
end_sessions_of on each test store, and the Flask interface's RequestSession.set_owner."""

import datetime

import pytest
from flask import Flask, jsonify, session

from sessionstore import SessionInfo, SessionManager, TypeMismatchError
from sessionstore.flask import Session


def log_in(manager, owner):
    """A new device logged in as ``owner``: its Cookie header and session id."""
    new = manager.load()
    new["user"] = owner
    new.set_owner(owner)
    assert new.owner == owner
    session_id = new.id
    cookie = manager.save(new).set_cookie.split(";")[0]
    return cookie, session_id


def test_three_devices_are_listed_and_ended_but_the_caller(manager):
    devices = [log_in(manager, "42") for _ in range(3)]
    listed = manager.sessions_of("42")
    assert len(listed) == 3 and all(isinstance(info, SessionInfo) for info in listed)
    here = manager.load(devices[0][0])
    assert here.id_hint in [info.id_hint for info in listed]
    assert here.owner == "42"
    here.close()
    now = datetime.datetime.now(datetime.timezone.utc)
    assert all(info.bound_at <= now < info.expires_at for info in listed)
    assert manager.end_sessions_of("42", except_id=devices[0][1]) == 2
    assert manager.load(devices[1][0]).new and manager.load(devices[2][0]).new
    assert not manager.load(devices[0][0]).new
    assert manager.end_sessions_of("42") == 1
    assert manager.sessions_of("42") == []


def test_the_cap_ends_the_oldest(tmp_path):
    url = f"sqlite:///{tmp_path}/sessions.db?max_sessions_per_owner=1"
    with SessionManager(url) as manager:
        first, _ = log_in(manager, "42")
        second, _ = log_in(manager, "42")
        assert manager.load(first).new
        assert not manager.load(second).new


def test_the_cap_option_ends_the_oldest():
    with SessionManager("memory://", max_sessions_per_owner=1) as manager:
        first, _ = log_in(manager, "7")
        second, _ = log_in(manager, "7")
        assert manager.load(first).new and not manager.load(second).new


def test_bad_owners_are_refused():
    manager = SessionManager("memory://")
    fresh = manager.load()
    assert fresh.owner is None
    with pytest.raises(TypeMismatchError):
        fresh.set_owner("")
    with pytest.raises(TypeError):
        fresh.set_owner(42)
    with pytest.raises(TypeMismatchError):
        manager.sessions_of("x" * 257)
    manager.close()


def test_flask_views_bind_list_and_log_out_everywhere(tmp_path):
    app = Flask(__name__)
    app.config.update(SESSIONSTORE_URL=f"sqlite:///{tmp_path}/sessions.db")
    Session(app)

    @app.post("/login")
    def login():
        app.session_interface.regenerate(session)
        session["user"] = "ann"
        session.set_owner("ann")
        return jsonify(owner=session.owner)

    @app.get("/sessions")
    def sessions():
        if session.owner is None:
            return jsonify(error="anonymous"), 401
        listed = app.session_interface.manager.sessions_of(session.owner)
        return jsonify(hints=[info.id_hint for info in listed], mine=session.id_hint)

    @app.post("/logout-all")
    def logout_all():
        ended = app.session_interface.manager.end_sessions_of(session.owner, session.id)
        return jsonify(ended=ended)

    laptop, phone = app.test_client(), app.test_client()
    assert laptop.post("/login").json == {"owner": "ann"}
    phone.post("/login")
    listed = laptop.get("/sessions").json
    assert len(listed["hints"]) == 2 and listed["mine"] in listed["hints"]
    assert laptop.post("/logout-all").json == {"ended": 1}
    assert phone.get("/sessions").status_code == 401
    assert laptop.get("/sessions").json["hints"] == [listed["mine"]]
