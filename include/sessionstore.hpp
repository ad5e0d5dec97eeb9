/**
 * @file sessionstore.hpp
 * @brief sessionstore for C++17: RAII types and exceptions over the C API of sessionstore.h.
 *
 * Header-only: it calls the C functions and adds no behaviour of its own, so everything the
 * C header says about stores, cookies, concurrency and threads holds here too.
 *
 * @code
 * sessionstore::Options options;
 * options.add_secret("change me");
 * auto manager = sessionstore::Manager::open("sqlite:sessions.db", options);
 *
 * // For every request, on any thread:
 * sessionstore::Session session = manager.load(cookie_header);
 * std::int64_t visits = session.incr("visits");   // replayed on a conflicting save
 * sessionstore::Saved saved = session.save();     // the session is spent afterwards
 * if (saved.set_cookie) response.add_header("Set-Cookie", *saved.set_cookie);
 * if (saved.vary_cookie) response.add_header("Vary", "Cookie");
 * @endcode
 *
 * Errors. Every failure throws sessionstore::Error, which carries the C result code and the
 * message of sessionstore_last_error(). A missing key is not an error: get() returns an empty
 * std::optional.
 *
 * Ownership. Options, Manager and Session own their C handle and release it when destroyed;
 * they move but do not copy. A moved-from object (and a Session after save()) holds no handle:
 * using it throws Error with code SESSIONSTORE_NULL_ARGUMENT. A Session destroyed without
 * save() is released unsaved: nothing is written.
 *
 * Threads. As in C: one Manager per application, shared by every thread (its methods are
 * const and thread-safe); a Session belongs to one request and is used by one thread at a
 * time.
 *
 * Strings. Keys and C-string settings may not hold a NUL byte (Error with
 * SESSIONSTORE_INVALID_ARGUMENT); string values may: they are then passed as MessagePack.
 */
#ifndef SESSIONSTORE_HPP
#define SESSIONSTORE_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "sessionstore.h"

/** The C++ API of sessionstore. */
namespace sessionstore {

/** A byte string (MessagePack bin), for get<Bytes>() and set(). */
using Bytes = std::vector<std::uint8_t>;

/**
 * One MessagePack value, encoded: any type (arrays, maps, timestamps...), for get<Msgpack>(),
 * set() and modify<Msgpack>().
 */
struct Msgpack {
    /** The encoded bytes: exactly one MessagePack value. */
    std::vector<std::uint8_t> bytes;
};

/** The type of a stored value, from Session::type(). */
enum class ValueType {
    Nil = SESSIONSTORE_TYPE_NIL,             ///< nil (Python's None)
    Bool = SESSIONSTORE_TYPE_BOOL,           ///< a boolean
    Int = SESSIONSTORE_TYPE_INT,             ///< an integer
    Float = SESSIONSTORE_TYPE_FLOAT,         ///< a floating-point number
    String = SESSIONSTORE_TYPE_STRING,       ///< a string
    Bytes = SESSIONSTORE_TYPE_BYTES,         ///< a byte string
    Array = SESSIONSTORE_TYPE_ARRAY,         ///< an array
    Map = SESSIONSTORE_TYPE_MAP,             ///< a map
    Timestamp = SESSIONSTORE_TYPE_TIMESTAMP, ///< a MessagePack timestamp
    Ext = SESSIONSTORE_TYPE_EXT,             ///< another MessagePack extension type
};

/** How the session id is carried in the cookie (Options::set_cookie_mode()). */
enum class CookieMode {
    Plain = SESSIONSTORE_COOKIE_PLAIN,   ///< the bare id (Flask-Session's default)
    Signed = SESSIONSTORE_COOKIE_SIGNED, ///< `id.signature`, HMAC-SHA256 (default with a secret)
    Flask = SESSIONSTORE_COOKIE_FLASK,   ///< itsdangerous' format (SESSION_USE_SIGNER)
};

/** The cookie's SameSite attribute (Options::set_cookie_same_site()). */
enum class SameSite {
    Lax = SESSIONSTORE_SAME_SITE_LAX,       ///< `SameSite=Lax` (the default)
    Strict = SESSIONSTORE_SAME_SITE_STRICT, ///< `SameSite=Strict`
    None = SESSIONSTORE_SAME_SITE_NONE,     ///< `SameSite=None` (and Secure)
    Omit = SESSIONSTORE_SAME_SITE_OMIT,     ///< no SameSite attribute
};

/** How saves treat concurrent requests (Options::set_concurrency()). */
enum class Concurrency {
    NoLostUpdates = SESSIONSTORE_NO_LOST_UPDATES,   ///< compare-and-set, replay, retry
    LastWriterWins = SESSIONSTORE_LAST_WRITER_WINS, ///< plain overwrite (Flask-Session's)
};

/** The format written to the store (Options::set_format()); reads accept both. */
enum class Format {
    Msgpack = SESSIONSTORE_FORMAT_MSGPACK, ///< MessagePack, as Flask-Session 0.8 (the default)
    Json = SESSIONSTORE_FORMAT_JSON,       ///< a JSON object (Flask-Session's `json` format)
};

/**
 * A failure of the library: the C result code and the message sessionstore_last_error()
 * gave (what()).
 */
class Error : public std::runtime_error {
public:
    /** An error with this code and message. */
    Error(sessionstore_result code, const std::string &message)
        : std::runtime_error(message), code_(code) {}

    /** The C result code, never SESSIONSTORE_OK. */
    sessionstore_result code() const noexcept { return code_; }

    /** The code's name, e.g. "SESSIONSTORE_STORE". */
    const char *code_name() const noexcept { return sessionstore_result_name(code_); }

private:
    sessionstore_result code_;
};

/** What a response must carry, from Session::save(). */
struct Saved {
    /** The value of a `Set-Cookie:` header to send; empty when the cookie need not change. */
    std::optional<std::string> set_cookie;
    /** Whether to send `Vary: Cookie`. */
    bool vary_cookie = false;
    /** Whether the session ended (destroyed, emptied, or logged out by another request). */
    bool ended = false;
};

/** The library's version, e.g. "0.1.0" (SESSIONSTORE_VERSION is the header's). */
inline std::string version() { return sessionstore_version(); }

/** Internals of the wrapper; not part of the API. */
namespace detail {

/** Throws Error for a failed call, with this thread's last-error message. */
inline void check(sessionstore_result result) {
    if (result != SESSIONSTORE_OK)
        throw Error(result, sessionstore_last_error());
}

/** A NUL-terminated copy of `text`; Error if it holds a NUL byte, which C cannot pass. */
inline std::string c_string(std::string_view text, const char *what) {
    if (text.find('\0') != std::string_view::npos)
        throw Error(SESSIONSTORE_INVALID_ARGUMENT, std::string(what) + " holds a NUL byte");
    return std::string(text);
}

/** Owns a string the library handed out. */
struct StringDeleter {
    void operator()(char *string) const noexcept { sessionstore_string_free(string); }
};
using OwnedString = std::unique_ptr<char, StringDeleter>;

/** Owns a byte buffer the library handed out, with its length. */
class OwnedBytes {
public:
    OwnedBytes() = default;
    OwnedBytes(const OwnedBytes &) = delete;
    OwnedBytes &operator=(const OwnedBytes &) = delete;
    ~OwnedBytes() { sessionstore_bytes_free(data, len); }

    /** A copy of the bytes. */
    std::vector<std::uint8_t> copy() const { return std::vector<std::uint8_t>(data, data + len); }

    std::uint8_t *data = nullptr;
    std::size_t len = 0;
};

/** Owns a key snapshot. */
struct KeysDeleter {
    void operator()(sessionstore_keys *keys) const noexcept { sessionstore_keys_free(keys); }
};

/** Big-endian bytes of `value`, `width` of them, appended to `out`. */
inline void put_big_endian(std::vector<std::uint8_t> &out, std::uint64_t value, int width) {
    for (int shift = 8 * (width - 1); shift >= 0; shift -= 8)
        out.push_back(static_cast<std::uint8_t>(value >> shift));
}

/** The big-endian unsigned integer in `width` bytes at `data`. */
inline std::uint64_t get_big_endian(const std::uint8_t *data, std::size_t width) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < width; i++)
        value = (value << 8) | data[i];
    return value;
}

/** A MessagePack str holding `text` (which may hold NUL bytes). */
inline std::vector<std::uint8_t> pack_string(std::string_view text) {
    std::vector<std::uint8_t> out;
    out.reserve(text.size() + 5);
    std::uint64_t len = text.size();
    if (len < 32) {
        out.push_back(static_cast<std::uint8_t>(0xa0 | len));
    } else if (len <= 0xff) {
        out.push_back(0xd9);
        put_big_endian(out, len, 1);
    } else if (len <= 0xffff) {
        out.push_back(0xda);
        put_big_endian(out, len, 2);
    } else {
        out.push_back(0xdb);
        put_big_endian(out, len, 4);
    }
    out.insert(out.end(), text.begin(), text.end());
    return out;
}

/** The text of a MessagePack str value; nullopt if `data` holds anything else. */
inline std::optional<std::string> unpack_string(const std::uint8_t *data, std::size_t len) {
    if (len == 0)
        return std::nullopt;
    std::size_t head = 0;
    std::uint8_t marker = data[0];
    if ((marker & 0xe0) == 0xa0)
        head = 1;
    else if (marker == 0xd9)
        head = 2;
    else if (marker == 0xda)
        head = 3;
    else if (marker == 0xdb)
        head = 5;
    if (head == 0 || len < head)
        return std::nullopt;
    std::uint64_t size = head == 1 ? (marker & 0x1f) : get_big_endian(data + 1, head - 1);
    if (size != len - head)
        return std::nullopt;
    return std::string(reinterpret_cast<const char *>(data) + head, len - head);
}

/** The MessagePack int64 encoding of `value`. */
inline std::vector<std::uint8_t> pack_int(std::int64_t value) {
    std::vector<std::uint8_t> out{0xd3};
    put_big_endian(out, static_cast<std::uint64_t>(value), 8);
    return out;
}

/** The integer a MessagePack int encodes, when it fits in int64_t; nullopt otherwise. */
inline std::optional<std::int64_t> unpack_int(const std::uint8_t *data, std::size_t len) {
    if (len == 0)
        return std::nullopt;
    std::uint8_t marker = data[0];
    if (len == 1 && marker <= 0x7f)
        return marker;
    if (len == 1 && marker >= 0xe0)
        return static_cast<std::int8_t>(marker);
    std::size_t width = 0;
    bool is_signed = false;
    switch (marker) {
    case 0xcc: width = 1; break;
    case 0xcd: width = 2; break;
    case 0xce: width = 4; break;
    case 0xcf: width = 8; break;
    case 0xd0: width = 1; is_signed = true; break;
    case 0xd1: width = 2; is_signed = true; break;
    case 0xd2: width = 4; is_signed = true; break;
    case 0xd3: width = 8; is_signed = true; break;
    default: return std::nullopt;
    }
    if (len != 1 + width)
        return std::nullopt;
    std::uint64_t raw = get_big_endian(data + 1, width);
    if (!is_signed) {
        if (raw > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            return std::nullopt;
        return static_cast<std::int64_t>(raw);
    }
    // Sign-extend from `width` bytes.
    std::uint64_t sign_bit = std::uint64_t{1} << (8 * width - 1);
    if (width < 8 && (raw & sign_bit))
        raw |= ~((sign_bit << 1) - 1);
    return static_cast<std::int64_t>(raw);
}

/**
 * The exception a modify function threw on this thread during the C call running it: kept
 * here by the callback (an exception must not cross the C library) and rethrown once the C
 * call has returned.
 */
inline std::exception_ptr &pending_exception() {
    thread_local std::exception_ptr pending;
    return pending;
}

/** Rethrows a pending modify exception, else throws Error for a failed result. */
inline void check_after_callbacks(sessionstore_result result) {
    std::exception_ptr pending = std::exchange(pending_exception(), nullptr);
    if (pending)
        std::rethrow_exception(pending);
    check(result);
}

/** A modify function with its value codec: T is std::int64_t or Msgpack. */
template <typename T, typename Fn> struct ModifyCall {
    Fn fn;

    /** The sessionstore_modify_fn: decode, call fn, encode; never lets an exception out. */
    static int run(void *user_data, const std::uint8_t *current, std::size_t current_len,
                   sessionstore_modify_out *out) noexcept {
        try {
            auto &self = *static_cast<ModifyCall *>(user_data);
            std::optional<T> value;
            if (current) {
                if constexpr (std::is_same_v<T, Msgpack>) {
                    value = Msgpack{std::vector<std::uint8_t>(current, current + current_len)};
                } else {
                    value = unpack_int(current, current_len);
                    if (!value)
                        return 1; // not an int64: the C call reports a type mismatch
                }
            }
            std::vector<std::uint8_t> encoded;
            if constexpr (std::is_same_v<T, Msgpack>)
                encoded = Msgpack(self.fn(std::move(value))).bytes;
            else
                encoded = pack_int(self.fn(std::move(value)));
            check(sessionstore_modify_out_set(out, encoded.data(), encoded.size()));
            return 0;
        } catch (...) {
            if (!pending_exception())
                pending_exception() = std::current_exception();
            return 2;
        }
    }

    /** The sessionstore_release_fn. */
    static void release(void *user_data) noexcept { delete static_cast<ModifyCall *>(user_data); }
};

template <typename> inline constexpr bool unsupported_type = false;

} // namespace detail

/**
 * Settings for Manager::open(), on top of the store URL's: every setter overrides the URL's
 * value or the default, and returns the options, for chaining.
 */
class Options {
public:
    /** Every setting at its default. */
    Options() { detail::check(sessionstore_options_new(&handle_)); }
    Options(Options &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Options &operator=(Options &&other) noexcept {
        if (this != &other) {
            sessionstore_options_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    Options(const Options &) = delete;
    Options &operator=(const Options &) = delete;
    ~Options() { sessionstore_options_free(handle_); }

    /**
     * Adds a secret for signing cookies: the first signs, all verify (rotation: add the new
     * one first). Makes the cookie mode CookieMode::Signed unless a mode is set.
     */
    Options &add_secret(std::string_view secret) {
        detail::check(sessionstore_options_add_secret(
            handle_, detail::c_string(secret, "the secret").c_str()));
        return *this;
    }
    /** How the id is carried in the cookie. */
    Options &set_cookie_mode(CookieMode mode) {
        detail::check(sessionstore_options_set_cookie_mode(handle_, static_cast<int>(mode)));
        return *this;
    }
    /** The cookie name (default "session"). */
    Options &set_cookie_name(std::string_view name) {
        detail::check(sessionstore_options_set_cookie_name(
            handle_, detail::c_string(name, "the cookie name").c_str()));
        return *this;
    }
    /** The cookie's Domain attribute (default none: the exact host). */
    Options &set_cookie_domain(std::string_view domain) {
        detail::check(sessionstore_options_set_cookie_domain(
            handle_, detail::c_string(domain, "the cookie domain").c_str()));
        return *this;
    }
    /** The cookie's Path attribute (default "/"). */
    Options &set_cookie_path(std::string_view path) {
        detail::check(sessionstore_options_set_cookie_path(
            handle_, detail::c_string(path, "the cookie path").c_str()));
        return *this;
    }
    /** The cookie's HttpOnly attribute (default on). */
    Options &set_cookie_http_only(bool on) {
        detail::check(sessionstore_options_set_cookie_http_only(handle_, on));
        return *this;
    }
    /** The cookie's Secure attribute (default off). */
    Options &set_cookie_secure(bool on) {
        detail::check(sessionstore_options_set_cookie_secure(handle_, on));
        return *this;
    }
    /** The cookie's SameSite attribute (default Lax). */
    Options &set_cookie_same_site(SameSite same_site) {
        detail::check(
            sessionstore_options_set_cookie_same_site(handle_, static_cast<int>(same_site)));
        return *this;
    }
    /** The cookie's Partitioned attribute (default off). */
    Options &set_cookie_partitioned(bool on) {
        detail::check(sessionstore_options_set_cookie_partitioned(handle_, on));
        return *this;
    }
    /** The prefix of store keys (default "session:"). */
    Options &set_prefix(std::string_view prefix) {
        detail::check(sessionstore_options_set_prefix(
            handle_, detail::c_string(prefix, "the prefix").c_str()));
        return *this;
    }
    /** The format written to the store (default MessagePack). */
    Options &set_format(Format format) {
        detail::check(sessionstore_options_set_format(handle_, static_cast<int>(format)));
        return *this;
    }
    /** Whether new sessions are permanent (cookie with Expires and Max-Age; default on). */
    Options &set_permanent(bool on) {
        detail::check(sessionstore_options_set_permanent(handle_, on));
        return *this;
    }
    /** The idle lifetime, renewed by writes and touches (default 31 days). */
    Options &set_idle_lifetime(std::chrono::seconds lifetime) {
        detail::check(sessionstore_options_set_idle_lifetime(handle_, seconds(lifetime)));
        return *this;
    }
    /** An absolute lifetime counted from the session's creation (default none). */
    Options &set_absolute_lifetime(std::chrono::seconds lifetime) {
        detail::check(sessionstore_options_set_absolute_lifetime(handle_, seconds(lifetime)));
        return *this;
    }
    /** Whether requests that change nothing renew the expiry (default on). */
    Options &set_refresh_each_request(bool on) {
        detail::check(sessionstore_options_set_refresh_each_request(handle_, on));
        return *this;
    }
    /** The minimum time between two renewals of an unmodified session (default 60 s). */
    Options &set_touch_interval(std::chrono::seconds interval) {
        detail::check(sessionstore_options_set_touch_interval(handle_, seconds(interval)));
        return *this;
    }
    /** How saves treat concurrent requests (default Concurrency::NoLostUpdates). */
    Options &set_concurrency(Concurrency mode) {
        detail::check(sessionstore_options_set_concurrency(handle_, static_cast<int>(mode)));
        return *this;
    }
    /** Save attempts before SESSIONSTORE_CONTENTION (default 1000). */
    Options &set_max_attempts(std::uint32_t attempts) {
        detail::check(sessionstore_options_set_max_attempts(handle_, attempts));
        return *this;
    }
    /** Purge expired records every `loads` loads (default never). */
    Options &set_cleanup_every(std::uint64_t loads) {
        detail::check(sessionstore_options_set_cleanup_every(handle_, loads));
        return *this;
    }
    /** The largest encoded session a save accepts, in bytes (default 4 MiB). */
    Options &set_max_size(std::size_t bytes) {
        detail::check(sessionstore_options_set_max_size(handle_, bytes));
        return *this;
    }
    /** Caps the sessions of one owner: binding one more ends the oldest. */
    Options &set_max_sessions_per_owner(std::size_t sessions) {
        detail::check(sessionstore_options_set_max_sessions_per_owner(handle_, sessions));
        return *this;
    }
    /** Adds a data key for encryption at rest (32 bytes in base64): the first key added
     *  encrypts, all of them decrypt (rotation). */
    Options &add_data_key(std::string_view key_base64) {
        detail::check(sessionstore_options_add_data_key(
            handle_, detail::c_string(key_base64, "the data key").c_str()));
        return *this;
    }
    /** Decrypt-only: the data keys decrypt, saves are written plain (turning encryption off
     *  without losing sessions). */
    Options &set_decrypt_only(bool on) {
        detail::check(sessionstore_options_set_decrypt_only(handle_, on));
        return *this;
    }
    /** Compresses encoded sessions of at least `bytes` bytes when that makes them smaller. */
    Options &set_compress_threshold(std::size_t bytes) {
        detail::check(sessionstore_options_set_compress_threshold(handle_, bytes));
        return *this;
    }

    /** The C handle (still owned by these options), for the C API. */
    const sessionstore_options *handle() const noexcept { return handle_; }

private:
    static std::uint64_t seconds(std::chrono::seconds duration) {
        if (duration.count() < 0)
            throw Error(SESSIONSTORE_INVALID_ARGUMENT, "a negative duration");
        return static_cast<std::uint64_t>(duration.count());
    }

    sessionstore_options *handle_ = nullptr;
};

/**
 * One request's session, from Manager::load(). Read and change it, then save() it once;
 * destroyed unsaved, it writes nothing.
 */
class Session {
public:
    /** Takes ownership of a C session handle (from sessionstore_manager_load()). */
    explicit Session(sessionstore_session *handle) noexcept : handle_(handle) {}
    Session(Session &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Session &operator=(Session &&other) noexcept {
        if (this != &other) {
            sessionstore_session_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;
    /** Releases the session unsaved, if save() was not called. */
    ~Session() { sessionstore_session_free(handle_); }

    /** The session's id (a credential: do not log it). */
    std::string id() const {
        char *out = nullptr;
        detail::check(sessionstore_session_id(handle_, &out));
        return detail::OwnedString(out).get();
    }
    /** Whether the session was not found in the store (it gets a new id when written). */
    bool is_new() const { return flag(sessionstore_session_is_new); }
    /** Whether this request changed anything (data, permanence, id). */
    bool is_modified() const { return flag(sessionstore_session_is_modified); }
    /** Whether the session holds no data besides the reserved keys. */
    bool is_empty() const { return flag(sessionstore_session_is_empty); }
    /** Whether the session is permanent (its cookie has Expires and Max-Age). */
    bool permanent() const { return flag(sessionstore_session_is_permanent); }
    /** Makes the session permanent, or a browser-session one. */
    void set_permanent(bool permanent) {
        detail::check(sessionstore_session_set_permanent(handle_, permanent));
    }
    /** A new id on save, keeping the data (call it on login). */
    void regenerate() { detail::check(sessionstore_session_regenerate(handle_)); }
    /** Ends the session: on save its record is deleted and the cookie expired (logout). */
    void destroy() { detail::check(sessionstore_session_destroy(handle_)); }
    /** Removes every key; unless something is written afterwards, the save ends the session. */
    void clear() { detail::check(sessionstore_session_clear(handle_)); }

    /**
     * Binds the session to `owner` (the application's user id, 1 to 256 bytes) from its save
     * on; kept across regenerate(), ended by destroy(), clear() and expiry.
     */
    void set_owner(std::string_view owner) {
        detail::check(sessionstore_session_set_owner(
            handle_, detail::c_string(owner, "the owner").c_str()));
    }
    /** The owner the session is bound to, if any. */
    std::optional<std::string> owner() const {
        char *out = nullptr;
        detail::check(sessionstore_session_owner(handle_, &out));
        if (out == nullptr) {
            return std::nullopt;
        }
        return detail::OwnedString(out).get();
    }
    /** The hint Manager::sessions_of() lists for this session (safe to show). */
    std::string id_hint() const {
        char *out = nullptr;
        detail::check(sessionstore_session_id_hint(handle_, &out));
        return detail::OwnedString(out).get();
    }

    /** Whether the session has `key`. */
    bool contains(std::string_view key) const {
        bool out = false;
        detail::check(sessionstore_session_contains(handle_, key_arg(key).c_str(), &out));
        return out;
    }
    /** Removes `key`; whether it was there. */
    bool remove(std::string_view key) {
        bool existed = false;
        detail::check(sessionstore_session_remove(handle_, key_arg(key).c_str(), &existed));
        return existed;
    }
    /** The keys, reserved ones included, sorted. */
    std::vector<std::string> keys() const {
        sessionstore_keys *raw = nullptr;
        detail::check(sessionstore_session_keys(handle_, &raw));
        std::unique_ptr<sessionstore_keys, detail::KeysDeleter> keys(raw);
        std::vector<std::string> out;
        std::size_t count = sessionstore_keys_count(keys.get());
        out.reserve(count);
        for (std::size_t i = 0; i < count; i++)
            out.emplace_back(sessionstore_keys_get(keys.get(), i));
        return out;
    }
    /** The type of the value under `key`; nullopt if there is none. */
    std::optional<ValueType> type(std::string_view key) const {
        sessionstore_value_type out = SESSIONSTORE_TYPE_NIL;
        sessionstore_result result =
            sessionstore_session_get_type(handle_, key_arg(key).c_str(), &out);
        if (result == SESSIONSTORE_NOT_FOUND)
            return std::nullopt;
        detail::check(result);
        return static_cast<ValueType>(out);
    }

    /**
     * The value under `key` as a T, or nullopt if there is none. T is bool, std::int64_t,
     * double (integers convert), std::string, Bytes, Msgpack (any value, encoded) or
     * std::nullptr_t (present when the value is nil). Error with SESSIONSTORE_TYPE_MISMATCH
     * when the value has another type.
     */
    template <typename T> std::optional<T> get(std::string_view key) const {
        std::string name = key_arg(key);
        if constexpr (std::is_same_v<T, bool>) {
            bool out = false;
            sessionstore_result result = sessionstore_session_get_bool(handle_, name.c_str(), &out);
            return read(result, out);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
            std::int64_t out = 0;
            sessionstore_result result = sessionstore_session_get_i64(handle_, name.c_str(), &out);
            return read(result, out);
        } else if constexpr (std::is_same_v<T, double>) {
            double out = 0;
            sessionstore_result result = sessionstore_session_get_f64(handle_, name.c_str(), &out);
            return read(result, out);
        } else if constexpr (std::is_same_v<T, std::string>) {
            return get_string(name);
        } else if constexpr (std::is_same_v<T, Bytes>) {
            detail::OwnedBytes out;
            sessionstore_result result =
                sessionstore_session_get_bytes(handle_, name.c_str(), &out.data, &out.len);
            return read(result, out.copy());
        } else if constexpr (std::is_same_v<T, Msgpack>) {
            detail::OwnedBytes out;
            sessionstore_result result =
                sessionstore_session_get_msgpack(handle_, name.c_str(), &out.data, &out.len);
            return read(result, Msgpack{out.copy()});
        } else if constexpr (std::is_same_v<T, std::nullptr_t>) {
            return read(sessionstore_session_get_nil(handle_, name.c_str()), nullptr);
        } else {
            static_assert(detail::unsupported_type<T>,
                          "get<T>: T is bool, std::int64_t, double, std::string, Bytes, "
                          "Msgpack or std::nullptr_t");
        }
    }

    /**
     * Stores `value` under `key`: a bool, any integer (stored as int64; larger unsigned values
     * are refused), a floating-point number, a string (std::string, std::string_view or a C
     * string; it may hold NUL bytes), Bytes, Msgpack (one encoded value of any type) or
     * nullptr (nil).
     */
    template <typename T> void set(std::string_view key, const T &value) {
        std::string name = key_arg(key);
        if constexpr (std::is_same_v<T, bool>) {
            detail::check(sessionstore_session_set_bool(handle_, name.c_str(), value));
        } else if constexpr (std::is_integral_v<T>) {
            if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
                if (value > static_cast<T>(std::numeric_limits<std::int64_t>::max()))
                    throw Error(SESSIONSTORE_INVALID_ARGUMENT,
                                "the value does not fit in an int64");
            }
            detail::check(sessionstore_session_set_i64(handle_, name.c_str(),
                                                       static_cast<std::int64_t>(value)));
        } else if constexpr (std::is_floating_point_v<T>) {
            detail::check(
                sessionstore_session_set_f64(handle_, name.c_str(), static_cast<double>(value)));
        } else if constexpr (std::is_same_v<T, std::nullptr_t>) {
            detail::check(sessionstore_session_set_nil(handle_, name.c_str()));
        } else if constexpr (std::is_same_v<T, Bytes>) {
            detail::check(
                sessionstore_session_set_bytes(handle_, name.c_str(), value.data(), value.size()));
        } else if constexpr (std::is_same_v<T, Msgpack>) {
            detail::check(sessionstore_session_set_msgpack(handle_, name.c_str(),
                                                           value.bytes.data(), value.bytes.size()));
        } else if constexpr (std::is_convertible_v<const T &, std::string_view>) {
            if constexpr (std::is_pointer_v<T>) {
                if (!value)
                    throw Error(SESSIONSTORE_NULL_ARGUMENT, "the string value is NULL");
            }
            set_string(name, value);
        } else {
            static_assert(detail::unsupported_type<T>,
                          "set: the value is a bool, an integer, a floating-point number, a "
                          "string, Bytes, Msgpack or nullptr");
        }
    }

    /**
     * Adds `delta` to the integer under `key` (missing counts as 0) and returns the sum. The
     * operation is recorded, not the sum: a conflicting save replays it, so no increment of a
     * concurrent request is lost.
     */
    std::int64_t incr(std::string_view key, std::int64_t delta = 1) {
        std::int64_t out = 0;
        detail::check(sessionstore_session_incr(handle_, key_arg(key).c_str(), delta, &out));
        return out;
    }

    /**
     * Replaces the value under `key` with `fn(current)`, a read-modify-write that a
     * conflicting save replays on the fresher value (so no concurrent update is lost).
     *
     * T is std::int64_t (`fn` takes std::optional<std::int64_t>, empty when the key is absent,
     * and returns the new std::int64_t; a value that is not an int64 is a type mismatch) or
     * Msgpack (`fn` takes std::optional<Msgpack> and returns the new Msgpack). `fn` runs once
     * here and again inside save() for each conflicting attempt, on the calling thread, so it
     * must compute the same function each time and must not use this session or its manager.
     * If `fn` throws, the exception propagates from this call (the session is unchanged) or
     * from save() (nothing is stored); it never crosses the C library.
     */
    template <typename T = std::int64_t, typename Fn> void modify(std::string_view key, Fn fn) {
        static_assert(std::is_same_v<T, std::int64_t> || std::is_same_v<T, Msgpack>,
                      "modify<T>: T is std::int64_t or Msgpack");
        using Call = detail::ModifyCall<T, Fn>;
        std::string name = key_arg(key);
        auto *call = new Call{std::move(fn)};
        // From here `call` belongs to the library, which releases it on every path.
        detail::check_after_callbacks(
            sessionstore_session_modify(handle_, name.c_str(), &Call::run, call, &Call::release));
    }

    /**
     * Writes what the request changed and returns what the response must carry. The session
     * is spent afterwards, whatever happens (a failure throws Error, or the exception of a
     * modify function replayed by a conflicting save).
     */
    Saved save() {
        sessionstore_saved out{};
        sessionstore_result result =
            sessionstore_session_save(std::exchange(handle_, nullptr), &out);
        detail::OwnedString cookie(out.set_cookie);
        detail::check_after_callbacks(result);
        Saved saved;
        if (cookie)
            saved.set_cookie = std::string(cookie.get());
        saved.vary_cookie = out.vary_cookie;
        saved.ended = out.ended;
        return saved;
    }

    /** The C handle (still owned by this session), for the C API. */
    sessionstore_session *handle() const noexcept { return handle_; }

private:
    static std::string key_arg(std::string_view key) { return detail::c_string(key, "the key"); }

    template <typename Get> bool flag(Get get) const {
        bool out = false;
        detail::check(get(handle_, &out));
        return out;
    }

    /** The value read by a getter: empty for SESSIONSTORE_NOT_FOUND, else checked. */
    template <typename T> static std::optional<T> read(sessionstore_result result, T value) {
        if (result == SESSIONSTORE_NOT_FOUND)
            return std::nullopt;
        detail::check(result);
        return value;
    }

    /** A string, through MessagePack when it holds a NUL byte (which C strings cannot). */
    std::optional<std::string> get_string(const std::string &name) const {
        char *raw = nullptr;
        std::size_t len = 0;
        sessionstore_result result =
            sessionstore_session_get_string(handle_, name.c_str(), &raw, &len);
        detail::OwnedString text(raw);
        if (result == SESSIONSTORE_OK)
            return std::string(text.get(), len);
        if (result != SESSIONSTORE_TYPE_MISMATCH)
            return read(result, std::string());
        Error mismatch(result, sessionstore_last_error());
        if (type(name) == ValueType::String) {
            detail::OwnedBytes packed;
            detail::check(
                sessionstore_session_get_msgpack(handle_, name.c_str(), &packed.data, &packed.len));
            return detail::unpack_string(packed.data, packed.len);
        }
        throw mismatch;
    }

    void set_string(const std::string &name, std::string_view value) {
        if (value.find('\0') == std::string_view::npos) {
            detail::check(
                sessionstore_session_set_string(handle_, name.c_str(), std::string(value).c_str()));
        } else {
            std::vector<std::uint8_t> packed = detail::pack_string(value);
            detail::check(sessionstore_session_set_msgpack(handle_, name.c_str(), packed.data(),
                                                           packed.size()));
        }
    }

    sessionstore_session *handle_ = nullptr;
};

/**
 * Loads and saves sessions: one per application, shared by every thread (load() and
 * purge_expired() are thread-safe). Sessions keep the store open, so the manager may be
 * destroyed while sessions are still out.
 */
class Manager {
public:
    /** Takes ownership of a C manager handle. */
    explicit Manager(sessionstore_manager *handle) noexcept : handle_(handle) {}
    Manager(Manager &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Manager &operator=(Manager &&other) noexcept {
        if (this != &other) {
            sessionstore_manager_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    Manager(const Manager &) = delete;
    Manager &operator=(const Manager &) = delete;
    ~Manager() { sessionstore_manager_free(handle_); }

    /**
     * Opens the store named by `url` (e.g. "sqlite:sessions.db", "redis://127.0.0.1:6379/0",
     * "memory://"; the README lists every backend and parameter) with the URL's settings and
     * the defaults. Error: SESSIONSTORE_CONFIG (the message names the setting) or
     * SESSIONSTORE_STORE.
     */
    static Manager open(std::string_view url) { return open_with(url, nullptr); }

    /** Opens the store named by `url` with `options` on top of the URL's settings. */
    static Manager open(std::string_view url, const Options &options) {
        return open_with(url, options.handle());
    }

    /**
     * Opens a manager from Flask-Session settings (name, value), e.g. {"SESSION_TYPE",
     * "redis"}, {"SECRET_KEY", "..."}, {"SESSION_USE_SIGNER", "True"}: values as Python
     * prints them. An unknown SESSION_* name is refused (SESSIONSTORE_CONFIG).
     */
    static Manager open_flask(const std::vector<std::pair<std::string, std::string>> &settings) {
        std::vector<std::string> names, values;
        std::vector<const char *> name_ptrs, value_ptrs;
        for (const auto &[name, value] : settings) {
            names.push_back(detail::c_string(name, "a setting's name"));
            values.push_back(detail::c_string(value, "a setting's value"));
        }
        for (std::size_t i = 0; i < names.size(); i++) {
            name_ptrs.push_back(names[i].c_str());
            value_ptrs.push_back(values[i].c_str());
        }
        sessionstore_manager *out = nullptr;
        detail::check(sessionstore_manager_open_flask(name_ptrs.data(), value_ptrs.data(),
                                                      name_ptrs.size(), &out));
        return Manager(out);
    }

    /** A fresh session, for a request without a Cookie header. */
    Session load() const { return load_with(nullptr); }

    /**
     * The session named by a request's `Cookie:` header value (join several headers with
     * "; "). A missing, forged, unknown or expired cookie gives a fresh session; only a
     * failing store throws (SESSIONSTORE_STORE), or a header that is not UTF-8
     * (SESSIONSTORE_INVALID_ARGUMENT).
     */
    Session load(std::string_view cookie_header) const {
        return load_with(detail::c_string(cookie_header, "the Cookie header").c_str());
    }
    /** Not a header: for a request without a Cookie header, call load(). */
    Session load(std::nullptr_t) const = delete;

    /** Deletes expired records (SQL and filesystem stores); how many. */
    std::uint64_t purge_expired() const {
        std::uint64_t count = 0;
        detail::check(sessionstore_manager_purge_expired(handle_, &count));
        return count;
    }

    /**
     * A snapshot of the manager's metrics (docs/DESIGN.md §10); throws SESSIONSTORE_CONFIG
     * unless the manager was opened with metrics on (`metrics=on` in the store URL).
     */
    sessionstore_stats stats() const {
        sessionstore_stats out;
        detail::check(sessionstore_manager_stats(handle_, &out));
        return out;
    }

    /** The metrics in the Prometheus text format, for a `/metrics` endpoint; as stats(). */
    std::string metrics_text() const {
        char *out = nullptr;
        detail::check(sessionstore_manager_metrics_text(handle_, &out));
        return detail::OwnedString(out).get();
    }

    /**
     * The sessions bound to `owner` as a JSON array, oldest binding first:
     * [{"id_hint":"Ab3dE5gH","bound_at":1767225600,"expires_at":1769904000}] (Unix seconds);
     * never ids or cookies.
     */
    std::string sessions_of(std::string_view owner) const {
        char *out = nullptr;
        detail::check(sessionstore_manager_sessions_of(
            handle_, detail::c_string(owner, "the owner").c_str(), &out));
        return detail::OwnedString(out).get();
    }

    /** Ends every session of `owner` but the one with id `except_id` (empty: all); how many. */
    std::uint64_t end_sessions_of(std::string_view owner, std::string_view except_id = {}) const {
        std::uint64_t count = 0;
        std::string except = detail::c_string(except_id, "the id");
        detail::check(sessionstore_manager_end_sessions_of(
            handle_, detail::c_string(owner, "the owner").c_str(),
            except.empty() ? nullptr : except.c_str(), &count));
        return count;
    }

    /** The C handle (still owned by this manager), for the C API. */
    sessionstore_manager *handle() const noexcept { return handle_; }

private:
    static Manager open_with(std::string_view url, const sessionstore_options *options) {
        sessionstore_manager *out = nullptr;
        detail::check(sessionstore_manager_open(detail::c_string(url, "the store URL").c_str(),
                                                options, &out));
        return Manager(out);
    }

    Session load_with(const char *cookie_header) const {
        sessionstore_session *out = nullptr;
        detail::check(sessionstore_manager_load(handle_, cookie_header, &out));
        return Session(out);
    }

    sessionstore_manager *handle_ = nullptr;
};

} // namespace sessionstore

#endif // SESSIONSTORE_HPP
