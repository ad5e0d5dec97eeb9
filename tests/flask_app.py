"""The Flask app of the interop and cross-stack tests, on Flask-Session 0.8.

One app for every store Flask-Session shares with sessionstore (tests/common/flask.rs starts
it for the flask_interop, flask_interop_sql_mongo and cross_stack modules of tests/integration/),
run with the test virtualenv's Python (target/venv/bin/python). It is configured from
environment variables named as Flask-Session's own settings, so a test hands the same list
to this app and to `Config::from_flask`:

    SESSION_TYPE                  redis, memcached, sqlalchemy or mongodb (required)
    SECRET_KEY                    Flask's secret key
    SESSION_USE_SIGNER            True/False (default False, as in Flask-Session)
    SESSION_KEY_PREFIX            the store key prefix (default session:)
    SESSION_PERMANENT             True/False (default True)
    PERMANENT_SESSION_LIFETIME    seconds (default 31 days)
    SESSION_REFRESH_EACH_REQUEST  True/False (default False here, unlike Flask: a request
                                  that only reads the session, such as /whoami, writes nothing)
    SESSION_SERIALIZATION_FORMAT, SESSION_COOKIE_NAME, SESSION_COOKIE_DOMAIN,
    SESSION_COOKIE_PATH, SESSION_COOKIE_HTTPONLY, SESSION_COOKIE_SECURE,
    SESSION_COOKIE_SAMESITE      as in Flask and Flask-Session

and the connection settings, which Flask-Session takes as client objects, here as the
strings sessionstore's `Config::from_flask` takes:

    SESSION_REDIS                 redis: a URL (default redis://127.0.0.1:6379/0)
    SESSION_MEMCACHED             memcached: host:port[,host:port...] (default
                                  127.0.0.1:11211); several servers go through pymemcache's
                                  HashClient, one through its Client, without a serializer
    SQLALCHEMY_DATABASE_URI       sqlalchemy: the database (postgresql+psycopg2://...,
                                  mysql+pymysql://...)
    SESSION_SQLALCHEMY_TABLE      sqlalchemy: the table (default sessions)
    SESSION_MONGODB               mongodb: the MongoClient's connection string
    SESSION_MONGODB_DB, SESSION_MONGODB_COLLECT   mongodb: as in Flask-Session

FLASK_PORT is the port on 127.0.0.1 (default 0: any free one). Once listening, the app
prints one line, `flask listening on http://127.0.0.1:PORT`, and serves requests on
threads.

Routes. The demo's HTTP contract (examples/demo.rs, ffi/examples/server.c), JSON out:

    GET  /whoami     {"user": str|null, "visits": int}; changes nothing
    GET  /visit      session["visits"] = session.get("visits", 0) + 1, then as /whoami
                     (Flask's read-modify-write: concurrent visits overwrite each other)
    POST /login      form user=NAME: a new session id (Flask-Session's regenerate), sets
                     user, then as /whoami; 400 {"error": ...} without a name
    POST /logout     clears the session (deleted from the store, cookie removed):
                     {"user": null, "visits": 0}

and for the interop tests, JSON in and out:

    GET  /session    {"data": the whole session, "permanent": session.permanent}
    POST /session    body {"key": value, ...}: sets those keys, then as GET /session
    POST /permanent  body {"permanent": true|false}, then as GET /session
"""

import logging
import os
from datetime import timedelta

from flask import Flask, jsonify, request, session
from flask_session import Session
from werkzeug.serving import make_server

# Flask and Flask-Session settings taken from the environment as they are (strings).
TEXT_SETTINGS = (
    "SECRET_KEY",
    "SESSION_TYPE",
    "SESSION_KEY_PREFIX",
    "SESSION_SERIALIZATION_FORMAT",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_SQLALCHEMY_TABLE",
    "SESSION_MONGODB_DB",
    "SESSION_MONGODB_COLLECT",
    "SQLALCHEMY_DATABASE_URI",
)
BOOL_SETTINGS = (
    "SESSION_USE_SIGNER",
    "SESSION_PERMANENT",
    "SESSION_REFRESH_EACH_REQUEST",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SECURE",
)


def parse_bool(name, text):
    """Python's and sessionstore's spellings of a boolean setting."""
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise SystemExit(f"{name}: expected True or False, got {text!r}")


def settings_from(environ):
    """The app's config: Flask-Session settings from `environ`, clients made from strings."""
    config = {"SESSION_REFRESH_EACH_REQUEST": False}
    config.update({name: environ[name] for name in TEXT_SETTINGS if name in environ})
    config.update(
        {name: parse_bool(name, environ[name]) for name in BOOL_SETTINGS if name in environ}
    )
    if "PERMANENT_SESSION_LIFETIME" in environ:
        seconds = int(environ["PERMANENT_SESSION_LIFETIME"])
        config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=seconds)
    session_type = config.get("SESSION_TYPE")
    if session_type == "redis":
        import redis

        url = environ.get("SESSION_REDIS", "redis://127.0.0.1:6379/0")
        config["SESSION_REDIS"] = redis.Redis.from_url(url)
    elif session_type == "memcached":
        from pymemcache.client.base import Client
        from pymemcache.client.hash import HashClient

        servers = environ.get("SESSION_MEMCACHED", "127.0.0.1:11211").split(",")
        # No serializer: values are bytes, flags are not interpreted. pymemcache sends
        # writes with noreply by default: Flask would answer before memcached has stored
        # the session, and the tests' next read, on another connection, could overtake the
        # write. Waiting for the reply makes a response mean "stored".
        client_options = {"default_noreply": False}
        config["SESSION_MEMCACHED"] = (
            HashClient(servers, **client_options)
            if len(servers) > 1
            else Client(servers[0], **client_options)
        )
    elif session_type == "mongodb":
        from pymongo import MongoClient

        config["SESSION_MONGODB"] = MongoClient(environ["SESSION_MONGODB"])
    elif session_type != "sqlalchemy":
        raise SystemExit(
            f"SESSION_TYPE {session_type!r}: expected redis, memcached, sqlalchemy or mongodb"
        )
    return config


def whoami():
    return jsonify(user=session.get("user"), visits=session.get("visits", 0))


def contents():
    return jsonify(data=dict(session), permanent=session.permanent)


def create_app(environ):
    app = Flask(__name__)
    app.config.update(settings_from(environ))
    if app.config["SESSION_TYPE"] == "sqlalchemy":
        from flask_sqlalchemy import SQLAlchemy

        app.config["SESSION_SQLALCHEMY"] = SQLAlchemy(app)
    Session(app)

    @app.get("/whoami")
    def show():
        return whoami()

    @app.get("/visit")
    def visit():
        session["visits"] = session.get("visits", 0) + 1
        return whoami()

    @app.post("/login")
    def login():
        user = request.form.get("user", "")
        if not user:
            return jsonify(error="form field user is required"), 400
        app.session_interface.regenerate(session)
        session["user"] = user
        return whoami()

    @app.post("/logout")
    def logout():
        session.clear()
        return jsonify(user=None, visits=0)

    @app.get("/session")
    def read():
        return contents()

    @app.post("/session")
    def write():
        session.update(request.get_json())
        return contents()

    @app.post("/permanent")
    def permanent():
        session.permanent = bool(request.get_json()["permanent"])
        return contents()

    return app


def main():
    app = create_app(os.environ)
    # Request lines would cost more than the requests; errors are still logged (stderr).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(
        "127.0.0.1", int(os.environ.get("FLASK_PORT", "0")), app, threaded=True
    )
    print(f"flask listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
