"""libsessionstore's C ABI (include/sessionstore.h), loaded with ctypes.

Every function used is declared here once, with the types of the header. ctypes releases the
GIL for the duration of each call into the library, so store round trips of several threads
run in parallel. Failing calls raise the exception of their result code (see _errors).
"""

import ctypes
import importlib.machinery
import pathlib
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)

from ._errors import error_for


def _library_path():
    """The library that the install bundled beside this module."""
    here = pathlib.Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"libsessionstore{suffix}"
        if candidate.is_file():
            return candidate
    raise ImportError(
        f"libsessionstore is missing from {here}; install the package with "
        "`pip install ./bindings/python`, which builds it"
    )


class Saved(Structure):
    """sessionstore_saved; set_cookie stays a pointer so that it can be freed."""

    _fields_ = [("set_cookie", c_void_p), ("vary_cookie", c_bool), ("ended", c_bool)]


#: SESSIONSTORE_STATS_OPERATIONS and SESSIONSTORE_STATS_BUCKETS.
STATS_OPERATIONS = 8
STATS_BUCKETS = 13
#: The operations of Stats' arrays, in order.
STATS_OPERATION_NAMES = (
    "load",
    "create",
    "compare_and_set",
    "compare_and_delete",
    "set",
    "delete",
    "touch",
    "purge",
)


class Stats(Structure):
    """sessionstore_stats."""

    _fields_ = [
        (name, c_uint64)
        for name in (
            "loads_hit",
            "loads_miss",
            "loads_no_cookie",
            "loads_invalid_cookie",
            "loads_expired",
            "loads_undecodable",
            "saves_unchanged",
            "saves_touched",
            "saves_created",
            "saves_updated",
            "saves_regenerated",
            "saves_ended",
            "saves_gave_up",
            "conflict_retries",
            "bytes_read",
            "bytes_written",
        )
    ] + [
        ("store_calls", c_uint64 * STATS_OPERATIONS),
        ("store_errors", c_uint64 * STATS_OPERATIONS),
        ("store_latency_nanos", c_uint64 * STATS_OPERATIONS),
        ("store_latency_buckets", (c_uint64 * STATS_BUCKETS) * STATS_OPERATIONS),
    ]


#: sessionstore_modify_fn and sessionstore_release_fn.
MODIFY_FN = CFUNCTYPE(c_int, c_void_p, POINTER(c_uint8), c_size_t, c_void_p)
RELEASE_FN = CFUNCTYPE(None, c_void_p)

_RESULT = c_int
#: SESSIONSTORE_NOT_FOUND.
NOT_FOUND = 3
_HANDLE_OUT = POINTER(c_void_p)
_FLAG_OUT = POINTER(c_bool)

# name: (return type, argument types), as in include/sessionstore.h.
_SIGNATURES = {
    "sessionstore_version": (c_char_p, []),
    "sessionstore_last_error": (c_char_p, []),
    "sessionstore_result_name": (c_char_p, [c_int]),
    "sessionstore_string_free": (None, [c_void_p]),
    "sessionstore_bytes_free": (None, [c_void_p, c_size_t]),
    "sessionstore_options_new": (_RESULT, [_HANDLE_OUT]),
    "sessionstore_options_free": (None, [c_void_p]),
    "sessionstore_options_add_secret": (_RESULT, [c_void_p, c_char_p]),
    "sessionstore_options_set_cookie_mode": (_RESULT, [c_void_p, c_int]),
    "sessionstore_options_set_cookie_name": (_RESULT, [c_void_p, c_char_p]),
    "sessionstore_options_set_cookie_domain": (_RESULT, [c_void_p, c_char_p]),
    "sessionstore_options_set_cookie_path": (_RESULT, [c_void_p, c_char_p]),
    "sessionstore_options_set_cookie_http_only": (_RESULT, [c_void_p, c_bool]),
    "sessionstore_options_set_cookie_secure": (_RESULT, [c_void_p, c_bool]),
    "sessionstore_options_set_cookie_same_site": (_RESULT, [c_void_p, c_int]),
    "sessionstore_options_set_cookie_partitioned": (_RESULT, [c_void_p, c_bool]),
    "sessionstore_options_set_prefix": (_RESULT, [c_void_p, c_char_p]),
    "sessionstore_options_set_format": (_RESULT, [c_void_p, c_int]),
    "sessionstore_options_set_permanent": (_RESULT, [c_void_p, c_bool]),
    "sessionstore_options_set_idle_lifetime": (_RESULT, [c_void_p, c_uint64]),
    "sessionstore_options_set_absolute_lifetime": (_RESULT, [c_void_p, c_uint64]),
    "sessionstore_options_set_refresh_each_request": (_RESULT, [c_void_p, c_bool]),
    "sessionstore_options_set_touch_interval": (_RESULT, [c_void_p, c_uint64]),
    "sessionstore_options_set_concurrency": (_RESULT, [c_void_p, c_int]),
    "sessionstore_options_set_max_attempts": (_RESULT, [c_void_p, c_uint32]),
    "sessionstore_options_set_cleanup_every": (_RESULT, [c_void_p, c_uint64]),
    "sessionstore_options_set_max_size": (_RESULT, [c_void_p, c_size_t]),
    "sessionstore_options_add_data_key": (_RESULT, [c_void_p, c_char_p]),
    "sessionstore_options_set_decrypt_only": (_RESULT, [c_void_p, c_bool]),
    "sessionstore_options_set_compress_threshold": (_RESULT, [c_void_p, c_size_t]),
    "sessionstore_options_set_max_sessions_per_owner": (_RESULT, [c_void_p, c_size_t]),
    "sessionstore_manager_open": (_RESULT, [c_char_p, c_void_p, _HANDLE_OUT]),
    "sessionstore_manager_open_flask": (
        _RESULT,
        [POINTER(c_char_p), POINTER(c_char_p), c_size_t, _HANDLE_OUT],
    ),
    "sessionstore_manager_free": (None, [c_void_p]),
    "sessionstore_manager_load": (_RESULT, [c_void_p, c_char_p, _HANDLE_OUT]),
    "sessionstore_manager_purge_expired": (_RESULT, [c_void_p, POINTER(c_uint64)]),
    "sessionstore_manager_stats": (_RESULT, [c_void_p, POINTER(Stats)]),
    "sessionstore_manager_metrics_text": (_RESULT, [c_void_p, _HANDLE_OUT]),
    "sessionstore_session_save": (_RESULT, [c_void_p, POINTER(Saved)]),
    "sessionstore_session_free": (None, [c_void_p]),
    "sessionstore_session_id": (_RESULT, [c_void_p, _HANDLE_OUT]),
    "sessionstore_session_is_new": (_RESULT, [c_void_p, _FLAG_OUT]),
    "sessionstore_session_is_modified": (_RESULT, [c_void_p, _FLAG_OUT]),
    "sessionstore_session_is_empty": (_RESULT, [c_void_p, _FLAG_OUT]),
    "sessionstore_session_is_permanent": (_RESULT, [c_void_p, _FLAG_OUT]),
    "sessionstore_session_set_permanent": (_RESULT, [c_void_p, c_bool]),
    "sessionstore_session_regenerate": (_RESULT, [c_void_p]),
    "sessionstore_session_destroy": (_RESULT, [c_void_p]),
    "sessionstore_session_clear": (_RESULT, [c_void_p]),
    "sessionstore_session_contains": (_RESULT, [c_void_p, c_char_p, _FLAG_OUT]),
    "sessionstore_session_remove": (_RESULT, [c_void_p, c_char_p, _FLAG_OUT]),
    "sessionstore_session_keys": (_RESULT, [c_void_p, _HANDLE_OUT]),
    "sessionstore_keys_count": (c_size_t, [c_void_p]),
    "sessionstore_keys_get": (c_char_p, [c_void_p, c_size_t]),
    "sessionstore_keys_free": (None, [c_void_p]),
    "sessionstore_session_get_msgpack": (
        _RESULT,
        [c_void_p, c_char_p, _HANDLE_OUT, POINTER(c_size_t)],
    ),
    "sessionstore_session_set_msgpack": (_RESULT, [c_void_p, c_char_p, c_char_p, c_size_t]),
    "sessionstore_session_incr": (_RESULT, [c_void_p, c_char_p, c_int64, POINTER(c_int64)]),
    "sessionstore_session_modify": (
        _RESULT,
        [c_void_p, c_char_p, MODIFY_FN, c_void_p, RELEASE_FN],
    ),
    "sessionstore_modify_out_set": (_RESULT, [c_void_p, c_char_p, c_size_t]),
    "sessionstore_session_set_owner": (_RESULT, [c_void_p, c_char_p]),
    "sessionstore_session_owner": (_RESULT, [c_void_p, _HANDLE_OUT]),
    "sessionstore_session_id_hint": (_RESULT, [c_void_p, _HANDLE_OUT]),
    "sessionstore_manager_sessions_of": (_RESULT, [c_void_p, c_char_p, _HANDLE_OUT]),
    "sessionstore_manager_end_sessions_of": (
        _RESULT,
        [c_void_p, c_char_p, c_char_p, POINTER(c_uint64)],
    ),
}


def _load():
    library = ctypes.CDLL(str(_library_path()))
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(library, name)
        function.restype = restype
        function.argtypes = argtypes
    return library


lib = _load()

VERSION = lib.sessionstore_version().decode()

#: The exception a modify callback raised on this thread, re-raised by the call that ran it.
callback_failure = threading.local()


def check(result):
    """Raises the exception for a failed call's result; the message is this thread's."""
    if result == 0:
        return
    failure = getattr(callback_failure, "error", None)
    callback_failure.error = None
    if failure is not None:
        raise failure
    name = lib.sessionstore_result_name(result).decode()
    message = lib.sessionstore_last_error().decode("utf-8", "replace")
    raise error_for(result, name, message)


def encode_text(text, what):
    """A str argument as the NUL-terminated UTF-8 the C ABI takes."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, not {type(text).__name__}")
    if "\0" in text:
        raise ValueError(f"{what} {text!r} contains a NUL character")
    return text.encode()


def take_string(pointer):
    """Copies and frees a string the library handed out (NULL gives None)."""
    if not pointer:
        return None
    try:
        return ctypes.string_at(pointer).decode()
    finally:
        lib.sessionstore_string_free(pointer)


def take_bytes(pointer, length):
    """Copies and frees a byte buffer the library handed out."""
    if not pointer:
        return b""
    try:
        return ctypes.string_at(pointer, length)
    finally:
        lib.sessionstore_bytes_free(pointer, length)
