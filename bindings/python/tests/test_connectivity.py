"""The connectivity URLs reach the package through the C ABI: PostgreSQL over TLS
(`sslmode`) against the shared test server, which runs with ``ssl = on`` (Debian's default,
with its self-signed "snakeoil" certificate), and the Sentinel URL's parsing."""

import pytest
from conftest import cookie_of

from sessionstore import ConfigError, SessionManager, StoreError

POSTGRES = "postgres://postgres@127.0.0.1:5432/test?table=sessionstore_pytest_tls"


def test_postgres_round_trip_over_tls():
    with SessionManager(POSTGRES + "&sslmode=require", secret="pytest secret") as manager:
        session = manager.load(None)
        session["user"] = "ann"
        cookie = cookie_of(manager.save(session))
        with manager.load(cookie) as loaded:
            assert loaded["user"] == "ann"


def test_an_untrusted_certificate_is_refused_under_verify_full():
    # The server's certificate is self-signed: no CA of the system's signed it.
    with pytest.raises(StoreError) as refused:
        SessionManager(POSTGRES + "&sslmode=verify-full", secret="pytest secret")
    assert "certificate" in refused.value.message and "verify-full" in refused.value.message


def test_tls_and_sentinel_settings_are_checked_by_name():
    with pytest.raises(ConfigError, match="sslmode"):
        SessionManager(POSTGRES + "&sslmode=sometimes")
    with pytest.raises(ConfigError, match="sslrootcert"):
        SessionManager(POSTGRES + "&sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem")
    with pytest.raises(ConfigError, match="wait_timeout"):
        SessionManager("redis+sentinel://127.0.0.1:26379/mymaster/0?wait_replicas=1&wait_timeout=9")


def test_a_sentinel_url_without_sentinels_is_a_store_error():
    with pytest.raises(StoreError) as store:
        SessionManager("redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster/0?connect_timeout=0.5")
    assert "redis" in store.value.message
