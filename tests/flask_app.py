"""A small Flask app on Flask-Session 0.8, for the interop tests (tests/flask_interop.rs).

The tests start it with the test virtualenv's Python (target/venv/bin/python) and share its
sessions with sessionstore in `flask` cookie mode. Configured from the environment:

    FLASK_PORT          the port to listen on, on 127.0.0.1 (required)
    SESSION_TYPE        redis or memcached (required)
    SESSION_KEY_PREFIX  the store key prefix (default session:)
    SESSION_PERMANENT   true or false (default true)
    REDIS_URL           for redis (default redis://127.0.0.1:6379/0)
    MEMCACHED_SERVERS   for memcached, host:port[,host:port...] (default 127.0.0.1:11211);
                        several servers go through pymemcache's HashClient

SESSION_USE_SIGNER is on, with the fixed SECRET_KEY below. Routes, JSON in and out:

    GET  /session    {"data": the whole session, "permanent": session.permanent}
    POST /session    body {"key": value, ...}: sets those keys
    POST /permanent  body {"permanent": true|false}
"""

import os

import redis
from flask import Flask, jsonify, request, session
from flask_session import Session
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient

SECRET_KEY = "flask-interop-secret"


def create_app():
    app = Flask(__name__)
    session_type = os.environ["SESSION_TYPE"]
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        SESSION_TYPE=session_type,
        SESSION_USE_SIGNER=True,
        SESSION_KEY_PREFIX=os.environ.get("SESSION_KEY_PREFIX", "session:"),
        SESSION_PERMANENT=os.environ.get("SESSION_PERMANENT", "true") == "true",
    )
    if session_type == "redis":
        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        app.config["SESSION_REDIS"] = redis.Redis.from_url(url)
    elif session_type == "memcached":
        servers = os.environ.get("MEMCACHED_SERVERS", "127.0.0.1:11211").split(",")
        # No serializer: values are bytes, flags are not interpreted.
        app.config["SESSION_MEMCACHED"] = (
            HashClient(servers) if len(servers) > 1 else Client(servers[0])
        )
    else:
        raise SystemExit(f"SESSION_TYPE {session_type!r}: redis or memcached")
    Session(app)

    @app.get("/session")
    def read():
        return jsonify(data=dict(session), permanent=session.permanent)

    @app.post("/session")
    def write():
        session.update(request.get_json())
        return jsonify(data=dict(session), permanent=session.permanent)

    @app.post("/permanent")
    def permanent():
        session.permanent = bool(request.get_json()["permanent"])
        return jsonify(data=dict(session), permanent=session.permanent)

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(os.environ["FLASK_PORT"]))
