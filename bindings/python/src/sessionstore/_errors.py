"""The exceptions: one per result code of the C ABI, all under sessionstore.Error."""


class Error(Exception):
    """A failed call into libsessionstore.

    ``result`` is the C ABI's result name (e.g. ``"SESSIONSTORE_STORE"``), ``code`` its
    number and ``message`` the library's description; ``str()`` gives both.
    """

    def __init__(self, message, result="", code=None):
        super().__init__(message)
        self.message = message
        self.result = result
        self.code = code

    def __str__(self):
        return f"{self.result}: {self.message}" if self.result else self.message


class InvalidArgumentError(Error, ValueError):
    """An argument the library refused (SESSIONSTORE_INVALID_ARGUMENT, ..._NULL_ARGUMENT)."""


class NotFoundError(Error, KeyError):
    """The session has no such key (SESSIONSTORE_NOT_FOUND)."""


class TypeMismatchError(Error, TypeError):
    """A stored value of another type than the operation needs, such as incr on a string,
    or a modify callback that failed on a replay (SESSIONSTORE_TYPE_MISMATCH)."""


class ConfigError(Error):
    """A missing or invalid setting; the message names it (SESSIONSTORE_CONFIG)."""


class StoreError(Error):
    """The store failed or could not be reached; the message names the backend and the
    cause (SESSIONSTORE_STORE)."""


class TooLargeError(Error):
    """The session breaks a configured limit (encoded size, key length, number of keys);
    nothing was written (SESSIONSTORE_TOO_LARGE)."""


class ContentionError(Error):
    """A save kept conflicting with concurrent requests and gave up
    (SESSIONSTORE_CONTENTION)."""


class CodecError(Error):
    """Session data that cannot be encoded or decoded (SESSIONSTORE_CODEC)."""


class InternalError(Error):
    """A bug inside the library, caught at the C boundary (SESSIONSTORE_PANIC)."""


class ClosedError(Error, ValueError):
    """The session or manager was already saved or closed: its handle is gone."""


_BY_CODE = {
    1: InvalidArgumentError,
    2: InvalidArgumentError,
    3: NotFoundError,
    4: TypeMismatchError,
    5: ConfigError,
    6: StoreError,
    7: TooLargeError,
    8: ContentionError,
    9: CodecError,
    10: InternalError,
}


def error_for(code, name, message):
    """The exception for a result code."""
    return _BY_CODE.get(code, Error)(message, name, code)
