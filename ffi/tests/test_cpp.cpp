// Every function of the C++ header (include/sessionstore.hpp): the request lifecycle, every
// value type, every option, the Flask settings, errors as exceptions, moves, modify with a
// function that throws (first run and replay), and sessions released unsaved. Built as C++17
// and C++20, run natively, under valgrind and with AddressSanitizer + UBSan by the test
// command.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "check.h"
#include "sessionstore.hpp"

namespace ss = sessionstore;

// Checks that `expr` throws sessionstore::Error with `expected` as its code.
#define CHECK_THROWS(expr, expected)                                                         \
    do {                                                                                     \
        bool check_thrown_ = false;                                                          \
        try {                                                                                \
            (void)(expr);                                                                    \
        } catch (const ss::Error &error) {                                                   \
            check_thrown_ = true;                                                            \
            if (error.code() != (expected))                                                  \
                fprintf(stderr, "%s:%d: %s threw %s (%s)\n", __FILE__, __LINE__, #expr,      \
                        error.code_name(), error.what());                                    \
            check_report(error.code() == (expected), __FILE__, __LINE__, #expr);             \
        }                                                                                    \
        if (!check_thrown_)                                                                  \
            check_report(0, __FILE__, __LINE__, "no exception from " #expr);                 \
    } while (0)

namespace {

std::string tmpdir;

// A manager on the memory store with one secret (signed cookies).
ss::Manager memory_manager() {
    ss::Options options;
    options.add_secret("test secret");
    return ss::Manager::open("memory://", options);
}

// "name=value; Path=/; ..." -> "name=value", as a Cookie header carries it.
std::string cookie_pair(const ss::Saved &saved) {
    CHECK(saved.set_cookie.has_value());
    std::string cookie = saved.set_cookie.value_or("");
    return cookie.substr(0, cookie.find(';'));
}

// Saves a session holding user=ann; its Cookie header.
std::string new_session_cookie(const ss::Manager &manager) {
    ss::Session session = manager.load();
    session.set("user", "ann");
    return cookie_pair(session.save());
}

bool contains_text(const std::string &text, const char *part) {
    return text.find(part) != std::string::npos;
}

void test_version_and_error() {
    CHECK(ss::version() == SESSIONSTORE_VERSION);
    ss::Error error(SESSIONSTORE_STORE, "redis: connection refused");
    CHECK(error.code() == SESSIONSTORE_STORE);
    CHECK(std::string(error.code_name()) == "SESSIONSTORE_STORE");
    CHECK(std::string(error.what()) == "redis: connection refused");
    const std::runtime_error &base = error;
    CHECK(contains_text(base.what(), "refused"));
}

void test_lifecycle() {
    ss::Manager manager = memory_manager();
    ss::Session session = manager.load();
    CHECK(session.is_new());
    CHECK(session.is_empty());
    CHECK(!session.is_modified());
    CHECK(session.id().size() == 43);
    CHECK(session.incr("visits") == 1);
    CHECK(session.incr("visits", 41) == 42);
    CHECK(session.is_modified() && !session.is_empty());
    std::string id = session.id();
    ss::Saved saved = session.save();
    CHECK(saved.vary_cookie && !saved.ended);
    std::string cookie = cookie_pair(saved);
    CHECK(contains_text(cookie, id.c_str()) && contains_text(cookie, "."));
    CHECK(session.handle() == nullptr);
    CHECK_THROWS(session.save(), SESSIONSTORE_NULL_ARGUMENT);

    // Joined Cookie headers: the session cookie is found among others.
    ss::Session again = manager.load("a=1; " + cookie + "; b=2");
    CHECK(!again.is_new());
    CHECK(again.id() == id);
    CHECK(again.get<std::int64_t>("visits") == 42);
    ss::Saved unchanged = again.save();
    CHECK(!unchanged.set_cookie && unchanged.vary_cookie && !unchanged.ended);

    // regenerate: a new id, the same data, the old id dead.
    ss::Session login = manager.load(cookie);
    login.regenerate();
    std::string renewed = cookie_pair(login.save());
    CHECK(renewed != cookie);
    CHECK(manager.load(cookie).is_new());
    ss::Session after = manager.load(renewed);
    CHECK(after.get<std::int64_t>("visits") == 42);

    // destroy: the record gone, the cookie expired.
    after.destroy();
    ss::Saved ended = after.save();
    CHECK(ended.ended);
    CHECK(ended.set_cookie && contains_text(*ended.set_cookie, "Max-Age=0"));
    CHECK(manager.load(renewed).is_new());

    // A forged cookie gives a fresh session.
    CHECK(manager.load("session=../../etc/passwd").is_new());
}

void test_owners() {
    ss::Manager manager = memory_manager();
    std::vector<std::string> cookies;
    std::string first_id;
    for (int device = 0; device < 3; device++) {
        ss::Session session = manager.load();
        CHECK(!session.owner().has_value());
        session.set_owner("42");
        CHECK(session.owner() == "42");
        if (device == 0)
            first_id = session.id();
        cookies.push_back(cookie_pair(session.save()));
    }
    std::string list = manager.sessions_of("42");
    CHECK(std::count(list.begin(), list.end(), '{') == 3);
    CHECK(!contains_text(list, first_id.c_str()));
    ss::Session here = manager.load(cookies[0]);
    CHECK(contains_text(list, here.id_hint().c_str()));
    CHECK(manager.end_sessions_of("42", first_id) == 2);
    CHECK(manager.load(cookies[1]).is_new() && manager.load(cookies[2]).is_new());
    CHECK(!manager.load(cookies[0]).is_new());
    CHECK(manager.end_sessions_of("42") == 1);
    CHECK(manager.sessions_of("42") == "[]");
    CHECK_THROWS(here.set_owner(""), SESSIONSTORE_TYPE_MISMATCH);
    CHECK_THROWS(manager.end_sessions_of("42", "not an id"), SESSIONSTORE_INVALID_ARGUMENT);

    ss::Options options;
    options.set_max_sessions_per_owner(1);
    ss::Manager capped = ss::Manager::open("memory://", options);
    std::string older, newer;
    for (std::string *cookie : {&older, &newer}) {
        ss::Session session = capped.load();
        session.set_owner("7");
        *cookie = cookie_pair(session.save());
    }
    CHECK(capped.load(older).is_new() && !capped.load(newer).is_new());
}

void test_values() {
    ss::Manager manager = memory_manager();
    ss::Session session = manager.load();
    session.set("flag", true);
    session.set("int", 7);
    session.set("big", std::int64_t{-9000000000});
    session.set("unsigned", 5u);
    session.set("float", 2.5);
    session.set("single", 1.5f);
    session.set("c string", "text");
    session.set("string", std::string("héllo"));
    session.set("view", std::string_view("a view"));
    session.set("nul", std::string("a\0b", 3));
    session.set("long nul", std::string(300, 'x') + std::string(1, '\0'));
    session.set("bytes", ss::Bytes{0, 1, 255});
    session.set("empty bytes", ss::Bytes{});
    session.set("nil", nullptr);
    session.set("array", ss::Msgpack{{0x92, 0x01, 0xa1, 'x'}}); // [1, "x"]

    std::string cookie = cookie_pair(session.save());
    ss::Session loaded = manager.load(cookie);
    CHECK(loaded.get<bool>("flag") == true);
    CHECK(loaded.get<std::int64_t>("int") == 7);
    CHECK(loaded.get<std::int64_t>("big") == -9000000000);
    CHECK(loaded.get<std::int64_t>("unsigned") == 5);
    CHECK(loaded.get<double>("float") == 2.5);
    CHECK(loaded.get<double>("single") == 1.5);
    CHECK(loaded.get<double>("int") == 7.0);
    CHECK(loaded.get<std::string>("c string") == "text");
    CHECK(loaded.get<std::string>("string") == "héllo");
    CHECK(loaded.get<std::string>("view") == "a view");
    CHECK(loaded.get<std::string>("nul") == std::string("a\0b", 3));
    CHECK(loaded.get<std::string>("long nul") == std::string(300, 'x') + std::string(1, '\0'));
    CHECK(loaded.get<ss::Bytes>("bytes") == ss::Bytes({0, 1, 255}));
    CHECK(loaded.get<ss::Bytes>("empty bytes") == ss::Bytes());
    CHECK(loaded.get<std::nullptr_t>("nil").has_value());
    auto array = loaded.get<ss::Msgpack>("array");
    CHECK(array && array->bytes == std::vector<std::uint8_t>({0x92, 0x01, 0xa1, 'x'}));
    auto packed_int = loaded.get<ss::Msgpack>("int");
    CHECK(packed_int && packed_int->bytes == std::vector<std::uint8_t>({0x07}));

    CHECK(loaded.type("flag") == ss::ValueType::Bool);
    CHECK(loaded.type("int") == ss::ValueType::Int);
    CHECK(loaded.type("float") == ss::ValueType::Float);
    CHECK(loaded.type("string") == ss::ValueType::String);
    CHECK(loaded.type("nul") == ss::ValueType::String);
    CHECK(loaded.type("bytes") == ss::ValueType::Bytes);
    CHECK(loaded.type("nil") == ss::ValueType::Nil);
    CHECK(loaded.type("array") == ss::ValueType::Array);
    CHECK(!loaded.type("absent"));

    // Absent keys: empty optionals, for every type.
    CHECK(!loaded.get<bool>("absent"));
    CHECK(!loaded.get<std::int64_t>("absent"));
    CHECK(!loaded.get<double>("absent"));
    CHECK(!loaded.get<std::string>("absent"));
    CHECK(!loaded.get<ss::Bytes>("absent"));
    CHECK(!loaded.get<ss::Msgpack>("absent"));
    CHECK(!loaded.get<std::nullptr_t>("absent"));

    // Another type: an exception naming the mismatch.
    CHECK_THROWS(loaded.get<bool>("int"), SESSIONSTORE_TYPE_MISMATCH);
    CHECK_THROWS(loaded.get<std::int64_t>("string"), SESSIONSTORE_TYPE_MISMATCH);
    CHECK_THROWS(loaded.get<double>("string"), SESSIONSTORE_TYPE_MISMATCH);
    CHECK_THROWS(loaded.get<std::string>("int"), SESSIONSTORE_TYPE_MISMATCH);
    try {
        loaded.get<std::string>("bytes");
    } catch (const ss::Error &error) {
        CHECK(contains_text(error.what(), "bytes"));
    }
    CHECK_THROWS(loaded.get<ss::Bytes>("string"), SESSIONSTORE_TYPE_MISMATCH);
    CHECK_THROWS(loaded.get<std::nullptr_t>("flag"), SESSIONSTORE_TYPE_MISMATCH);

    // Refused arguments.
    CHECK_THROWS(loaded.set("huge", std::uint64_t{1} << 63), SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_THROWS(loaded.set(std::string("k\0ey", 4), 1), SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_THROWS(loaded.set("bad", ss::Msgpack{{0x92, 0x01}}), SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_THROWS(loaded.set("bad", ss::Msgpack{{0x01, 0x02}}), SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_THROWS(loaded.set(std::string(SESSIONSTORE_MAX_KEY_LEN + 1, 'k'), 1),
                 SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_THROWS(loaded.set("not utf-8", "\xff"), SESSIONSTORE_INVALID_ARGUMENT);
    const char *null_string = nullptr;
    CHECK_THROWS(loaded.set("null", null_string), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_THROWS(loaded.get<bool>(std::string("a\0b", 3)), SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_THROWS(loaded.set("_created", 1), SESSIONSTORE_TYPE_MISMATCH);
}

void test_keys_contains_remove_clear_permanent() {
    ss::Manager manager = memory_manager();
    ss::Session session = manager.load();
    session.set("b", 1);
    session.set("a", 2);
    CHECK(session.contains("a") && !session.contains("c"));
    std::vector<std::string> keys = session.keys();
    CHECK(std::find(keys.begin(), keys.end(), "a") != keys.end());
    CHECK(std::is_sorted(keys.begin(), keys.end()));
    CHECK(session.remove("a"));
    CHECK(!session.remove("a"));
    CHECK(!session.contains("a"));

    CHECK(session.permanent());
    session.set_permanent(false);
    CHECK(!session.permanent());
    ss::Saved saved = session.save();
    CHECK(saved.set_cookie && !contains_text(*saved.set_cookie, "Max-Age"));

    ss::Session loaded = manager.load(cookie_pair(saved));
    CHECK(!loaded.permanent());
    CHECK(loaded.keys() == loaded.keys());
    loaded.clear();
    CHECK(loaded.is_empty() && !loaded.contains("b"));
    ss::Saved cleared = loaded.save();
    CHECK(cleared.ended && cleared.set_cookie && contains_text(*cleared.set_cookie, "Max-Age=0"));
}

// How often a modify function ran; the use count of its shared_ptr tells how many copies of
// the function the library still holds.
struct Tally {
    int runs = 0;
};

void test_modify() {
    ss::Manager manager = memory_manager();
    ss::Session session = manager.load();
    auto tally = std::make_shared<Tally>();
    session.modify("n", [tally](std::optional<std::int64_t> n) {
        tally->runs++;
        return n.value_or(0) + 5;
    });
    CHECK(session.get<std::int64_t>("n") == 5);
    session.modify<std::int64_t>("n", [](std::optional<std::int64_t> n) { return *n * 2; });
    CHECK(session.get<std::int64_t>("n") == 10);
    // Raw MessagePack: the current value as encoded, the new one encoded.
    session.set("s", "ab");
    session.modify<ss::Msgpack>("s", [](std::optional<ss::Msgpack> current) {
        ss::Msgpack next = *current;
        next.bytes[0] = 0xa3; // fixstr of 3
        next.bytes.push_back('c');
        return next;
    });
    CHECK(session.get<std::string>("s") == "abc");
    session.modify<ss::Msgpack>("absent", [](std::optional<ss::Msgpack> current) {
        return ss::Msgpack{{current ? std::uint8_t{0xc3} : std::uint8_t{0xc2}}};
    });
    CHECK(session.get<bool>("absent") == false);
    std::string cookie = cookie_pair(session.save());
    CHECK(tally->runs == 1);
    CHECK(tally.use_count() == 1); // the library released its copy with the save

    // A conflicting save replays the modify on the fresher value: no update lost.
    ss::Session first = manager.load(cookie);
    ss::Session second = manager.load(cookie);
    first.modify("n", [](std::optional<std::int64_t> n) { return n.value_or(0) + 1; });
    second.modify("n", [tally](std::optional<std::int64_t> n) {
        tally->runs++;
        return n.value_or(0) + 100;
    });
    first.save();
    second.save();
    CHECK(tally->runs == 3); // once in modify, once in the replay
    CHECK(manager.load(cookie).get<std::int64_t>("n") == 111);

    // A value that is not an int64, and MessagePack that is not one value.
    ss::Session typed = manager.load(cookie);
    CHECK_THROWS(typed.modify("s", [](std::optional<std::int64_t> n) { return n.value_or(0); }),
                 SESSIONSTORE_TYPE_MISMATCH);
    CHECK_THROWS(
        typed.modify<ss::Msgpack>("s", [](std::optional<ss::Msgpack>) { return ss::Msgpack{}; }),
        SESSIONSTORE_INVALID_ARGUMENT);
    CHECK(typed.get<std::string>("s") == "abc");

    // A session released unsaved releases its modify functions, and writes nothing.
    {
        ss::Session unsaved = manager.load(cookie);
        unsaved.modify("n", [tally](std::optional<std::int64_t> n) { return *n + 1; });
        unsaved.set("user", "unsaved");
        CHECK(tally.use_count() == 2);
    }
    CHECK(tally.use_count() == 1);
    ss::Session check = manager.load(cookie);
    CHECK(check.get<std::int64_t>("n") == 111 && !check.contains("user"));
}

void test_modify_that_throws() {
    ss::Manager manager = memory_manager();
    std::string cookie = new_session_cookie(manager);

    // Thrown on the first run: the exception itself, the session unchanged.
    ss::Session session = manager.load(cookie);
    bool caught = false;
    try {
        session.modify("n", [](std::optional<std::int64_t>) -> std::int64_t {
            throw std::logic_error("no counting today");
        });
    } catch (const std::logic_error &error) {
        caught = std::string(error.what()) == "no counting today";
    }
    CHECK(caught);
    CHECK(!session.contains("n") && !session.is_modified());
    // The session still works, and the pending exception is not reported twice.
    session.set("n", 1);
    CHECK(session.get<std::int64_t>("n") == 1);
    session.save();

    // Thrown on a replay, inside save(): the exception from save(), nothing stored.
    ss::Session racing = manager.load(cookie);
    ss::Session thrower = manager.load(cookie);
    thrower.modify("n", [](std::optional<std::int64_t> n) -> std::int64_t {
        if (n.value_or(0) > 1)
            throw std::range_error("too many");
        return n.value_or(0) + 1;
    });
    thrower.set("other", "from the thrower");
    racing.set("n", 50);
    racing.save();
    caught = false;
    try {
        thrower.save();
    } catch (const std::range_error &error) {
        caught = std::string(error.what()) == "too many";
    }
    CHECK(caught);
    CHECK(thrower.handle() == nullptr);
    ss::Session stored = manager.load(cookie);
    CHECK(stored.get<std::int64_t>("n") == 50 && !stored.contains("other"));

    // A save failing for another reason still throws Error, with no stale exception.
    ss::Options small;
    small.add_secret("test secret").set_max_size(64);
    ss::Manager limited = ss::Manager::open("memory://", small);
    ss::Session big = limited.load();
    big.set("big", std::string(200, 'x'));
    CHECK_THROWS(big.save(), SESSIONSTORE_TOO_LARGE);
}

void test_moves() {
    ss::Manager manager = memory_manager();
    ss::Manager moved_manager(std::move(manager));
    CHECK(manager.handle() == nullptr && moved_manager.handle() != nullptr);
    CHECK_THROWS(manager.load(), SESSIONSTORE_NULL_ARGUMENT);
    manager = std::move(moved_manager);
    CHECK(manager.load().is_new());

    ss::Session session = manager.load();
    session.set("k", 1);
    ss::Session moved(std::move(session));
    CHECK(session.handle() == nullptr);
    CHECK_THROWS(session.set("k", 2), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_THROWS(session.get<std::int64_t>("k"), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_THROWS(session.id(), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_THROWS(session.keys(), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_THROWS(session.modify("k", [](std::optional<std::int64_t>) { return std::int64_t{1}; }),
                 SESSIONSTORE_NULL_ARGUMENT);
    CHECK(moved.get<std::int64_t>("k") == 1);
    // Move-assigning over a live session releases it unsaved.
    ss::Session other = manager.load();
    other.set("other", true);
    other = std::move(moved);
    CHECK(other.get<std::int64_t>("k") == 1 && !other.contains("other"));
    session = std::move(other);
    CHECK(session.get<std::int64_t>("k") == 1);

    ss::Options options;
    options.add_secret("s");
    ss::Options moved_options(std::move(options));
    CHECK_THROWS(options.add_secret("x"), SESSIONSTORE_NULL_ARGUMENT);
    CHECK(options.handle() == nullptr);
    options = std::move(moved_options);
    options.set_cookie_name("moved");
    ss::Manager named = ss::Manager::open("memory://", options);
    ss::Session fresh = named.load();
    fresh.set("x", 1);
    CHECK(contains_text(fresh.save().set_cookie.value_or(""), "moved="));

    // A session outlives its manager.
    ss::Session orphan = named.load();
    named = ss::Manager::open("memory://");
    orphan.set("x", 2);
    CHECK(orphan.save().set_cookie.has_value());
}

void test_options() {
    using namespace std::chrono_literals;
    ss::Options options;
    options.add_secret("new")
        .add_secret("old")
        .set_cookie_mode(ss::CookieMode::Signed)
        .set_cookie_name("sid")
        .set_cookie_domain("example.com")
        .set_cookie_path("/app")
        .set_cookie_http_only(false)
        .set_cookie_secure(true)
        .set_cookie_same_site(ss::SameSite::Strict)
        .set_cookie_partitioned(true)
        .set_prefix("app:")
        .set_format(ss::Format::Json)
        .set_permanent(true)
        .set_idle_lifetime(1h)
        .set_absolute_lifetime(std::chrono::hours(24))
        .set_refresh_each_request(false)
        .set_touch_interval(30s)
        .set_concurrency(ss::Concurrency::LastWriterWins)
        .set_max_attempts(10)
        .set_cleanup_every(100)
        .set_max_size(1 << 20)
        .add_data_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .set_decrypt_only(false)
        .set_compress_threshold(64);
    ss::Manager manager = ss::Manager::open("memory://", options);
    ss::Session session = manager.load();
    session.set("x", 1);
    std::string cookie = session.save().set_cookie.value_or("");
    CHECK(cookie.rfind("sid=", 0) == 0);
    for (const char *part : {"Domain=example.com", "Path=/app", "Secure", "SameSite=Strict",
                             "Partitioned", "Max-Age=3600"})
        CHECK(contains_text(cookie, part));
    CHECK(!contains_text(cookie, "HttpOnly"));

    CHECK_THROWS(ss::Options().add_data_key("too short"), SESSIONSTORE_CONFIG);
    ss::Options other;
    other.set_cookie_mode(ss::CookieMode::Plain)
        .set_cookie_same_site(ss::SameSite::Omit)
        .set_format(ss::Format::Msgpack)
        .set_concurrency(ss::Concurrency::NoLostUpdates);
    ss::Manager plain = ss::Manager::open("memory://", other);
    ss::Session plain_session = plain.load();
    plain_session.set("x", 1);
    std::string plain_cookie = plain_session.save().set_cookie.value_or("");
    CHECK(!contains_text(plain_cookie.substr(0, plain_cookie.find(';')), "."));
    CHECK(!contains_text(plain_cookie, "SameSite"));

    ss::Options flask;
    flask.add_secret("dev-secret").set_cookie_mode(ss::CookieMode::Flask);
    ss::Options lax;
    lax.set_cookie_same_site(ss::SameSite::Lax);
    ss::Options none;
    none.set_cookie_same_site(ss::SameSite::None);
    for (const ss::Options *each : {&flask, &lax, &none})
        CHECK(ss::Manager::open("memory://", *each).load().is_new());

    // Refused settings.
    ss::Options refused;
    CHECK_THROWS(refused.set_idle_lifetime(-1s), SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_THROWS(refused.set_cookie_mode(static_cast<ss::CookieMode>(9)),
                 SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_THROWS(refused.add_secret(std::string("a\0b", 3)), SESSIONSTORE_INVALID_ARGUMENT);
    refused.set_idle_lifetime(0s);
    CHECK_THROWS(ss::Manager::open("memory://", refused), SESSIONSTORE_CONFIG);
    ss::Options unsigned_mode;
    unsigned_mode.set_cookie_mode(ss::CookieMode::Signed);
    try {
        ss::Manager::open("memory://", unsigned_mode);
        CHECK(!"signed cookies without a secret were accepted");
    } catch (const ss::Error &error) {
        CHECK(error.code() == SESSIONSTORE_CONFIG && contains_text(error.what(), "secret"));
    }
    CHECK_THROWS(ss::Manager::open("nosuchstore://x"), SESSIONSTORE_CONFIG);
    CHECK_THROWS(ss::Manager::open("memory://?bogus=1"), SESSIONSTORE_CONFIG);
}

void test_open_flask_and_sqlite() {
    std::string db = tmpdir + "/flask.db";
    ss::Manager manager = ss::Manager::open_flask({
        {"SESSION_TYPE", "sqlalchemy"},
        {"SQLALCHEMY_DATABASE_URI", "sqlite:///" + db},
        {"SECRET_KEY", "dev-secret"},
        {"SESSION_USE_SIGNER", "True"},
        {"SESSION_COOKIE_NAME", "fsid"},
        {"PERMANENT_SESSION_LIFETIME", "120"},
    });
    ss::Session session = manager.load();
    session.set("user", "flask");
    ss::Saved saved = session.save();
    std::string pair = cookie_pair(saved);
    CHECK(pair.size() == std::string("fsid=").size() + 43 + 1 + 27);
    CHECK(contains_text(*saved.set_cookie, "Max-Age=120"));
    CHECK(manager.load(pair).get<std::string>("user") == "flask");
    CHECK(manager.purge_expired() == 0);

    CHECK_THROWS(ss::Manager::open_flask({{"SESSION_TYPE", "sqlalchemy"}, {"SESSION_FOO", "1"}}),
                 SESSIONSTORE_CONFIG);
    CHECK_THROWS(ss::Manager::open_flask({}), SESSIONSTORE_CONFIG);
    CHECK_THROWS(ss::Manager::open_flask({{std::string("SESSION\0TYPE", 12), "redis"}}),
                 SESSIONSTORE_INVALID_ARGUMENT);

    // The same file through a URL: the store is shared.
    ss::Manager by_url = ss::Manager::open("sqlite://" + db + "?table=other");
    ss::Session other = by_url.load();
    other.set("x", 1);
    CHECK(other.save().set_cookie.has_value());
    CHECK(by_url.purge_expired() == 0);
}

void test_metrics() {
    ss::Manager manager = ss::Manager::open("memory://?metrics=on");
    ss::Session session = manager.load();
    session.set("n", 1);
    std::string pair = cookie_pair(session.save());
    manager.load(pair).save();
    sessionstore_stats stats = manager.stats();
    CHECK(stats.loads_no_cookie == 1);
    CHECK(stats.loads_hit == 1);
    CHECK(stats.saves_created == 1);
    CHECK(stats.saves_unchanged == 1);
    CHECK(stats.store_calls[0] == 1);
    CHECK(contains_text(manager.metrics_text(),
                        "sessionstore_loads_total{backend=\"memory\",outcome=\"hit\"} 1"));
    ss::Manager off = ss::Manager::open("memory://");
    CHECK_THROWS(off.stats(), SESSIONSTORE_CONFIG);
    CHECK_THROWS(off.metrics_text(), SESSIONSTORE_CONFIG);
}

void test_store_failure() {
    // Nothing listens on port 1: the load fails with a store error naming the backend.
    try {
        ss::Manager manager = ss::Manager::open("redis://127.0.0.1:1/0?pool_timeout=1");
        manager.load("session=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq");
        CHECK(!"a load from an unreachable store succeeded");
    } catch (const ss::Error &error) {
        CHECK(error.code() == SESSIONSTORE_STORE);
        CHECK(contains_text(error.what(), "redis"));
    }
    ss::Manager manager = memory_manager();
    CHECK_THROWS(manager.load("session=\xff"), SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_THROWS(manager.load(std::string("a\0b", 3)), SESSIONSTORE_INVALID_ARGUMENT);
}

void test_threads() {
    // One manager shared by threads; each request's modify is replayed on conflict.
    ss::Manager manager = memory_manager();
    std::string cookie = new_session_cookie(manager);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++)
        threads.emplace_back([&] {
            for (int i = 0; i < 25; i++) {
                try {
                    ss::Session session = manager.load(cookie);
                    session.modify("n", [](std::optional<std::int64_t> n) {
                        return n.value_or(0) + 1;
                    });
                    session.save();
                } catch (const ss::Error &) {
                    failures++;
                }
            }
        });
    for (std::thread &thread : threads)
        thread.join();
    CHECK(failures == 0);
    CHECK(manager.load(cookie).get<std::int64_t>("n") == 100);
}

} // namespace

int main() {
    char dir[] = "/tmp/sessionstore-cpp-test-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    tmpdir = dir;
    test_version_and_error();
    test_lifecycle();
    test_owners();
    test_values();
    test_keys_contains_remove_clear_permanent();
    test_modify();
    test_modify_that_throws();
    test_moves();
    test_options();
    test_open_flask_and_sqlite();
    test_metrics();
    test_store_failure();
    test_threads();
    std::filesystem::remove_all(tmpdir);
    CHECK(only_this_thread_left());
    return check_summary("test_cpp");
}
