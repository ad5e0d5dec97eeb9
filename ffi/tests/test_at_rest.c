/* Encryption and compression at rest through the C options: sessionstore_options_add_data_key()
 * and sessionstore_options_set_compress_threshold(), key rotation between two managers on one
 * SQLite file, and the configuration errors. Run natively and under valgrind by the test
 * command. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, nanosleep (check.h) */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

/* 32 bytes in base64: bytes 0..31 and 100..131. */
static const char *OLD_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
static const char *NEW_KEY = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=";

/* Opens a manager on `url` with the given data keys (NULL-terminated) and threshold (0: none);
 * returns its result and puts the manager in `*out`. */
static int open_with(const char *url, const char *const *keys, size_t threshold, int cookie_mode,
                     sessionstore_manager **out) {
    sessionstore_options *options = NULL;
    CHECK_OK(sessionstore_options_new(&options));
    /* A leading "-" marks the keys decrypt-only. */
    if (*keys && strcmp(*keys, "-") == 0) {
        CHECK_OK(sessionstore_options_set_decrypt_only(options, true));
        keys++;
    }
    for (; *keys; keys++)
        CHECK_OK(sessionstore_options_add_data_key(options, *keys));
    if (threshold)
        CHECK_OK(sessionstore_options_set_compress_threshold(options, threshold));
    if (cookie_mode >= 0) {
        CHECK_OK(sessionstore_options_add_secret(options, "c secret"));
        CHECK_OK(sessionstore_options_set_cookie_mode(options, cookie_mode));
    }
    int rc = sessionstore_manager_open(url, options, out);
    sessionstore_options_free(options);
    return rc;
}

/* The user stored in the session `cookie` names, or NULL for a fresh session (to free). */
static char *user_of(sessionstore_manager *manager, const char *cookie) {
    sessionstore_session *session = NULL;
    CHECK_OK(sessionstore_manager_load(manager, cookie, &session));
    char *user = NULL;
    bool is_new = true;
    CHECK_OK(sessionstore_session_is_new(session, &is_new));
    if (!is_new)
        CHECK_OK(sessionstore_session_get_string(session, "user", &user, NULL));
    sessionstore_session_free(session);
    return user;
}

int main(void) {
    char dir[] = "/tmp/sessionstore-at-rest-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char url[128];
    snprintf(url, sizeof url, "sqlite://%s/sessions.db", dir);

    /* Bad arguments. */
    sessionstore_options *options = NULL;
    CHECK_OK(sessionstore_options_new(&options));
    CHECK_RC(sessionstore_options_add_data_key(NULL, OLD_KEY), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_options_add_data_key(options, NULL), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_options_add_data_key(options, "c2hvcnQ="), SESSIONSTORE_CONFIG);
    CHECK_ERROR_MENTIONS("32 bytes");
    CHECK_RC(sessionstore_options_set_compress_threshold(NULL, 64), SESSIONSTORE_NULL_ARGUMENT);
    sessionstore_options_free(options);

    /* Encrypted and compressed, with the old key. */
    const char *old_only[] = {OLD_KEY, NULL};
    sessionstore_manager *old = NULL;
    CHECK_OK(open_with(url, old_only, 64, -1, &old));
    sessionstore_session *session = NULL;
    CHECK_OK(sessionstore_manager_load(old, NULL, &session));
    CHECK_OK(sessionstore_session_set_string(session, "user", "ann"));
    CHECK_OK(sessionstore_session_set_string(
        session, "cart", "item-4711;item-4711;item-4711;item-4711;item-4711;item-4711;"));
    sessionstore_saved saved;
    CHECK_OK(sessionstore_session_save(session, &saved));
    CHECK(saved.set_cookie != NULL);
    char *cookie = saved.set_cookie;
    cookie[strcspn(cookie, ";")] = '\0';
    char *user = user_of(old, cookie);
    CHECK(user && strcmp(user, "ann") == 0);
    sessionstore_string_free(user);

    /* Rotation: the new key first, the old one still decrypts. */
    const char *rotated_keys[] = {NEW_KEY, OLD_KEY, NULL};
    sessionstore_manager *rotated = NULL;
    CHECK_OK(open_with(url, rotated_keys, 0, -1, &rotated));
    user = user_of(rotated, cookie);
    CHECK(user && strcmp(user, "ann") == 0);
    sessionstore_string_free(user);

    /* Without keys an encrypted record is a fresh session. */
    const char *none[] = {NULL};
    sessionstore_manager *plain = NULL;
    CHECK_OK(open_with(url, none, 0, -1, &plain));
    CHECK(user_of(plain, cookie) == NULL);

    /* Decrypt-only: the record is read, and its next request writes it plain, which a
     * manager without keys then reads. Allowed in the flask cookie mode (saves are plain). */
    const char *decrypting[] = {"-", NEW_KEY, OLD_KEY, NULL};
    sessionstore_manager *off = NULL;
    CHECK_OK(open_with(url, decrypting, 0, -1, &off));
    CHECK_OK(sessionstore_manager_load(off, cookie, &session));
    CHECK_OK(sessionstore_session_save(session, &saved));
    sessionstore_string_free(saved.set_cookie);
    user = user_of(plain, cookie);
    CHECK(user && strcmp(user, "ann") == 0);
    sessionstore_string_free(user);
    sessionstore_manager *flask_off = NULL;
    CHECK_OK(open_with(url, decrypting, 0, SESSIONSTORE_COOKIE_FLASK, &flask_off));
    sessionstore_manager_free(flask_off);
    sessionstore_manager_free(off);
    CHECK_RC(sessionstore_options_set_decrypt_only(NULL, true), SESSIONSTORE_NULL_ARGUMENT);

    /* Flask-Session cannot read encrypted records: refused in the flask cookie mode. */
    sessionstore_manager *flask = NULL;
    CHECK_RC(open_with(url, old_only, 0, SESSIONSTORE_COOKIE_FLASK, &flask), SESSIONSTORE_CONFIG);
    CHECK(flask == NULL);
    CHECK_ERROR_MENTIONS("Flask-Session cannot read");

    sessionstore_string_free(cookie);
    sessionstore_manager_free(old);
    sessionstore_manager_free(rotated);
    sessionstore_manager_free(plain);
    const char *files[] = {"sessions.db", "sessions.db-wal", "sessions.db-shm"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    CHECK(only_this_thread_left());
    return check_summary("test_at_rest");
}
