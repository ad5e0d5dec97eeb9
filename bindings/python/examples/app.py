"""The demo web app in Flask, on sessionstore: the HTTP contract of the rouille demo
(examples/demo.rs) and the C server (ffi/examples/server.c), with the same flags.

    python bindings/python/examples/app.py --listen 127.0.0.1:8000 \\
        --store redis://127.0.0.1:6379/0 --secret "change me"
    curl -c jar -b jar localhost:8000/visit

    GET  /whoami   {"user": str|null, "visits": int}; changes nothing
    GET  /visit    visits + 1 (plain Flask code; concurrent visits all count), then as /whoami
    POST /login    form user=NAME: a new session id, sets user, binds the session to it as
                   its owner (unless over 256 bytes or with NUL), then as /whoami;
                   400 {"error": ...} without a name
    POST /logout   ends the session: {"user": null, "visits": 0}
    GET  /sessions the user's sessions: {"user": str|null, "sessions": [{"id_hint",
                   "bound_at", "expires_at", "current"}]}, oldest first
    POST /logout-all  ends the user's other sessions: {"ended": int}
    anything else  404, empty body (a known path with another method too)

Flags (environment variables give the defaults): --listen ADDR (127.0.0.1:8000), --store
URL ($SESSIONSTORE_URL, else sqlite:demo-sessions.db), --secret S ($SESSIONSTORE_SECRET),
--cookie-mode plain|signed|flask, --cookie-name NAME, --prefix P. Served by werkzeug's
threaded server; prints "python listening on http://HOST:PORT" once listening. A bad flag,
--help or a store that does not open exits with status 2, as the demo and the C server do.
"""

import argparse
import logging
import os
import sys
from urllib.parse import parse_qsl

from flask import Flask, jsonify, request, session
from werkzeug.serving import make_server

import sessionstore
from sessionstore.flask import Session


def parse_args(argv):
    # --help is a usage error (status 2), as in the demo and the C server.
    parser = argparse.ArgumentParser(
        prog="app.py", description="The sessionstore demo in Flask.", add_help=False
    )
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--listen", default="127.0.0.1:8000")
    parser.add_argument(
        "--store", default=os.environ.get("SESSIONSTORE_URL", "sqlite:demo-sessions.db")
    )
    parser.add_argument("--secret", default=os.environ.get("SESSIONSTORE_SECRET"))
    parser.add_argument("--cookie-mode", choices=["plain", "signed", "flask"])
    parser.add_argument("--cookie-name")
    parser.add_argument("--prefix")
    args = parser.parse_args(argv)
    if args.help:
        parser.print_help(sys.stderr)
        sys.exit(2)
    return args


def form_field(name):
    """The first ``name`` field of the request's urlencoded form, or "": read as the demo and
    the C server read it (invalid UTF-8 replaced by U+FFFD; werkzeug's ``request.form`` would
    keep it percent-encoded instead), and no form in a body of another content type."""
    if request.mimetype != "application/x-www-form-urlencoded":
        return ""
    body = request.get_data().decode("utf-8", "replace")
    fields = parse_qsl(body, keep_blank_values=True, errors="replace")
    return next((value for key, value in fields if key == name), "")


def create_app(manager):
    """The app, its sessions in ``manager``."""
    app = Flask(__name__)
    Session(app, manager=manager)

    def whoami():
        return jsonify(user=session.get("user"), visits=session.get("visits", 0))

    @app.get("/whoami")
    def show():
        return whoami()

    @app.get("/visit")
    def visit():
        session["visits"] = session.get("visits", 0) + 1
        return whoami()

    @app.post("/login")
    def login():
        user = form_field("user")
        if not user:
            return jsonify(error="form field user is required"), 400
        session.regenerate()
        # A name no owner can be (over 256 bytes, or with NUL) stays unbound.
        if len(user.encode()) <= 256 and "\0" not in user:
            session.set_owner(user)
        session["user"] = user
        return whoami()

    @app.get("/sessions")
    def sessions():
        owner = session.owner
        if owner is None:
            return jsonify(user=None, sessions=[])
        current = session.id_hint
        listed = [
            {
                "id_hint": info.id_hint,
                "bound_at": int(info.bound_at.timestamp()),
                "expires_at": int(info.expires_at.timestamp()),
                "current": info.id_hint == current,
            }
            for info in manager.sessions_of(owner)
        ]
        return jsonify(user=owner, sessions=listed)

    @app.post("/logout-all")
    def logout_all():
        owner = session.owner
        ended = manager.end_sessions_of(owner, session.id) if owner else 0
        return jsonify(ended=ended)

    @app.post("/logout")
    def logout():
        session.destroy()
        return jsonify(user=None, visits=0)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def not_found(error):
        response = app.response_class(status=404)
        del response.headers["Content-Type"]
        return response

    @app.errorhandler(sessionstore.Error)
    def store_failed(error):
        return jsonify(error=str(error)), 503

    return app


def main(argv=None):
    args = parse_args(argv)
    options = {
        name: value
        for name, value in (
            ("cookie_mode", args.cookie_mode),
            ("cookie_name", args.cookie_name),
            ("key_prefix", args.prefix),
        )
        if value is not None
    }
    try:
        manager = sessionstore.SessionManager(args.store, secret=args.secret, **options)
    except sessionstore.Error as error:
        print(f"app.py: {error}", file=sys.stderr)
        return 2
    host, _, port = args.listen.rpartition(":")
    # Request lines would cost more than the requests; errors are still logged (stderr).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, int(port), create_app(manager), threaded=True)
    print(f"python listening on http://{host}:{server.server_port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
