"""Encryption and compression at rest through SessionManager(url, **options) and
from_flask_config(): stored bytes are sealed, rotation reads old keys and rewrites with the new,
and Flask's cookie mode refuses what Flask-Session could not read."""

import base64

import pytest
import redis
from conftest import REDIS_URL, stored_session

from sessionstore import ConfigError, SessionManager

OLD_KEY = base64.b64encode(bytes(range(32))).decode()
NEW_KEY = base64.urlsafe_b64encode(bytes(range(100, 132))).decode().rstrip("=")
MAGIC = b"\xc1SSE"


def raw(prefix, cookie):
    """The bytes Redis holds for the session a cookie names."""
    session_id = cookie.split("=", 1)[1].split(".", 1)[0]
    return redis.Redis.from_url(REDIS_URL).get(prefix + session_id)


def test_encrypted_and_compressed_sessions_round_trip(prefix):
    with SessionManager(
        REDIS_URL,
        secret="pytest secret",
        key_prefix=prefix,
        data_keys=OLD_KEY,
        compress_threshold=256,
    ) as manager:
        cookie = stored_session(manager, user="ann", cart="item-4711;" * 200)
        stored = raw(prefix, cookie)
        assert stored.startswith(MAGIC) and stored[5] == 0b11
        assert b"item-4711" not in stored and len(stored) < 1000
        session = manager.load(cookie)
        assert session["user"] == "ann" and session["cart"] == "item-4711;" * 200


def test_rotation_reads_the_old_key_and_the_next_request_writes_the_new(prefix):
    with SessionManager(REDIS_URL, key_prefix=prefix, data_keys=[OLD_KEY]) as old:
        cookie = stored_session(old, user="ann")
    before = raw(prefix, cookie)
    with SessionManager(REDIS_URL, key_prefix=prefix, data_keys=[NEW_KEY, OLD_KEY]) as rotated:
        session = rotated.load(cookie)
        assert session["user"] == "ann"
        rotated.save(session)
    after = raw(prefix, cookie)
    assert after[6:10] != before[6:10], "rewritten under the new key's id"
    with SessionManager(REDIS_URL, key_prefix=prefix, data_keys=NEW_KEY) as new:
        assert new.load(cookie)["user"] == "ann"
    with SessionManager(REDIS_URL, key_prefix=prefix) as plain:
        assert plain.load(cookie).new, "no key: a fresh session"


def test_decrypt_only_reads_encrypted_records_and_writes_them_plain(prefix):
    with SessionManager(REDIS_URL, key_prefix=prefix, data_keys=OLD_KEY) as encrypting:
        cookie = stored_session(encrypting, user="ann")
    assert raw(prefix, cookie).startswith(MAGIC)
    with SessionManager(
        REDIS_URL, key_prefix=prefix, data_keys=OLD_KEY, decrypt_only=True
    ) as off:
        session = off.load(cookie)
        assert session["user"] == "ann"
        off.save(session)
    assert not raw(prefix, cookie).startswith(MAGIC), "written plain"
    with SessionManager(REDIS_URL, key_prefix=prefix) as plain:
        assert plain.load(cookie)["user"] == "ann"


def test_bad_keys_and_flask_cookie_mode_are_config_errors(prefix):
    with pytest.raises(ConfigError, match="32 bytes"):
        SessionManager(REDIS_URL, key_prefix=prefix, data_keys="c2hvcnQ=")
    with pytest.raises(ConfigError, match="Flask-Session cannot read"):
        SessionManager(
            REDIS_URL, secret="s", cookie_mode="flask", key_prefix=prefix, data_keys=OLD_KEY
        )
    settings = {
        "SESSION_TYPE": "redis",
        "SESSION_REDIS": REDIS_URL,
        "SECRET_KEY": "s",
        "SESSION_USE_SIGNER": True,
        "SESSIONSTORE_DATA_KEYS": OLD_KEY,
    }
    with pytest.raises(ConfigError, match="SESSIONSTORE_DATA_KEYS"):
        SessionManager.from_flask_config(settings)
    settings["SESSION_USE_SIGNER"] = False
    settings["SESSION_KEY_PREFIX"] = prefix
    with SessionManager.from_flask_config(settings) as manager:
        cookie = stored_session(manager, user="ann")
        assert raw(prefix, cookie).startswith(MAGIC)
