"""A small Flask app using Flask-Session 0.8 with SESSION_TYPE sqlalchemy or mongodb, for the
interop tests in tests/flask_interop_sql_mongo.rs.

Configured by environment variables:
  PORT            port to listen on (127.0.0.1 only)
  SECRET_KEY      Flask's secret key (SESSION_USE_SIGNER is True)
  SESSION_TYPE    "sqlalchemy" or "mongodb"
  KEY_PREFIX      SESSION_KEY_PREFIX
  PERMANENT       "1" (default) or "0": SESSION_PERMANENT
  DATABASE_URI    sqlalchemy: SQLALCHEMY_DATABASE_URI (postgresql+psycopg2:// or mysql+pymysql://)
  TABLE           sqlalchemy: SESSION_SQLALCHEMY_TABLE
  MONGODB_URI     mongodb: the MongoClient's connection string
  MONGODB_DB      mongodb: SESSION_MONGODB_DB
  MONGODB_COLLECT mongodb: SESSION_MONGODB_COLLECT

Routes (all GET, all answer the session's contents as JSON):
  /get                        read only
  /set?key=K&value=JSON       session[K] = value
  /incr?key=K                 session[K] = session.get(K, 0) + 1
  /permanent?on=0|1           session.permanent = on
"""

import json
import os

from flask import Flask, jsonify, request, session
from flask_session import Session

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["SECRET_KEY"],
    SESSION_TYPE=os.environ["SESSION_TYPE"],
    SESSION_USE_SIGNER=True,
    SESSION_KEY_PREFIX=os.environ["KEY_PREFIX"],
    SESSION_PERMANENT=os.environ.get("PERMANENT", "1") == "1",
)
if app.config["SESSION_TYPE"] == "sqlalchemy":
    from flask_sqlalchemy import SQLAlchemy

    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URI"]
    app.config["SESSION_SQLALCHEMY_TABLE"] = os.environ["TABLE"]
    app.config["SESSION_SQLALCHEMY"] = SQLAlchemy(app)
elif app.config["SESSION_TYPE"] == "mongodb":
    from pymongo import MongoClient

    app.config["SESSION_MONGODB"] = MongoClient(os.environ["MONGODB_URI"])
    app.config["SESSION_MONGODB_DB"] = os.environ["MONGODB_DB"]
    app.config["SESSION_MONGODB_COLLECT"] = os.environ["MONGODB_COLLECT"]
else:
    raise SystemExit(f"unsupported SESSION_TYPE {app.config['SESSION_TYPE']!r}")
Session(app)


def contents():
    return jsonify({"session": dict(session), "permanent": session.permanent})


@app.get("/get")
def get():
    return contents()


@app.get("/set")
def set_value():
    session[request.args["key"]] = json.loads(request.args["value"])
    return contents()


@app.get("/incr")
def incr():
    key = request.args["key"]
    session[key] = session.get(key, 0) + 1
    return contents()


@app.get("/permanent")
def permanent():
    session.permanent = request.args["on"] == "1"
    return contents()


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
