"""The session cost of one request on Redis, side by side in one process: the sessionstore
package (through its Flask interface and through its plain API) against Flask-Session 0.8's
``open_session`` + ``save_session``, and against redis-py making the same round trips by hand.

    python bindings/python/benchmarks/bench_session.py [--redis URL] [--rounds N]
        [--requests N] [--quick]

(``scripts/bench.sh python`` runs it in the test virtualenv; ``--quick`` is the test
command's short run, which checks that every variant works and measures nothing worth
keeping.) The figures and the method are in docs/BENCHMARKS.md ("The Python package").

One request is what the session layer does for it, nothing else: the app's session is opened
from the request's ``Cookie`` header, the view reads ``user`` and ``visits`` (unmodified) or
also does ``session["visits"] = session.get("visits", 0) + 1`` (modified; the plain API
calls ``session.incr("visits")``), and the session is saved onto the response. The request
and response objects are built before the clock starts. Both Flask interfaces get the same
app config (SESSION_TYPE="redis", one redis.Redis client, the same key prefix, no signer),
Flask-Session's defaults otherwise: SESSION_PERMANENT and SESSION_REFRESH_EACH_REQUEST on,
so its unmodified request rewrites the session (``GET`` + ``SET``); a second Flask-Session
row has SESSION_REFRESH_EACH_REQUEST off (``GET`` only). sessionstore's unmodified request is
one read (``GET`` + ``PEXPIRETIME``, pipelined) and no write (its expiry renewal is a touch
at most once a minute); its modified save is a compare-and-set script (``EVALSHA``). The
redis-py rows move the stored bytes and decode nothing: ``GET``; ``GET`` + ``SET ... EX``
(Flask-Session's round trips); ``GET`` + ``EVALSHA`` of a compare-and-set script like the
library's (sessionstore's round trips).

Every variant runs a batch of ``--requests`` requests per round, in an order that rotates
each round, after one warm-up round; a figure is the median over the rounds of the batch
means, a ratio the median of the per-round ratios (the machine is shared: interleaving keeps
a slow moment from landing on one side only). Every modified variant's counter is checked at
the end: each request must have counted once.
"""

import argparse
import os
from importlib import metadata
import platform
import secrets
import statistics
import sys
import time

import flask_session
import msgpack
import redis
from flask import Flask
from werkzeug.test import EnvironBuilder

import sessionstore
import sessionstore.flask

# A signed-in user with a small cart: about 200 bytes of MessagePack.
SESSION_DATA = {
    "user": "ann",
    "visits": 0,
    "locale": "en-GB",
    "csrf_token": "Tq8cJ0rVhO3m2bD5xW9yLkP4sNfA7eGu",
    "cart": [
        {"sku": "tea-earl-grey", "qty": 2, "price": 450},
        {"sku": "scones-6", "qty": 1, "price": 320},
        {"sku": "jam-strawberry", "qty": 1, "price": 275},
    ],
}

LIFETIME_SECONDS = 31 * 24 * 3600

# Compare-and-set: ARGV expected bytes, new bytes, TTL in ms (what sessionstore's Redis store
# sends by EVALSHA: on a conflict it returns the current value and its expiry).
CAS_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
if not current then
  return 0
end
return {current, redis.call('PEXPIRETIME', KEYS[1])}
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--redis",
        default=os.environ.get("SESSIONSTORE_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the Redis server (default $SESSIONSTORE_REDIS_URL, else redis://127.0.0.1:6379/0)",
    )
    parser.add_argument("--rounds", type=int, default=21, help="measured rounds (default 21)")
    parser.add_argument(
        "--requests", type=int, default=500, help="requests per variant and round (default 500)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 rounds of 20 requests: checks that every variant works, measures nothing",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.requests = 2, 20
    return args


def view(session, modified):
    """The app's work on its session: read two keys, and count a visit when ``modified``."""
    session.get("user")
    visits = session.get("visits", 0)
    if modified:
        session["visits"] = visits + 1


class FlaskVariant:
    """A Flask session interface's ``open_session`` + ``save_session`` around the view."""

    def __init__(self, name, app, modified):
        self.name = name
        self.app = app
        self.modified = modified
        self.interface = app.session_interface
        self.counted = 0
        seed_request = app.request_class(EnvironBuilder().get_environ())
        session = self.interface.open_session(app, seed_request)
        session.update(SESSION_DATA)
        response = app.response_class()
        self.interface.save_session(app, session, response)
        pair = response.headers["Set-Cookie"].split(";")[0]
        self.environ = EnvironBuilder(headers={"Cookie": pair}).get_environ()

    def prepare(self, count):
        app = self.app
        return [
            (app.request_class(dict(self.environ)), app.response_class()) for _ in range(count)
        ]

    def run(self, prepared):
        app, interface, modified = self.app, self.interface, self.modified
        started = time.perf_counter()
        for request, response in prepared:
            session = interface.open_session(app, request)
            view(session, modified)
            interface.save_session(app, session, response)
        elapsed = time.perf_counter() - started
        self.counted += len(prepared) if modified else 0
        return elapsed

    def visits(self):
        """The stored counter, read through the interface itself."""
        request = self.app.request_class(dict(self.environ))
        return self.interface.open_session(self.app, request).get("visits")


class PlainVariant:
    """sessionstore's plain API: ``manager.load(cookie)``, the view, ``manager.save``."""

    def __init__(self, name, manager, modified):
        self.name = name
        self.manager = manager
        self.modified = modified
        self.counted = 0
        session = manager.load(None)
        session.update(SESSION_DATA)
        self.cookie = manager.save(session).set_cookie.split(";")[0]

    def prepare(self, count):
        return count

    def run(self, count):
        manager, cookie, modified = self.manager, self.cookie, self.modified
        started = time.perf_counter()
        for _ in range(count):
            session = manager.load(cookie)
            session.get("user")
            session.get("visits", 0)
            if modified:
                session.incr("visits")
            manager.save(session)
        elapsed = time.perf_counter() - started
        self.counted += count if modified else 0
        return elapsed

    def visits(self):
        with self.manager.load(self.cookie) as session:
            return session.get("visits")


class RawVariant:
    """redis-py making the round trips by hand on the stored bytes: ``GET``, then nothing,
    ``SET ... EX`` or ``EVALSHA`` of the compare-and-set script."""

    def __init__(self, name, client, key, write):
        self.name = name
        self.client = client
        self.key = key
        self.write = write
        self.counted = 0
        client.set(key, msgpack.packb(SESSION_DATA), ex=LIFETIME_SECONDS)
        self.script = client.script_load(CAS_SCRIPT)

    def prepare(self, count):
        return count

    def run(self, count):
        client, key, write = self.client, self.key, self.write
        get, script, ttl_ms = client.get, self.script, LIFETIME_SECONDS * 1000
        started = time.perf_counter()
        if write == "set":
            for _ in range(count):
                client.set(key, get(key), ex=LIFETIME_SECONDS)
        elif write == "cas":
            for _ in range(count):
                value = get(key)
                if client.evalsha(script, 1, key, value, value, ttl_ms) != 1:
                    raise RuntimeError("the compare-and-set script found a conflict")
        else:
            for _ in range(count):
                get(key)
        return time.perf_counter() - started

    def visits(self):
        return None


def flask_app(name, config):
    app = Flask(name)
    app.config.update(config)
    return app


def variants(url, prefix):
    """The variants, each on keys of its own under ``prefix``."""
    client = redis.Redis.from_url(url)
    shared_config = {
        "SECRET_KEY": "benchmark",
        "SESSION_TYPE": "redis",
        "SESSION_REDIS": client,
    }

    def flask_session_app(key_prefix, **settings):
        app = flask_app("flask_session_bench", {**shared_config, **settings})
        app.config["SESSION_KEY_PREFIX"] = key_prefix
        flask_session.Session(app)
        return app

    def sessionstore_app(key_prefix):
        app = flask_app("sessionstore_bench", {**shared_config, "SESSION_KEY_PREFIX": key_prefix})
        sessionstore.flask.Session(app)
        return app

    manager = sessionstore.SessionManager(url, key_prefix=f"{prefix}plain:")
    return [
        FlaskVariant(
            "sessionstore, Flask interface: unmodified",
            sessionstore_app(f"{prefix}ss-u:"),
            False,
        ),
        FlaskVariant(
            "sessionstore, Flask interface: modified", sessionstore_app(f"{prefix}ss-m:"), True
        ),
        PlainVariant("sessionstore, plain API: unmodified", manager, False),
        PlainVariant("sessionstore, plain API: modified", manager, True),
        FlaskVariant(
            "Flask-Session 0.8: unmodified (refresh each request: GET + SET)",
            flask_session_app(f"{prefix}fs-u:"),
            False,
        ),
        FlaskVariant(
            "Flask-Session 0.8: unmodified, SESSION_REFRESH_EACH_REQUEST off (GET)",
            flask_session_app(f"{prefix}fs-n:", SESSION_REFRESH_EACH_REQUEST=False),
            False,
        ),
        FlaskVariant(
            "Flask-Session 0.8: modified (GET + SET)", flask_session_app(f"{prefix}fs-m:"), True
        ),
        RawVariant("redis-py: GET", client, f"{prefix}raw-get", None),
        RawVariant("redis-py: GET + SET", client, f"{prefix}raw-set", "set"),
        RawVariant("redis-py: GET + EVALSHA (compare-and-set)", client, f"{prefix}raw-cas", "cas"),
    ]


def measure(all_variants, rounds, requests):
    """Per variant, the mean time per request (seconds) of each measured round."""
    times = {variant.name: [] for variant in all_variants}
    for round_number in range(rounds + 1):
        shift = round_number % len(all_variants)
        for variant in all_variants[shift:] + all_variants[:shift]:
            prepared = variant.prepare(requests)
            elapsed = variant.run(prepared)
            if round_number > 0:  # round 0 warms up
                times[variant.name].append(elapsed / requests)
    return times


def check_counts(all_variants, seeded):
    """Every modified request counted once, or the run is void."""
    for variant in all_variants:
        if variant.counted:
            stored = variant.visits()
            if stored != seeded + variant.counted:
                sys.exit(f"{variant.name}: counter {stored}, expected {seeded + variant.counted}")


def ratio(times, numerator, denominator):
    """The median of the per-round ratios."""
    return statistics.median(a / b for a, b in zip(times[numerator], times[denominator]))


def report(times, args, redis_version):
    us = {name: statistics.median(values) * 1e6 for name, values in times.items()}
    versions = ", ".join(
        f"{package} {metadata.version(package)}"
        for package in ("Flask", "Flask-Session", "redis", "msgpack", "sessionstore")
    )
    load = " ".join(f"{average:.2f}" for average in os.getloadavg())
    print("## sessionstore's Python package against Flask-Session 0.8 and redis-py on Redis\n")
    print(
        f"{args.rounds} rounds x {args.requests} requests per variant, interleaved; Python "
        f"{platform.python_version()}, {versions} (library {sessionstore.library_version}), "
        f"Redis {redis_version}; load average {load} at the end.\n"
    )
    if args.quick:
        print("--quick: a check that every variant works, not a measurement.\n")
    print("| variant | median µs per request | fastest round | slowest round |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        print(
            f"| {name} | {us[name]:.1f} | {min(values) * 1e6:.1f} | {max(values) * 1e6:.1f} |"
        )
    names = list(times)
    ss_u, ss_m, plain_u, plain_m, fs_u, fs_n, fs_m, raw_get, raw_set, raw_cas = names
    at_least_4 = (">= 4", lambda value: value >= 4)
    below_1 = ("< 1", lambda value: value < 1)
    rows = []
    for side, unmodified, modified in (
        ("Flask interface", ss_u, ss_m),
        ("plain API", plain_u, plain_m),
    ):
        rows += [
            (f"Flask-Session / sessionstore ({side}), unmodified", fs_u, unmodified, at_least_4),
            (
                f"Flask-Session with refresh off / sessionstore ({side}), unmodified",
                fs_n,
                unmodified,
                None,
            ),
            (f"Flask-Session / sessionstore ({side}), modified", fs_m, modified, at_least_4),
            (f"sessionstore ({side}) modified / redis-py GET + SET", modified, raw_set, below_1),
            (f"sessionstore ({side}) modified / redis-py GET + EVALSHA", modified, raw_cas, None),
            (f"sessionstore ({side}) unmodified / redis-py GET", unmodified, raw_get, None),
        ]
    rows.append(("redis-py GET + EVALSHA / GET + SET", raw_cas, raw_set, None))
    print("\n| ratio (median of the per-round ratios) | value | target |")
    print("|---|---:|---|")
    for label, numerator, denominator, target in rows:
        value = ratio(times, numerator, denominator)
        verdict = ""
        if target is not None:
            verdict = f"{target[0]}: {'met' if target[1](value) else 'missed'}"
        print(f"| {label} | {value:.2f}x | {verdict} |")


def main(argv=None):
    args = parse_args(argv)
    client = redis.Redis.from_url(args.redis)
    try:
        redis_version = client.info("server")["redis_version"]
    except redis.RedisError as error:
        sys.exit(f"bench_session.py: Redis at {args.redis} cannot be reached: {error}")
    prefix = f"bench-py:{os.getpid()}:{secrets.token_hex(4)}:"
    try:
        all_variants = variants(args.redis, prefix)
        times = measure(all_variants, args.rounds, args.requests)
        check_counts(all_variants, SESSION_DATA["visits"])
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    report(times, args, redis_version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
