/* sessionstore_session_modify(): a read-modify-write callback that a conflicting save replays
 * on the fresher value, its failures, and the release of its user data (exactly once, on
 * every path). Run natively and under valgrind by the test command. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, used by check.h */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"

/* What the callbacks of one test share: the step to add, how often they ran and released. */
struct counter {
    int64_t step;
    int calls;
    int releases;
};

/* Decodes a MessagePack integer written by the library (positive fixint or int64/uint8..64
 * as rmpv writes them); -1 for anything else. */
static int64_t decode_int(const uint8_t *data, size_t len) {
    if (len == 1 && data[0] <= 0x7f)
        return data[0];
    size_t width = 0;
    switch (data[0]) {
    case 0xcc: case 0xd0: width = 1; break;
    case 0xcd: case 0xd1: width = 2; break;
    case 0xce: case 0xd2: width = 4; break;
    case 0xcf: case 0xd3: width = 8; break;
    default: return -1;
    }
    if (len != 1 + width)
        return -1;
    int64_t value = 0;
    for (size_t i = 1; i <= width; i++)
        value = (value << 8) | data[i];
    return value;
}

/* Encodes a non-negative integer as MessagePack int64 (0xd3 + 8 bytes big-endian). */
static void encode_int(int64_t value, uint8_t out[9]) {
    out[0] = 0xd3;
    for (int i = 8; i >= 1; i--) {
        out[i] = (uint8_t)(value & 0xff);
        value >>= 8;
    }
}

/* Adds the counter's step to the integer (a missing key counts as 0). */
static int add_step(void *user_data, const uint8_t *current, size_t current_len,
                    sessionstore_modify_out *out) {
    struct counter *counter = user_data;
    counter->calls++;
    int64_t value = current ? decode_int(current, current_len) : 0;
    if (value < 0)
        return 1;
    uint8_t encoded[9];
    encode_int(value + counter->step, encoded);
    return sessionstore_modify_out_set(out, encoded, sizeof encoded) == SESSIONSTORE_OK ? 0 : 2;
}

static void release_counter(void *user_data) {
    ((struct counter *)user_data)->releases++;
}

/* Always fails. */
static int refuse(void *user_data, const uint8_t *current, size_t current_len,
                  sessionstore_modify_out *out) {
    (void)current, (void)current_len, (void)out;
    ((struct counter *)user_data)->calls++;
    return 7;
}

/* Returns 0 without setting a value. */
static int forget_to_set(void *user_data, const uint8_t *current, size_t current_len,
                         sessionstore_modify_out *out) {
    (void)current, (void)current_len, (void)out;
    ((struct counter *)user_data)->calls++;
    return 0;
}

/* Fails once the stored value is above 10: succeeds on the first run, fails on the replay. */
static int add_up_to_ten(void *user_data, const uint8_t *current, size_t current_len,
                         sessionstore_modify_out *out) {
    if (current && decode_int(current, current_len) > 10)
        return 3;
    return add_step(user_data, current, current_len, out);
}

/* Sets malformed MessagePack: refused, so the callback reports the failure. */
static int set_garbage(void *user_data, const uint8_t *current, size_t current_len,
                       sessionstore_modify_out *out) {
    (void)current, (void)current_len;
    ((struct counter *)user_data)->calls++;
    const uint8_t garbage[] = {0xa5, 0x61}; /* a 5-byte string cut short */
    const uint8_t trailing[] = {0x01, 0x02};
    CHECK_RC(sessionstore_modify_out_set(out, garbage, sizeof garbage),
             SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_RC(sessionstore_modify_out_set(out, trailing, sizeof trailing),
             SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_RC(sessionstore_modify_out_set(NULL, trailing, 1), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_modify_out_set(out, NULL, 1), SESSIONSTORE_NULL_ARGUMENT);
    return 4;
}

static sessionstore_manager *open_memory(void) {
    sessionstore_manager *manager = NULL;
    CHECK_OK(sessionstore_manager_open("memory://", NULL, &manager));
    return manager;
}

/* Saves a fresh session holding n = start; returns its Cookie header value (to free). */
static char *stored_session(sessionstore_manager *manager, int64_t start) {
    sessionstore_session *session = NULL;
    CHECK_OK(sessionstore_manager_load(manager, NULL, &session));
    CHECK_OK(sessionstore_session_set_i64(session, "n", start));
    sessionstore_saved saved;
    CHECK_OK(sessionstore_session_save(session, &saved));
    char *cookie = saved.set_cookie;
    if (cookie)
        cookie[strcspn(cookie, ";")] = '\0';
    return cookie;
}

static int64_t stored_n(sessionstore_manager *manager, const char *cookie) {
    sessionstore_session *session = NULL;
    int64_t n = -1;
    CHECK_OK(sessionstore_manager_load(manager, cookie, &session));
    CHECK_OK(sessionstore_session_get_i64(session, "n", &n));
    sessionstore_session_free(session);
    return n;
}

static void modify_sets_the_value_and_releases_on_save(void) {
    sessionstore_manager *manager = open_memory();
    sessionstore_session *session = NULL;
    CHECK_OK(sessionstore_manager_load(manager, NULL, &session));
    struct counter counter = {.step = 5};
    CHECK_OK(sessionstore_session_modify(session, "n", add_step, &counter, release_counter));
    CHECK_OK(sessionstore_session_modify(session, "n", add_step, &counter, release_counter));
    CHECK(counter.calls == 2);
    int64_t n = 0;
    CHECK_OK(sessionstore_session_get_i64(session, "n", &n));
    CHECK(n == 10);
    CHECK(counter.releases == 0);
    sessionstore_saved saved;
    CHECK_OK(sessionstore_session_save(session, &saved));
    CHECK(counter.releases == 2);
    CHECK(counter.calls == 2); /* no conflict: nothing replayed */
    CHECK(saved.set_cookie != NULL);
    saved.set_cookie[strcspn(saved.set_cookie, ";")] = '\0';
    CHECK(stored_n(manager, saved.set_cookie) == 10);
    sessionstore_string_free(saved.set_cookie);
    sessionstore_manager_free(manager);
}

/* Two requests load one session; both modify; the second save conflicts and replays its
 * callback on the value the first one stored: both changes are kept. */
static void a_conflicting_save_replays_the_callback(void) {
    sessionstore_manager *manager = open_memory();
    char *cookie = stored_session(manager, 1);
    sessionstore_session *first = NULL, *second = NULL;
    CHECK_OK(sessionstore_manager_load(manager, cookie, &first));
    CHECK_OK(sessionstore_manager_load(manager, cookie, &second));
    struct counter one = {.step = 10}, other = {.step = 100};
    CHECK_OK(sessionstore_session_modify(first, "n", add_step, &one, release_counter));
    CHECK_OK(sessionstore_session_modify(second, "n", add_step, &other, NULL));
    sessionstore_saved saved;
    CHECK_OK(sessionstore_session_save(first, &saved));
    sessionstore_string_free(saved.set_cookie);
    CHECK_OK(sessionstore_session_save(second, &saved));
    CHECK(!saved.ended);
    sessionstore_string_free(saved.set_cookie);
    CHECK(one.calls == 1 && one.releases == 1);
    CHECK(other.calls == 2); /* once in modify, once replayed on the fresher value */
    CHECK(stored_n(manager, cookie) == 111);
    sessionstore_string_free(cookie);
    sessionstore_manager_free(manager);
}

static void a_failing_callback_changes_nothing(void) {
    sessionstore_manager *manager = open_memory();
    sessionstore_session *session = NULL;
    CHECK_OK(sessionstore_manager_load(manager, NULL, &session));
    CHECK_OK(sessionstore_session_set_i64(session, "n", 3));
    struct counter counter = {.step = 1};
    CHECK_RC(sessionstore_session_modify(session, "n", refuse, &counter, release_counter),
             SESSIONSTORE_TYPE_MISMATCH);
    CHECK_ERROR_MENTIONS("\"n\"");
    CHECK_ERROR_MENTIONS("returned 7");
    CHECK(counter.calls == 1 && counter.releases == 1);
    CHECK_RC(sessionstore_session_modify(session, "n", forget_to_set, &counter, release_counter),
             SESSIONSTORE_TYPE_MISMATCH);
    CHECK_ERROR_MENTIONS("sessionstore_modify_out_set");
    CHECK(counter.calls == 2 && counter.releases == 2);
    CHECK_RC(sessionstore_session_modify(session, "n", set_garbage, &counter, release_counter),
             SESSIONSTORE_TYPE_MISMATCH);
    CHECK(counter.calls == 3 && counter.releases == 3);
    int64_t n = 0;
    CHECK_OK(sessionstore_session_get_i64(session, "n", &n));
    CHECK(n == 3);
    sessionstore_session_free(session);
    CHECK(counter.releases == 3);
    sessionstore_manager_free(manager);
}

static void a_failing_replay_fails_the_save_and_stores_nothing(void) {
    sessionstore_manager *manager = open_memory();
    char *cookie = stored_session(manager, 1);
    sessionstore_session *first = NULL, *second = NULL;
    CHECK_OK(sessionstore_manager_load(manager, cookie, &first));
    CHECK_OK(sessionstore_manager_load(manager, cookie, &second));
    CHECK_OK(sessionstore_session_set_i64(first, "n", 50));
    struct counter counter = {.step = 2};
    CHECK_OK(sessionstore_session_modify(second, "n", add_up_to_ten, &counter, release_counter));
    CHECK_OK(sessionstore_session_set_string(second, "other", "kept only if saved"));
    sessionstore_saved saved;
    CHECK_OK(sessionstore_session_save(first, &saved));
    sessionstore_string_free(saved.set_cookie);
    CHECK_RC(sessionstore_session_save(second, &saved), SESSIONSTORE_TYPE_MISMATCH);
    CHECK_ERROR_MENTIONS("modify callback failed");
    CHECK(saved.set_cookie == NULL);
    CHECK(counter.releases == 1);
    CHECK(stored_n(manager, cookie) == 50);
    sessionstore_session *check = NULL;
    bool has_other = true;
    CHECK_OK(sessionstore_manager_load(manager, cookie, &check));
    CHECK_OK(sessionstore_session_contains(check, "other", &has_other));
    CHECK(!has_other);
    sessionstore_session_free(check);
    sessionstore_string_free(cookie);
    sessionstore_manager_free(manager);
}

static void bad_arguments_release_the_user_data(void) {
    sessionstore_manager *manager = open_memory();
    sessionstore_session *session = NULL;
    CHECK_OK(sessionstore_manager_load(manager, NULL, &session));
    struct counter counter = {.step = 1};
    CHECK_RC(sessionstore_session_modify(NULL, "n", add_step, &counter, release_counter),
             SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_session_modify(session, NULL, add_step, &counter, release_counter),
             SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_session_modify(session, "n", NULL, &counter, release_counter),
             SESSIONSTORE_NULL_ARGUMENT);
    CHECK_ERROR_MENTIONS("callback");
    CHECK_RC(sessionstore_session_modify(session, "bad \xff key", add_step, &counter,
                                         release_counter),
             SESSIONSTORE_INVALID_ARGUMENT);
    CHECK(counter.calls == 0 && counter.releases == 4);
    /* A missing key reaches the callback as NULL. */
    struct counter missing = {.step = 4};
    CHECK_OK(sessionstore_session_modify(session, "fresh", add_step, &missing, release_counter));
    int64_t fresh = 0;
    CHECK_OK(sessionstore_session_get_i64(session, "fresh", &fresh));
    CHECK(fresh == 4);
    sessionstore_session_free(session);
    CHECK(missing.releases == 1);
    sessionstore_manager_free(manager);
}

int main(void) {
    modify_sets_the_value_and_releases_on_save();
    a_conflicting_save_replays_the_callback();
    a_failing_callback_changes_nothing();
    a_failing_replay_fails_the_save_and_stores_nothing();
    bad_arguments_release_the_user_data();
    CHECK(only_this_thread_left());
    return check_summary("test_modify");
}
