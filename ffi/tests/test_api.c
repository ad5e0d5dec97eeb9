/* Every function of the C API: the request lifecycle, every value type, every option, the
 * Flask settings, secret rotation, tampered cookies, concurrent saves, and NULL, invalid,
 * non-UTF-8 and over-long arguments. Run under valgrind by the test command. */
#define _GNU_SOURCE
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

static char tmpdir[] = "/tmp/sessionstore-c-test-XXXXXX";

/* ---- helpers ---------------------------------------------------------------------------- */

static sessionstore_manager *open_manager(const char *url, const sessionstore_options *options) {
    sessionstore_manager *manager = NULL;
    CHECK_OK(sessionstore_manager_open(url, options, &manager));
    return manager;
}

/* A manager on the memory store with one secret (signed cookies). */
static sessionstore_manager *memory_manager(void) {
    sessionstore_options *options = NULL;
    CHECK_OK(sessionstore_options_new(&options));
    CHECK_OK(sessionstore_options_add_secret(options, "test secret"));
    sessionstore_manager *manager = open_manager("memory://", options);
    sessionstore_options_free(options);
    return manager;
}

static sessionstore_session *load(const sessionstore_manager *manager, const char *cookie) {
    sessionstore_session *session = NULL;
    CHECK_OK(sessionstore_manager_load(manager, cookie, &session));
    CHECK(session != NULL);
    return session;
}

/* Saves and returns the Set-Cookie value (caller frees), NULL when none. */
static char *save(sessionstore_session *session, bool *vary, bool *ended) {
    sessionstore_saved saved;
    CHECK_OK(sessionstore_session_save(session, &saved));
    if (vary)
        *vary = saved.vary_cookie;
    if (ended)
        *ended = saved.ended;
    return saved.set_cookie;
}

/* "name=value; Path=/; ..." -> "name=value" as a Cookie header would carry it (caller frees). */
static char *cookie_pair(const char *set_cookie) {
    size_t n = strcspn(set_cookie, ";");
    char *pair = malloc(n + 1);
    memcpy(pair, set_cookie, n);
    pair[n] = '\0';
    return pair;
}

/* Saves a session holding user=ann under a new id; returns its Cookie header (caller frees). */
static char *new_session_cookie(const sessionstore_manager *manager) {
    sessionstore_session *session = load(manager, NULL);
    CHECK_OK(sessionstore_session_set_string(session, "user", "ann"));
    char *set_cookie = save(session, NULL, NULL);
    CHECK(set_cookie != NULL);
    char *pair = set_cookie ? cookie_pair(set_cookie) : NULL;
    sessionstore_string_free(set_cookie);
    return pair;
}

static bool is_new(const sessionstore_session *session) {
    bool value = false;
    CHECK_OK(sessionstore_session_is_new(session, &value));
    return value;
}

static bool has_key(const sessionstore_session *session, const char *key) {
    bool value = false;
    CHECK_OK(sessionstore_session_contains(session, key, &value));
    return value;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void url_in_tmpdir(char *buffer, size_t size, const char *scheme, const char *name) {
    snprintf(buffer, size, "%s%s/%s", scheme, tmpdir, name);
}

/* ---- library-wide functions ------------------------------------------------------------- */

static void test_version_and_result_names(void) {
    CHECK(strcmp(sessionstore_version(), SESSIONSTORE_VERSION) == 0);
    CHECK(SESSIONSTORE_VERSION_MAJOR == 0 && SESSIONSTORE_VERSION_MINOR >= 1);
    CHECK(strcmp(sessionstore_result_name(SESSIONSTORE_OK), "SESSIONSTORE_OK") == 0);
    CHECK(strcmp(sessionstore_result_name(SESSIONSTORE_NOT_FOUND), "SESSIONSTORE_NOT_FOUND") == 0);
    for (int code = SESSIONSTORE_OK; code <= SESSIONSTORE_PANIC; code++)
        CHECK(strncmp(sessionstore_result_name(code), "SESSIONSTORE_", 13) == 0);
    CHECK(strcmp(sessionstore_result_name(-1), "unknown result") == 0);
    CHECK(strcmp(sessionstore_result_name(SESSIONSTORE_PANIC + 1), "unknown result") == 0);
}

static void *other_thread_errors(void *arg) {
    (void)arg;
    /* A new thread starts with no error, and its errors stay its own. */
    CHECK(strcmp(sessionstore_last_error(), "") == 0);
    CHECK_RC(sessionstore_manager_open("memory://", NULL, NULL), SESSIONSTORE_NULL_ARGUMENT);
    CHECK(strcmp(sessionstore_last_error(), "out is NULL") == 0);
    return NULL;
}

static void test_last_error(void) {
    CHECK_RC(sessionstore_manager_open(NULL, NULL, NULL), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_options_set_cookie_mode(NULL, 0), SESSIONSTORE_NULL_ARGUMENT);
    const char *expected = "options is NULL";
    CHECK(strcmp(sessionstore_last_error(), expected) == 0);
    CHECK(sessionstore_last_error_copy(NULL, 0) == strlen(expected));
    char small[5];
    CHECK(sessionstore_last_error_copy(small, sizeof small) == strlen(expected));
    CHECK(strcmp(small, "opti") == 0);
    char big[64];
    CHECK(sessionstore_last_error_copy(big, sizeof big) == strlen(expected));
    CHECK(strcmp(big, expected) == 0);

    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, other_thread_errors, NULL) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK(strcmp(sessionstore_last_error(), expected) == 0);

    sessionstore_options *options = NULL;
    CHECK_OK(sessionstore_options_new(&options));
    CHECK(strcmp(sessionstore_last_error(), "") == 0);
    CHECK(sessionstore_last_error_copy(big, sizeof big) == 0 && big[0] == '\0');
    sessionstore_options_free(options);
}

static void test_free_functions_accept_null(void) {
    sessionstore_string_free(NULL);
    sessionstore_bytes_free(NULL, 0);
    sessionstore_bytes_free(NULL, 7);
    sessionstore_options_free(NULL);
    sessionstore_manager_free(NULL);
    sessionstore_session_free(NULL);
    sessionstore_keys_free(NULL);
    CHECK(sessionstore_keys_count(NULL) == 0);
    CHECK(sessionstore_keys_get(NULL, 0) == NULL);
}

/* ---- options ---------------------------------------------------------------------------- */

static void test_options_refuse_bad_arguments(void) {
    const int null = SESSIONSTORE_NULL_ARGUMENT, invalid = SESSIONSTORE_INVALID_ARGUMENT;
    sessionstore_options *options = NULL;
    CHECK_RC(sessionstore_options_new(NULL), null);
    CHECK_OK(sessionstore_options_new(&options));

    /* NULL handle, for every setter. */
    CHECK_RC(sessionstore_options_add_secret(NULL, "s"), null);
    CHECK_RC(sessionstore_options_set_cookie_mode(NULL, SESSIONSTORE_COOKIE_PLAIN), null);
    CHECK_RC(sessionstore_options_set_cookie_name(NULL, "n"), null);
    CHECK_RC(sessionstore_options_set_cookie_domain(NULL, "d"), null);
    CHECK_RC(sessionstore_options_set_cookie_path(NULL, "/"), null);
    CHECK_RC(sessionstore_options_set_cookie_http_only(NULL, true), null);
    CHECK_RC(sessionstore_options_set_cookie_secure(NULL, true), null);
    CHECK_RC(sessionstore_options_set_cookie_same_site(NULL, SESSIONSTORE_SAME_SITE_LAX), null);
    CHECK_RC(sessionstore_options_set_cookie_partitioned(NULL, true), null);
    CHECK_RC(sessionstore_options_set_prefix(NULL, "p:"), null);
    CHECK_RC(sessionstore_options_set_format(NULL, SESSIONSTORE_FORMAT_JSON), null);
    CHECK_RC(sessionstore_options_set_permanent(NULL, true), null);
    CHECK_RC(sessionstore_options_set_idle_lifetime(NULL, 60), null);
    CHECK_RC(sessionstore_options_set_absolute_lifetime(NULL, 60), null);
    CHECK_RC(sessionstore_options_set_refresh_each_request(NULL, true), null);
    CHECK_RC(sessionstore_options_set_touch_interval(NULL, 60), null);
    CHECK_RC(sessionstore_options_set_concurrency(NULL, SESSIONSTORE_NO_LOST_UPDATES), null);
    CHECK_RC(sessionstore_options_set_max_attempts(NULL, 3), null);
    CHECK_RC(sessionstore_options_set_cleanup_every(NULL, 3), null);
    CHECK_RC(sessionstore_options_set_max_size(NULL, 100), null);

    /* NULL strings. */
    CHECK_RC(sessionstore_options_add_secret(options, NULL), null);
    CHECK_ERROR_MENTIONS("secret is NULL");
    CHECK_RC(sessionstore_options_set_cookie_name(options, NULL), null);
    CHECK_RC(sessionstore_options_set_cookie_domain(options, NULL), null);
    CHECK_RC(sessionstore_options_set_cookie_path(options, NULL), null);
    CHECK_RC(sessionstore_options_set_prefix(options, NULL), null);

    /* Not UTF-8. */
    CHECK_RC(sessionstore_options_add_secret(options, "caf\xe9"), invalid);
    CHECK_ERROR_MENTIONS("not valid UTF-8");
    CHECK_RC(sessionstore_options_set_cookie_name(options, "\xff"), invalid);
    CHECK_RC(sessionstore_options_set_cookie_domain(options, "\xc3"), invalid);
    CHECK_RC(sessionstore_options_set_cookie_path(options, "/\x80"), invalid);
    CHECK_RC(sessionstore_options_set_prefix(options, "\xed\xa0\x80"), invalid);

    /* Longer than SESSIONSTORE_MAX_LEN: refused without reading further. */
    char *huge = malloc(SESSIONSTORE_MAX_LEN + 2);
    memset(huge, 'a', SESSIONSTORE_MAX_LEN + 1);
    huge[SESSIONSTORE_MAX_LEN + 1] = '\0';
    CHECK_RC(sessionstore_options_set_prefix(options, huge), invalid);
    CHECK_ERROR_MENTIONS("longer than");
    huge[SESSIONSTORE_MAX_LEN] = '\0'; /* exactly the maximum is accepted */
    CHECK_OK(sessionstore_options_set_cookie_domain(options, huge));
    free(huge);

    /* Values outside the enums. */
    CHECK_RC(sessionstore_options_set_cookie_mode(options, 3), invalid);
    CHECK_ERROR_MENTIONS("sessionstore_cookie_mode");
    CHECK_RC(sessionstore_options_set_cookie_mode(options, -1), invalid);
    CHECK_RC(sessionstore_options_set_cookie_same_site(options, 4), invalid);
    CHECK_RC(sessionstore_options_set_concurrency(options, 2), invalid);
    CHECK_RC(sessionstore_options_set_format(options, 7), invalid);
    sessionstore_options_free(options);
}

/* Opens a memory manager with one bad option; expects SESSIONSTORE_CONFIG naming `key`. */
static void expect_config_error(sessionstore_options *options, const char *key) {
    sessionstore_manager *manager = (sessionstore_manager *)1;
    CHECK_RC(sessionstore_manager_open("memory://", options, &manager), SESSIONSTORE_CONFIG);
    CHECK_ERROR_MENTIONS(key);
    CHECK(manager == NULL);
    sessionstore_options_free(options);
}

static sessionstore_options *new_options(void) {
    sessionstore_options *options = NULL;
    CHECK_OK(sessionstore_options_new(&options));
    return options;
}

static void test_open_refuses_bad_configuration(void) {
    sessionstore_manager *manager = NULL;
    CHECK_RC(sessionstore_manager_open(NULL, NULL, &manager), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_ERROR_MENTIONS("store_url is NULL");
    CHECK_RC(sessionstore_manager_open("memory://", NULL, NULL), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_manager_open("memory://\xff", NULL, &manager),
             SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_RC(sessionstore_manager_open("not a url", NULL, &manager), SESSIONSTORE_CONFIG);
    CHECK_ERROR_MENTIONS("store URL");
    CHECK_RC(sessionstore_manager_open("nosuchstore://x", NULL, &manager), SESSIONSTORE_CONFIG);
    CHECK_ERROR_MENTIONS("nosuchstore");
    CHECK_RC(sessionstore_manager_open("memory://?bogus=1", NULL, &manager), SESSIONSTORE_CONFIG);
    CHECK_ERROR_MENTIONS("bogus");
    CHECK(manager == NULL);

    sessionstore_options *options = new_options();
    CHECK_OK(sessionstore_options_set_cookie_mode(options, SESSIONSTORE_COOKIE_SIGNED));
    expect_config_error(options, "secret");
    options = new_options();
    CHECK_OK(sessionstore_options_add_secret(options, ""));
    expect_config_error(options, "secret");
    options = new_options();
    CHECK_OK(sessionstore_options_set_cookie_name(options, "bad;name"));
    expect_config_error(options, "cookie_name");
    options = new_options();
    CHECK_OK(sessionstore_options_set_idle_lifetime(options, 0));
    expect_config_error(options, "lifetime");
    options = new_options();
    CHECK_OK(sessionstore_options_set_absolute_lifetime(options, 0));
    expect_config_error(options, "absolute_lifetime");
    options = new_options();
    CHECK_OK(sessionstore_options_set_max_attempts(options, 0));
    expect_config_error(options, "max_attempts");
    options = new_options();
    CHECK_OK(sessionstore_options_set_cleanup_every(options, 0));
    expect_config_error(options, "cleanup_every");
    options = new_options();
    CHECK_OK(sessionstore_options_set_prefix(options, "bad\nprefix"));
    expect_config_error(options, "key_prefix");

    /* A store that cannot be opened is a store error naming the backend. */
    CHECK_RC(sessionstore_manager_open("sqlite:///nonexistent-sessionstore-dir/x/s.db", NULL,
                                       &manager),
             SESSIONSTORE_STORE);
    CHECK_ERROR_MENTIONS("sqlite");
    CHECK(manager == NULL);
}

static void test_cookie_attributes(void) {
    sessionstore_options *options = new_options();
    CHECK_OK(sessionstore_options_add_secret(options, "k"));
    CHECK_OK(sessionstore_options_set_cookie_name(options, "sid"));
    CHECK_OK(sessionstore_options_set_cookie_domain(options, "example.org"));
    CHECK_OK(sessionstore_options_set_cookie_path(options, "/app"));
    CHECK_OK(sessionstore_options_set_cookie_http_only(options, false));
    CHECK_OK(sessionstore_options_set_cookie_secure(options, true));
    CHECK_OK(sessionstore_options_set_cookie_same_site(options, SESSIONSTORE_SAME_SITE_STRICT));
    CHECK_OK(sessionstore_options_set_cookie_partitioned(options, true));
    CHECK_OK(sessionstore_options_set_idle_lifetime(options, 3600));
    sessionstore_manager *manager = open_manager("memory://", options);
    sessionstore_options_free(options);
    sessionstore_session *session = load(manager, NULL);
    CHECK_OK(sessionstore_session_set_i64(session, "n", 1));
    char *cookie = save(session, NULL, NULL);
    CHECK(strncmp(cookie, "sid=", 4) == 0);
    CHECK(strstr(cookie, "; Domain=example.org") != NULL);
    CHECK(strstr(cookie, "; Path=/app") != NULL);
    CHECK(strstr(cookie, "HttpOnly") == NULL);
    CHECK(strstr(cookie, "; Secure") != NULL);
    CHECK(strstr(cookie, "; SameSite=Strict") != NULL);
    CHECK(strstr(cookie, "; Partitioned") != NULL);
    CHECK(strstr(cookie, "; Max-Age=3600") != NULL);
    CHECK(strstr(cookie, "; Expires=") != NULL);
    sessionstore_string_free(cookie);
    sessionstore_manager_free(manager);

    /* Defaults: HttpOnly, SameSite=Lax, Path=/, 31 days, not Secure. */
    manager = memory_manager();
    session = load(manager, NULL);
    CHECK_OK(sessionstore_session_set_i64(session, "n", 1));
    cookie = save(session, NULL, NULL);
    CHECK(strncmp(cookie, "session=", 8) == 0);
    CHECK(strstr(cookie, "; HttpOnly") != NULL);
    CHECK(strstr(cookie, "; SameSite=Lax") != NULL);
    CHECK(strstr(cookie, "; Path=/") != NULL);
    CHECK(strstr(cookie, "; Max-Age=2678400") != NULL);
    CHECK(strstr(cookie, "Secure") == NULL);
    sessionstore_string_free(cookie);
    sessionstore_manager_free(manager);

    /* SameSite=None implies Secure; OMIT leaves the attribute out. */
    const int modes[] = {SESSIONSTORE_SAME_SITE_NONE, SESSIONSTORE_SAME_SITE_OMIT};
    for (int i = 0; i < 2; i++) {
        options = new_options();
        CHECK_OK(sessionstore_options_set_cookie_same_site(options, modes[i]));
        manager = open_manager("memory://", options);
        sessionstore_options_free(options);
        session = load(manager, NULL);
        CHECK_OK(sessionstore_session_set_bool(session, "b", true));
        cookie = save(session, NULL, NULL);
        if (modes[i] == SESSIONSTORE_SAME_SITE_NONE)
            CHECK(strstr(cookie, "; SameSite=None") && strstr(cookie, "; Secure"));
        else
            CHECK(strstr(cookie, "SameSite") == NULL);
        sessionstore_string_free(cookie);
        sessionstore_manager_free(manager);
    }
}

static void test_permanence(void) {
    sessionstore_options *options = new_options();
    CHECK_OK(sessionstore_options_set_permanent(options, false));
    sessionstore_manager *manager = open_manager("memory://", options);
    sessionstore_options_free(options);

    sessionstore_session *session = load(manager, NULL);
    bool permanent = true;
    CHECK_OK(sessionstore_session_is_permanent(session, &permanent));
    CHECK(!permanent);
    CHECK_OK(sessionstore_session_set_string(session, "k", "v"));
    char *cookie = save(session, NULL, NULL);
    CHECK(strstr(cookie, "Max-Age") == NULL && strstr(cookie, "Expires") == NULL);
    char *pair = cookie_pair(cookie);
    sessionstore_string_free(cookie);

    session = load(manager, pair);
    CHECK_OK(sessionstore_session_set_permanent(session, true));
    CHECK_OK(sessionstore_session_is_permanent(session, &permanent));
    CHECK(permanent);
    cookie = save(session, NULL, NULL);
    CHECK(strstr(cookie, "; Max-Age=2678400") != NULL);
    sessionstore_string_free(cookie);

    session = load(manager, pair);
    CHECK_OK(sessionstore_session_is_permanent(session, &permanent));
    CHECK(permanent);
    CHECK_OK(sessionstore_session_set_permanent(session, false));
    CHECK_OK(sessionstore_session_is_permanent(session, &permanent));
    CHECK(!permanent);
    sessionstore_session_free(session);
    free(pair);
    sessionstore_manager_free(manager);
}

static void test_lifetimes_refresh_and_touch(void) {
    /* An absolute lifetime caps the cookie's Max-Age and records _created. */
    sessionstore_options *options = new_options();
    CHECK_OK(sessionstore_options_set_idle_lifetime(options, 3600));
    CHECK_OK(sessionstore_options_set_absolute_lifetime(options, 60));
    sessionstore_manager *manager = open_manager("memory://", options);
    sessionstore_options_free(options);
    sessionstore_session *session = load(manager, NULL);
    CHECK(has_key(session, "_created"));
    CHECK_OK(sessionstore_session_set_i64(session, "n", 1));
    char *cookie = save(session, NULL, NULL);
    const char *max_age = strstr(cookie, "Max-Age=");
    CHECK(max_age != NULL);
    long seconds = max_age ? strtol(max_age + 8, NULL, 10) : 0;
    CHECK(seconds > 0 && seconds <= 60);
    sessionstore_string_free(cookie);
    sessionstore_manager_free(manager);

    /* refresh on, touch interval 0: an unmodified request renews the cookie. */
    options = new_options();
    CHECK_OK(sessionstore_options_set_refresh_each_request(options, true));
    CHECK_OK(sessionstore_options_set_touch_interval(options, 0));
    manager = open_manager("memory://", options);
    sessionstore_options_free(options);
    char *pair = new_session_cookie(manager);
    session = load(manager, pair);
    bool vary = false, ended = true;
    cookie = save(session, &vary, &ended);
    CHECK(cookie != NULL && vary && !ended);
    sessionstore_string_free(cookie);
    free(pair);
    sessionstore_manager_free(manager);

    /* refresh off: an unmodified request sends no cookie, only Vary when the session was read. */
    options = new_options();
    CHECK_OK(sessionstore_options_set_refresh_each_request(options, false));
    manager = open_manager("memory://", options);
    sessionstore_options_free(options);
    pair = new_session_cookie(manager);
    session = load(manager, pair);
    cookie = save(session, &vary, &ended);
    CHECK(cookie == NULL && !vary && !ended);
    session = load(manager, pair);
    CHECK(has_key(session, "user"));
    cookie = save(session, &vary, &ended);
    CHECK(cookie == NULL && vary && !ended);
    free(pair);
    sessionstore_manager_free(manager);
}

/* ---- Flask settings --------------------------------------------------------------------- */

static void test_open_flask(void) {
    char uri[PATH_MAX];
    url_in_tmpdir(uri, sizeof uri, "sqlite:///", "flask.db");
    const char *names[] = {"SESSION_TYPE",       "SQLALCHEMY_DATABASE_URI",
                           "SECRET_KEY",         "SESSION_USE_SIGNER",
                           "SESSION_COOKIE_NAME", "PERMANENT_SESSION_LIFETIME",
                           "SESSION_KEY_PREFIX", "DEBUG"};
    const char *values[] = {"sqlalchemy", uri, "dev-secret", "True", "fsid", "120", "app:", "1"};
    sessionstore_manager *manager = NULL;
    CHECK_OK(sessionstore_manager_open_flask(names, values, 8, &manager));
    sessionstore_session *session = load(manager, NULL);
    CHECK_OK(sessionstore_session_set_string(session, "user", "flask"));
    char *cookie = save(session, NULL, NULL);
    CHECK(strncmp(cookie, "fsid=", 5) == 0);
    CHECK(strstr(cookie, "; Max-Age=120") != NULL);
    /* itsdangerous' format: 43-character id, a dot, a 27-character SHA-1 signature. */
    char *pair = cookie_pair(cookie);
    CHECK(strlen(pair) == strlen("fsid=") + 43 + 1 + 27 && pair[5 + 43] == '.');
    sessionstore_string_free(cookie);
    session = load(manager, pair);
    CHECK(!is_new(session));
    char *user = NULL;
    CHECK_OK(sessionstore_session_get_string(session, "user", &user, NULL));
    CHECK(user && strcmp(user, "flask") == 0);
    sessionstore_string_free(user);
    sessionstore_session_free(session);
    free(pair);
    sessionstore_manager_free(manager);

    /* Errors name the Flask setting. */
    manager = (sessionstore_manager *)1;
    const char *bad_names[] = {"SESSION_TYPE", "SESSION_FOO"};
    const char *bad_values[] = {"filesystem", "1"};
    CHECK_RC(sessionstore_manager_open_flask(bad_names, bad_values, 2, &manager),
             SESSIONSTORE_CONFIG);
    CHECK_ERROR_MENTIONS("SESSION_FOO");
    CHECK(manager == NULL);
    CHECK_RC(sessionstore_manager_open_flask(NULL, NULL, 0, &manager), SESSIONSTORE_CONFIG);
    CHECK_ERROR_MENTIONS("SESSION_TYPE");
    const char *signer_names[] = {"SESSION_TYPE", "SESSION_USE_SIGNER"};
    const char *signer_values[] = {"filesystem", "True"};
    CHECK_RC(sessionstore_manager_open_flask(signer_names, signer_values, 2, &manager),
             SESSIONSTORE_CONFIG);
    CHECK_ERROR_MENTIONS("SECRET_KEY");

    /* Bad arguments. */
    CHECK_RC(sessionstore_manager_open_flask(names, values, 8, NULL), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_manager_open_flask(NULL, values, 1, &manager),
             SESSIONSTORE_NULL_ARGUMENT);
    CHECK_ERROR_MENTIONS("names is NULL");
    CHECK_RC(sessionstore_manager_open_flask(names, NULL, 1, &manager),
             SESSIONSTORE_NULL_ARGUMENT);
    const char *with_null[] = {"filesystem", NULL};
    CHECK_RC(sessionstore_manager_open_flask(bad_names, with_null, 2, &manager),
             SESSIONSTORE_NULL_ARGUMENT);
    CHECK_ERROR_MENTIONS("values[1]");
    const char *not_utf8[] = {"filesystem", "\xff"};
    CHECK_RC(sessionstore_manager_open_flask(bad_names, not_utf8, 2, &manager),
             SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_RC(sessionstore_manager_open_flask(names, values, SESSIONSTORE_MAX_SETTINGS + 1,
                                             &manager),
             SESSIONSTORE_INVALID_ARGUMENT);
    CHECK(manager == NULL);
}

/* ---- the lifecycle ---------------------------------------------------------------------- */

static void test_lifecycle_and_every_value_type(void) {
    sessionstore_manager *manager = memory_manager();
    sessionstore_session *session = load(manager, NULL);
    bool flag = false;
    CHECK(is_new(session));
    CHECK_OK(sessionstore_session_is_empty(session, &flag));
    CHECK(flag);
    CHECK_OK(sessionstore_session_is_modified(session, &flag));
    CHECK(!flag);
    CHECK_OK(sessionstore_session_is_permanent(session, &flag));
    CHECK(flag);

    const uint8_t blob[] = {0, 1, 2, 255};
    const uint8_t nested[] = {0x81, 0xa1, 'a', 0x92, 0x01, 0x02}; /* {"a": [1, 2]} */
    CHECK_OK(sessionstore_session_set_string(session, "s", "h\xc3\xa9llo"));
    CHECK_OK(sessionstore_session_set_bytes(session, "bytes", blob, sizeof blob));
    CHECK_OK(sessionstore_session_set_i64(session, "i", INT64_MIN));
    CHECK_OK(sessionstore_session_set_f64(session, "f", 2.5));
    CHECK_OK(sessionstore_session_set_bool(session, "b", true));
    CHECK_OK(sessionstore_session_set_nil(session, "n"));
    CHECK_OK(sessionstore_session_set_msgpack(session, "nested", nested, sizeof nested));
    CHECK_OK(sessionstore_session_set_string(session, "", "empty keys are keys"));
    CHECK_OK(sessionstore_session_is_modified(session, &flag));
    CHECK(flag);
    CHECK_OK(sessionstore_session_is_empty(session, &flag));
    CHECK(!flag);

    char *id = NULL;
    CHECK_OK(sessionstore_session_id(session, &id));
    CHECK(id && strlen(id) == 43);

    bool vary = false, ended = true;
    char *cookie = save(session, &vary, &ended);
    CHECK(cookie != NULL && vary && !ended);
    char *pair = cookie_pair(cookie);
    /* signed: session=<id>.<signature> */
    CHECK(strncmp(pair + 8, id, 43) == 0 && pair[8 + 43] == '.');
    sessionstore_string_free(cookie);
    sessionstore_string_free(id);

    /* Next request: the cookie among others. */
    char header[256];
    snprintf(header, sizeof header, "theme=dark; %s; lang=en", pair);
    session = load(manager, header);
    CHECK(!is_new(session));
    CHECK_OK(sessionstore_session_is_modified(session, &flag));
    CHECK(!flag);

    char *text = NULL;
    size_t len = 0;
    CHECK_OK(sessionstore_session_get_string(session, "s", &text, &len));
    CHECK(text && strcmp(text, "h\xc3\xa9llo") == 0 && len == 6);
    sessionstore_string_free(text);
    uint8_t *bytes = NULL;
    CHECK_OK(sessionstore_session_get_bytes(session, "bytes", &bytes, &len));
    CHECK(bytes && len == sizeof blob && memcmp(bytes, blob, len) == 0);
    sessionstore_bytes_free(bytes, len);
    int64_t i = 0;
    CHECK_OK(sessionstore_session_get_i64(session, "i", &i));
    CHECK(i == INT64_MIN);
    double f = 0;
    CHECK_OK(sessionstore_session_get_f64(session, "f", &f));
    CHECK(f == 2.5);
    CHECK_OK(sessionstore_session_get_bool(session, "b", &flag));
    CHECK(flag);
    CHECK_OK(sessionstore_session_get_nil(session, "n"));
    CHECK_OK(sessionstore_session_get_msgpack(session, "nested", &bytes, &len));
    CHECK(bytes && len == sizeof nested && memcmp(bytes, nested, len) == 0);
    sessionstore_bytes_free(bytes, len);
    CHECK_OK(sessionstore_session_get_string(session, "", &text, NULL));
    sessionstore_string_free(text);

    sessionstore_value_type type;
    const struct {
        const char *key;
        sessionstore_value_type type;
    } types[] = {{"s", SESSIONSTORE_TYPE_STRING}, {"bytes", SESSIONSTORE_TYPE_BYTES},
                 {"i", SESSIONSTORE_TYPE_INT},    {"f", SESSIONSTORE_TYPE_FLOAT},
                 {"b", SESSIONSTORE_TYPE_BOOL},   {"n", SESSIONSTORE_TYPE_NIL},
                 {"nested", SESSIONSTORE_TYPE_MAP}};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        CHECK_OK(sessionstore_session_get_type(session, types[k].key, &type));
        CHECK(type == types[k].type);
    }

    /* Keys, sorted, reserved ones included; the snapshot outlives the session. */
    sessionstore_keys *keys = NULL;
    CHECK_OK(sessionstore_session_keys(session, &keys));
    const char *expected[] = {"", "_permanent", "b", "bytes", "f", "i", "n", "nested", "s"};
    CHECK(sessionstore_keys_count(keys) == 9);
    sessionstore_session_free(session);
    for (size_t k = 0; k < 9; k++)
        CHECK(sessionstore_keys_get(keys, k) && strcmp(sessionstore_keys_get(keys, k), expected[k]) == 0);
    CHECK(sessionstore_keys_get(keys, 9) == NULL);
    CHECK(sessionstore_keys_get(keys, SIZE_MAX) == NULL);
    sessionstore_keys_free(keys);

    /* Remove and contains. */
    session = load(manager, pair);
    bool existed = false;
    CHECK(has_key(session, "f"));
    CHECK_OK(sessionstore_session_remove(session, "f", &existed));
    CHECK(existed && !has_key(session, "f"));
    CHECK_OK(sessionstore_session_remove(session, "f", &existed));
    CHECK(!existed);
    CHECK_OK(sessionstore_session_remove(session, "b", NULL));
    cookie = save(session, NULL, NULL);
    sessionstore_string_free(cookie);
    session = load(manager, pair);
    CHECK(!has_key(session, "f") && !has_key(session, "b") && has_key(session, "s"));
    sessionstore_session_free(session);

    free(pair);
    sessionstore_manager_free(manager);
}

static void test_value_errors(void) {
    sessionstore_manager *manager = memory_manager();
    sessionstore_session *session = load(manager, NULL);
    const int missing = SESSIONSTORE_NOT_FOUND, mismatch = SESSIONSTORE_TYPE_MISMATCH;
    char *text = (char *)1;
    uint8_t *bytes = (uint8_t *)1;
    size_t len = 99;
    int64_t i = 99;
    double f = 99;
    bool b = true;
    sessionstore_value_type type;

    /* Missing keys; outputs are reset. */
    CHECK_RC(sessionstore_session_get_string(session, "x", &text, &len), missing);
    CHECK(text == NULL && len == 0);
    CHECK_ERROR_MENTIONS("no key \"x\"");
    CHECK_RC(sessionstore_session_get_bytes(session, "x", &bytes, &len), missing);
    CHECK(bytes == NULL);
    CHECK_RC(sessionstore_session_get_i64(session, "x", &i), missing);
    CHECK(i == 0);
    CHECK_RC(sessionstore_session_get_f64(session, "x", &f), missing);
    CHECK_RC(sessionstore_session_get_bool(session, "x", &b), missing);
    CHECK(!b);
    CHECK_RC(sessionstore_session_get_nil(session, "x"), missing);
    CHECK_RC(sessionstore_session_get_msgpack(session, "x", &bytes, &len), missing);
    CHECK_RC(sessionstore_session_get_type(session, "x", &type), missing);

    /* Wrong types. */
    CHECK_OK(sessionstore_session_set_string(session, "s", "text"));
    CHECK_OK(sessionstore_session_set_i64(session, "i", 7));
    CHECK_OK(sessionstore_session_set_f64(session, "f", 1.5));
    CHECK_RC(sessionstore_session_get_i64(session, "s", &i), mismatch);
    CHECK_RC(sessionstore_session_get_i64(session, "f", &i), mismatch);
    CHECK_RC(sessionstore_session_get_string(session, "i", &text, NULL), mismatch);
    CHECK_RC(sessionstore_session_get_bytes(session, "s", &bytes, &len), mismatch);
    CHECK_ERROR_MENTIONS("byte string");
    CHECK_RC(sessionstore_session_get_bool(session, "i", &b), mismatch);
    CHECK_RC(sessionstore_session_get_nil(session, "i"), mismatch);
    CHECK_RC(sessionstore_session_get_f64(session, "s", &f), mismatch);
    CHECK_OK(sessionstore_session_get_f64(session, "i", &f)); /* integers widen, as in Rust */
    CHECK(f == 7.0);

    /* MessagePack in: one well-formed value only. */
    const uint8_t bad[] = {0xd9, 0x05, 'a'}; /* a 5-byte string holding 1 byte */
    const uint8_t truncated[] = {0x92, 0x01};
    const uint8_t trailing[] = {0x01, 0x02};
    CHECK_RC(sessionstore_session_set_msgpack(session, "m", bad, sizeof bad),
             SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("not MessagePack");
    CHECK_RC(sessionstore_session_set_msgpack(session, "m", truncated, 2),
             SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_RC(sessionstore_session_set_msgpack(session, "m", trailing, 2),
             SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("after");
    CHECK_RC(sessionstore_session_set_msgpack(session, "m", NULL, 0), SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_RC(sessionstore_session_set_msgpack(session, "m", NULL, 3), SESSIONSTORE_NULL_ARGUMENT);
    CHECK(!has_key(session, "m"));

    /* Types only MessagePack can carry. */
    const uint8_t timestamp[] = {0xd6, 0xff, 0x65, 0x53, 0xf1, 0x00};
    const uint8_t ext[] = {0xd4, 0x05, 0x00};
    const uint8_t big[] = {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const uint8_t nul_string[] = {0xa3, 'a', 0x00, 'b'};
    const uint8_t array[] = {0x91, 0xc0};
    CHECK_OK(sessionstore_session_set_msgpack(session, "ts", timestamp, sizeof timestamp));
    CHECK_OK(sessionstore_session_get_type(session, "ts", &type));
    CHECK(type == SESSIONSTORE_TYPE_TIMESTAMP);
    CHECK_OK(sessionstore_session_set_msgpack(session, "ext", ext, sizeof ext));
    CHECK_OK(sessionstore_session_get_type(session, "ext", &type));
    CHECK(type == SESSIONSTORE_TYPE_EXT);
    CHECK_OK(sessionstore_session_set_msgpack(session, "arr", array, sizeof array));
    CHECK_OK(sessionstore_session_get_type(session, "arr", &type));
    CHECK(type == SESSIONSTORE_TYPE_ARRAY);
    CHECK_OK(sessionstore_session_set_msgpack(session, "big", big, sizeof big));
    CHECK_OK(sessionstore_session_get_type(session, "big", &type));
    CHECK(type == SESSIONSTORE_TYPE_INT);
    CHECK_RC(sessionstore_session_get_i64(session, "big", &i), mismatch);
    CHECK_OK(sessionstore_session_set_msgpack(session, "nul", nul_string, sizeof nul_string));
    CHECK_RC(sessionstore_session_get_string(session, "nul", &text, &len), mismatch);
    CHECK_ERROR_MENTIONS("NUL");
    CHECK_OK(sessionstore_session_get_msgpack(session, "nul", &bytes, &len));
    CHECK(len == sizeof nul_string && memcmp(bytes, nul_string, len) == 0);
    sessionstore_bytes_free(bytes, len);

    /* Byte buffers. */
    CHECK_OK(sessionstore_session_set_bytes(session, "empty", NULL, 0));
    CHECK_OK(sessionstore_session_get_bytes(session, "empty", &bytes, &len));
    CHECK(bytes == NULL && len == 0);
    CHECK_RC(sessionstore_session_set_bytes(session, "x", NULL, 5), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_session_set_bytes(session, "x", (const uint8_t *)"", SESSIONSTORE_MAX_LEN + 1),
             SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("longer than");

    /* Keys and string values: NULL, not UTF-8, too long. */
    CHECK_RC(sessionstore_session_set_i64(session, NULL, 1), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_ERROR_MENTIONS("key is NULL");
    CHECK_RC(sessionstore_session_set_i64(session, "caf\xe9", 1), SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_RC(sessionstore_session_set_string(session, "k", "\xe2\x82"), SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_RC(sessionstore_session_set_string(session, "k", NULL), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_session_get_i64(session, "\xff", &i), SESSIONSTORE_INVALID_ARGUMENT);
    char long_key[SESSIONSTORE_MAX_KEY_LEN + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    CHECK_RC(sessionstore_session_set_bool(session, long_key, true), SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("longer than 1024");
    long_key[SESSIONSTORE_MAX_KEY_LEN] = '\0';
    CHECK_OK(sessionstore_session_set_bool(session, long_key, true));
    CHECK(!has_key(session, "k"));

    /* incr: a missing key counts as 0; other types and overflow are refused. */
    int64_t value = 0;
    CHECK_OK(sessionstore_session_incr(session, "count", 1, &value));
    CHECK(value == 1);
    CHECK_OK(sessionstore_session_incr(session, "count", 5, &value));
    CHECK(value == 6);
    CHECK_OK(sessionstore_session_incr(session, "count", -10, NULL));
    CHECK_OK(sessionstore_session_get_i64(session, "count", &value));
    CHECK(value == -4);
    CHECK_RC(sessionstore_session_incr(session, "s", 1, &value), mismatch);
    CHECK_OK(sessionstore_session_set_i64(session, "max", INT64_MAX));
    CHECK_RC(sessionstore_session_incr(session, "max", 1, &value), SESSIONSTORE_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("overflows");
    CHECK_OK(sessionstore_session_get_i64(session, "max", &value));
    CHECK(value == INT64_MAX);

    sessionstore_session_free(session);
    sessionstore_manager_free(manager);
}

static void test_null_handles_and_outputs(void) {
    const int null = SESSIONSTORE_NULL_ARGUMENT;
    sessionstore_manager *manager = memory_manager();
    sessionstore_session *session = load(manager, NULL);
    char *text;
    uint8_t *bytes;
    size_t len;
    int64_t i;
    double f;
    bool b;
    sessionstore_value_type type;
    sessionstore_keys *keys;
    sessionstore_saved saved;
    uint64_t count;

    sessionstore_session *refused = (sessionstore_session *)1;
    CHECK_RC(sessionstore_manager_load(NULL, NULL, &refused), null);
    CHECK(refused == NULL);
    CHECK_ERROR_MENTIONS("manager is NULL");
    CHECK_RC(sessionstore_manager_load(manager, NULL, NULL), null);
    refused = (sessionstore_session *)1;
    CHECK_RC(sessionstore_manager_load(manager, "session=\xff", &refused),
             SESSIONSTORE_INVALID_ARGUMENT);
    CHECK(refused == NULL);
    CHECK_RC(sessionstore_manager_purge_expired(NULL, &count), null);
    CHECK_OK(sessionstore_manager_purge_expired(manager, NULL));

    CHECK_RC(sessionstore_session_id(NULL, &text), null);
    CHECK_RC(sessionstore_session_id(session, NULL), null);
    CHECK_RC(sessionstore_session_is_new(NULL, &b), null);
    CHECK_RC(sessionstore_session_is_new(session, NULL), null);
    CHECK_RC(sessionstore_session_is_modified(NULL, &b), null);
    CHECK_RC(sessionstore_session_is_modified(session, NULL), null);
    CHECK_RC(sessionstore_session_is_empty(NULL, &b), null);
    CHECK_RC(sessionstore_session_is_empty(session, NULL), null);
    CHECK_RC(sessionstore_session_is_permanent(NULL, &b), null);
    CHECK_RC(sessionstore_session_is_permanent(session, NULL), null);
    CHECK_RC(sessionstore_session_set_permanent(NULL, true), null);
    CHECK_RC(sessionstore_session_regenerate(NULL), null);
    CHECK_RC(sessionstore_session_destroy(NULL), null);
    CHECK_RC(sessionstore_session_clear(NULL), null);
    CHECK_RC(sessionstore_session_contains(NULL, "k", &b), null);
    CHECK_RC(sessionstore_session_contains(session, NULL, &b), null);
    CHECK_RC(sessionstore_session_contains(session, "k", NULL), null);
    CHECK_RC(sessionstore_session_remove(NULL, "k", &b), null);
    CHECK_RC(sessionstore_session_remove(session, NULL, &b), null);
    CHECK_RC(sessionstore_session_keys(NULL, &keys), null);
    CHECK_RC(sessionstore_session_keys(session, NULL), null);
    CHECK_RC(sessionstore_session_get_type(NULL, "k", &type), null);
    CHECK_RC(sessionstore_session_get_type(session, NULL, &type), null);
    CHECK_RC(sessionstore_session_get_type(session, "k", NULL), null);
    CHECK_RC(sessionstore_session_get_string(NULL, "k", &text, &len), null);
    CHECK_RC(sessionstore_session_get_string(session, NULL, &text, &len), null);
    CHECK_RC(sessionstore_session_get_string(session, "k", NULL, &len), null);
    CHECK_RC(sessionstore_session_get_bytes(NULL, "k", &bytes, &len), null);
    CHECK_RC(sessionstore_session_get_bytes(session, "k", NULL, &len), null);
    CHECK_RC(sessionstore_session_get_bytes(session, "k", &bytes, NULL), null);
    CHECK_RC(sessionstore_session_get_i64(NULL, "k", &i), null);
    CHECK_RC(sessionstore_session_get_i64(session, "k", NULL), null);
    CHECK_RC(sessionstore_session_get_f64(NULL, "k", &f), null);
    CHECK_RC(sessionstore_session_get_f64(session, "k", NULL), null);
    CHECK_RC(sessionstore_session_get_bool(NULL, "k", &b), null);
    CHECK_RC(sessionstore_session_get_bool(session, "k", NULL), null);
    CHECK_RC(sessionstore_session_get_nil(NULL, "k"), null);
    CHECK_RC(sessionstore_session_get_nil(session, NULL), null);
    CHECK_RC(sessionstore_session_get_msgpack(NULL, "k", &bytes, &len), null);
    CHECK_RC(sessionstore_session_get_msgpack(session, "k", NULL, &len), null);
    CHECK_RC(sessionstore_session_get_msgpack(session, "k", &bytes, NULL), null);
    CHECK_RC(sessionstore_session_set_string(NULL, "k", "v"), null);
    CHECK_RC(sessionstore_session_set_bytes(NULL, "k", NULL, 0), null);
    CHECK_RC(sessionstore_session_set_i64(NULL, "k", 1), null);
    CHECK_RC(sessionstore_session_set_f64(NULL, "k", 1), null);
    CHECK_RC(sessionstore_session_set_bool(NULL, "k", 1), null);
    CHECK_RC(sessionstore_session_set_nil(NULL, "k"), null);
    CHECK_RC(sessionstore_session_set_nil(session, NULL), null);
    CHECK_RC(sessionstore_session_set_msgpack(NULL, "k", NULL, 0), null);
    CHECK_RC(sessionstore_session_incr(NULL, "k", 1, &i), null);
    CHECK_RC(sessionstore_session_incr(session, NULL, 1, &i), null);
    saved.set_cookie = (char *)1;
    saved.ended = true;
    CHECK_RC(sessionstore_session_save(NULL, &saved), null);
    CHECK(saved.set_cookie == NULL && !saved.ended); /* outputs are reset first */

    /* save with a NULL output still consumes the session (valgrind sees no leak). */
    CHECK_OK(sessionstore_session_set_i64(session, "k", 1));
    CHECK_RC(sessionstore_session_save(session, NULL), null);
    sessionstore_manager_free(manager);
}

/* ---- cookies from the outside ----------------------------------------------------------- */

static void test_tampered_cookies_give_fresh_sessions(void) {
    sessionstore_manager *manager = memory_manager();
    char *pair = new_session_cookie(manager); /* session=<id>.<sig> */
    const char *value = pair + strlen("session=");
    char id[44];
    memcpy(id, value, 43);
    id[43] = '\0';
    const char *signature = value + 44;

    char flipped[128], bad[8][256];
    snprintf(flipped, sizeof flipped, "%s", signature);
    flipped[0] = flipped[0] == 'A' ? 'B' : 'A';
    snprintf(bad[0], sizeof bad[0], "session=%s.%s", id, flipped);       /* forged signature */
    snprintf(bad[1], sizeof bad[1], "session=%s", id);                   /* signature dropped */
    snprintf(bad[2], sizeof bad[2], "session=%s.%sx", id, signature);    /* signature extended */
    snprintf(bad[3], sizeof bad[3], "session=../../etc/passwd");         /* path traversal */
    snprintf(bad[4], sizeof bad[4], "session=%sA.%s", id, signature);    /* id too long */
    snprintf(bad[5], sizeof bad[5], "session=");                         /* empty */
    snprintf(bad[6], sizeof bad[6], "session=%s.%s", signature, id);     /* swapped */
    snprintf(bad[7], sizeof bad[7], "session=*:{}%%00");                  /* junk */
    for (int k = 0; k < 8; k++) {
        sessionstore_session *session = load(manager, bad[k]);
        CHECK(is_new(session));
        CHECK(!has_key(session, "user"));
        bool vary = false, ended = false;
        char *cookie = save(session, &vary, &ended);
        /* The refused cookie is expired in the browser. */
        CHECK(cookie && strstr(cookie, "Max-Age=0") && ended);
        sessionstore_string_free(cookie);
    }

    /* Another secret's signature is refused too. */
    sessionstore_manager *other = memory_manager();
    sessionstore_session *session = load(manager, pair);
    CHECK(!is_new(session));
    sessionstore_session_free(session);
    char *other_pair = new_session_cookie(other);
    snprintf(bad[0], sizeof bad[0], "session=%s.%s", id, other_pair + strlen("session=") + 44);
    session = load(manager, bad[0]);
    CHECK(is_new(session));
    sessionstore_session_free(session);
    free(other_pair);
    sessionstore_manager_free(other);

    /* The genuine cookie still works. */
    session = load(manager, pair);
    CHECK(has_key(session, "user"));
    sessionstore_session_free(session);
    free(pair);
    sessionstore_manager_free(manager);
}

static void test_secret_rotation(void) {
    char url[PATH_MAX];
    url_in_tmpdir(url, sizeof url, "sqlite://", "rotation.db");
    sessionstore_options *options = new_options();
    CHECK_OK(sessionstore_options_add_secret(options, "old secret"));
    sessionstore_manager *old_manager = open_manager(url, options);
    sessionstore_options_free(options);
    options = new_options();
    CHECK_OK(sessionstore_options_add_secret(options, "new secret"));
    CHECK_OK(sessionstore_options_add_secret(options, "old secret"));
    sessionstore_manager *new_manager = open_manager(url, options);
    sessionstore_options_free(options);

    char *old_cookie = new_session_cookie(old_manager);
    sessionstore_session *session = load(new_manager, old_cookie);
    CHECK(!is_new(session) && has_key(session, "user")); /* old cookies still verify */
    sessionstore_session_free(session);

    char *new_cookie = new_session_cookie(new_manager);
    session = load(old_manager, new_cookie);
    CHECK(is_new(session)); /* the old configuration does not know the new secret */
    sessionstore_session_free(session);
    free(old_cookie);
    free(new_cookie);
    sessionstore_manager_free(old_manager);
    sessionstore_manager_free(new_manager);
}

/* ---- regenerate, destroy, clear --------------------------------------------------------- */

static void test_regenerate_destroy_clear(void) {
    sessionstore_manager *manager = memory_manager();
    char *pair = new_session_cookie(manager);

    sessionstore_session *session = load(manager, pair);
    CHECK_OK(sessionstore_session_regenerate(session));
    char *cookie = save(session, NULL, NULL);
    char *new_pair = cookie_pair(cookie);
    sessionstore_string_free(cookie);
    CHECK(strcmp(pair, new_pair) != 0);
    session = load(manager, pair);
    CHECK(is_new(session)); /* the old id is gone */
    sessionstore_session_free(session);
    session = load(manager, new_pair);
    CHECK(has_key(session, "user")); /* the data moved */
    sessionstore_session_free(session);

    /* Freed without saving: nothing is written. */
    session = load(manager, new_pair);
    CHECK_OK(sessionstore_session_set_string(session, "unsaved", "x"));
    sessionstore_session_free(session);
    session = load(manager, new_pair);
    CHECK(!has_key(session, "unsaved"));

    /* destroy: record deleted, cookie expired. */
    CHECK_OK(sessionstore_session_destroy(session));
    bool vary = false, ended = false;
    cookie = save(session, &vary, &ended);
    CHECK(cookie && strstr(cookie, "Max-Age=0") && ended);
    sessionstore_string_free(cookie);
    session = load(manager, new_pair);
    CHECK(is_new(session));
    sessionstore_session_free(session);
    free(new_pair);

    /* clear: the session ends unless something is written afterwards. */
    session = load(manager, pair);
    sessionstore_session_free(session);
    free(pair);
    pair = new_session_cookie(manager);
    session = load(manager, pair);
    CHECK_OK(sessionstore_session_clear(session));
    CHECK(!has_key(session, "user"));
    cookie = save(session, NULL, &ended);
    CHECK(cookie && strstr(cookie, "Max-Age=0") && ended);
    sessionstore_string_free(cookie);
    session = load(manager, pair);
    CHECK(is_new(session));
    sessionstore_session_free(session);
    free(pair);
    sessionstore_manager_free(manager);
}

/* ---- concurrent requests ---------------------------------------------------------------- */

static void test_concurrent_saves(void) {
    /* No lost updates (the default): both requests' changes stay. */
    sessionstore_manager *manager = memory_manager();
    char *pair = new_session_cookie(manager);
    sessionstore_session *first = load(manager, pair);
    sessionstore_session *second = load(manager, pair);
    CHECK_OK(sessionstore_session_set_i64(first, "a", 1));
    CHECK_OK(sessionstore_session_incr(first, "n", 1, NULL));
    CHECK_OK(sessionstore_session_set_i64(second, "b", 2));
    CHECK_OK(sessionstore_session_incr(second, "n", 1, NULL));
    sessionstore_string_free(save(first, NULL, NULL));
    sessionstore_string_free(save(second, NULL, NULL));
    sessionstore_session *session = load(manager, pair);
    int64_t n = 0;
    CHECK(has_key(session, "a") && has_key(session, "b"));
    CHECK_OK(sessionstore_session_get_i64(session, "n", &n));
    CHECK(n == 2);
    sessionstore_session_free(session);

    /* A logout meanwhile is not undone by a concurrent save. */
    first = load(manager, pair);
    second = load(manager, pair);
    CHECK_OK(sessionstore_session_destroy(first));
    sessionstore_string_free(save(first, NULL, NULL));
    CHECK_OK(sessionstore_session_set_i64(second, "late", 1));
    bool ended = false;
    char *cookie = save(second, NULL, &ended);
    CHECK(ended && cookie && strstr(cookie, "Max-Age=0"));
    sessionstore_string_free(cookie);
    session = load(manager, pair);
    CHECK(is_new(session));
    sessionstore_session_free(session);
    free(pair);
    sessionstore_manager_free(manager);

    /* One attempt only: a conflicting save gives up with SESSIONSTORE_CONTENTION. */
    sessionstore_options *options = new_options();
    CHECK_OK(sessionstore_options_set_max_attempts(options, 1));
    manager = open_manager("memory://", options);
    sessionstore_options_free(options);
    pair = new_session_cookie(manager);
    first = load(manager, pair);
    second = load(manager, pair);
    CHECK_OK(sessionstore_session_incr(first, "n", 1, NULL));
    CHECK_OK(sessionstore_session_incr(second, "n", 1, NULL));
    sessionstore_string_free(save(first, NULL, NULL));
    sessionstore_saved saved;
    CHECK_RC(sessionstore_session_save(second, &saved), SESSIONSTORE_CONTENTION);
    CHECK(saved.set_cookie == NULL);
    CHECK_ERROR_MENTIONS("conflicting");
    free(pair);
    sessionstore_manager_free(manager);

    /* Last writer wins (Flask-Session's behaviour): the first request's change is lost. */
    options = new_options();
    CHECK_OK(sessionstore_options_set_concurrency(options, SESSIONSTORE_LAST_WRITER_WINS));
    manager = open_manager("memory://", options);
    sessionstore_options_free(options);
    pair = new_session_cookie(manager);
    first = load(manager, pair);
    second = load(manager, pair);
    CHECK_OK(sessionstore_session_set_i64(first, "a", 1));
    CHECK_OK(sessionstore_session_set_i64(second, "b", 2));
    sessionstore_string_free(save(first, NULL, NULL));
    sessionstore_string_free(save(second, NULL, NULL));
    session = load(manager, pair);
    CHECK(!has_key(session, "a") && has_key(session, "b"));
    sessionstore_session_free(session);
    free(pair);
    sessionstore_manager_free(manager);
}

/* ---- stores, formats, limits ------------------------------------------------------------ */

static void test_stores_formats_and_limits(void) {
    /* SQLite, JSON format, a key prefix. */
    char url[PATH_MAX];
    url_in_tmpdir(url, sizeof url, "sqlite://", "json.db");
    sessionstore_options *options = new_options();
    CHECK_OK(sessionstore_options_set_format(options, SESSIONSTORE_FORMAT_JSON));
    CHECK_OK(sessionstore_options_set_prefix(options, "c-test:"));
    CHECK_OK(sessionstore_options_set_cookie_mode(options, SESSIONSTORE_COOKIE_PLAIN));
    sessionstore_manager *manager = open_manager(url, options);
    sessionstore_options_free(options);
    sessionstore_session *session = load(manager, NULL);
    CHECK_OK(sessionstore_session_set_string(session, "user", "json"));
    CHECK_OK(sessionstore_session_set_f64(session, "f", 0.25));
    char *cookie = save(session, NULL, NULL);
    char *pair = cookie_pair(cookie);
    CHECK(strlen(pair) == strlen("session=") + 43); /* plain: the bare id */
    sessionstore_string_free(cookie);
    session = load(manager, pair);
    double f = 0;
    CHECK_OK(sessionstore_session_get_f64(session, "f", &f));
    CHECK(f == 0.25);
    /* JSON cannot hold a NaN: the save refuses it. */
    CHECK_OK(sessionstore_session_set_f64(session, "f", NAN));
    sessionstore_saved saved;
    CHECK_RC(sessionstore_session_save(session, &saved), SESSIONSTORE_TYPE_MISMATCH);
    CHECK_ERROR_MENTIONS("JSON");
    free(pair);
    sessionstore_manager_free(manager);

    /* Filesystem store, through its URL. */
    url_in_tmpdir(url, sizeof url, "file://", "files");
    manager = open_manager(url, NULL);
    pair = new_session_cookie(manager);
    session = load(manager, pair);
    CHECK(has_key(session, "user"));
    sessionstore_session_free(session);
    free(pair);
    sessionstore_manager_free(manager);

    /* A session above max_size is refused and nothing is written. */
    options = new_options();
    CHECK_OK(sessionstore_options_set_max_size(options, 64));
    manager = open_manager("memory://", options);
    sessionstore_options_free(options);
    session = load(manager, NULL);
    char large[101];
    memset(large, 'x', 100);
    large[100] = '\0';
    CHECK_OK(sessionstore_session_set_string(session, "large", large));
    CHECK_RC(sessionstore_session_save(session, &saved), SESSIONSTORE_TOO_LARGE);
    CHECK_ERROR_MENTIONS("maximum");
    sessionstore_manager_free(manager);

    /* Expiry: a record past its lifetime is invisible, then purged. */
    url_in_tmpdir(url, sizeof url, "sqlite://", "expiry.db");
    options = new_options();
    CHECK_OK(sessionstore_options_set_idle_lifetime(options, 1));
    CHECK_OK(sessionstore_options_set_cleanup_every(options, 1000));
    manager = open_manager(url, options);
    sessionstore_options_free(options);
    pair = new_session_cookie(manager);
    sleep(2);
    session = load(manager, pair);
    CHECK(is_new(session));
    sessionstore_session_free(session);
    uint64_t purged = 0;
    CHECK_OK(sessionstore_manager_purge_expired(manager, &purged));
    CHECK(purged == 1);
    free(pair);
    sessionstore_manager_free(manager);
}

static void test_sessions_outlive_their_manager_handle(void) {
    sessionstore_manager *manager = memory_manager();
    char *pair = new_session_cookie(manager);
    sessionstore_session *session = load(manager, pair);
    sessionstore_manager_free(manager); /* the session keeps the store alive */
    CHECK(has_key(session, "user"));
    CHECK_OK(sessionstore_session_set_i64(session, "after", 1));
    char *cookie = save(session, NULL, NULL);
    sessionstore_string_free(cookie);
    free(pair);
}

static void test_metrics(void) {
    sessionstore_manager *manager = NULL;
    CHECK_OK(sessionstore_manager_open("memory://?metrics=on", NULL, &manager));
    char *pair = new_session_cookie(manager);
    sessionstore_session *session = load(manager, pair);
    sessionstore_session_free(session);
    sessionstore_stats stats;
    CHECK_OK(sessionstore_manager_stats(manager, &stats));
    CHECK(stats.loads_no_cookie == 1);
    CHECK(stats.loads_hit == 1);
    CHECK(stats.saves_created == 1);
    CHECK(stats.store_calls[0] == 1); /* one store load */
    uint64_t bucketed = 0;
    for (size_t i = 0; i < SESSIONSTORE_STATS_BUCKETS; i++)
        bucketed += stats.store_latency_buckets[0][i];
    CHECK(bucketed == 1);
    char *text = NULL;
    CHECK_OK(sessionstore_manager_metrics_text(manager, &text));
    CHECK(strstr(text, "sessionstore_loads_total{backend=\"memory\",outcome=\"hit\"} 1\n") != NULL);
    sessionstore_string_free(text);
    CHECK_RC(sessionstore_manager_stats(manager, NULL), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_manager_metrics_text(NULL, &text), SESSIONSTORE_NULL_ARGUMENT);
    CHECK(text == NULL);
    sessionstore_manager_free(manager);
    free(pair);

    CHECK_OK(sessionstore_manager_open("memory://", NULL, &manager));
    CHECK_RC(sessionstore_manager_stats(manager, &stats), SESSIONSTORE_CONFIG);
    CHECK_ERROR_MENTIONS("metrics=on");
    CHECK_RC(sessionstore_manager_metrics_text(manager, &text), SESSIONSTORE_CONFIG);
    sessionstore_manager_free(manager);
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_version_and_result_names();
    test_last_error();
    test_free_functions_accept_null();
    test_options_refuse_bad_arguments();
    test_open_refuses_bad_configuration();
    test_cookie_attributes();
    test_permanence();
    test_lifetimes_refresh_and_touch();
    test_open_flask();
    test_lifecycle_and_every_value_type();
    test_value_errors();
    test_null_handles_and_outputs();
    test_tampered_cookies_give_fresh_sessions();
    test_secret_rotation();
    test_regenerate_destroy_clear();
    test_concurrent_saves();
    test_stores_formats_and_limits();
    test_sessions_outlive_their_manager_handle();
    test_metrics();
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    CHECK(only_this_thread_left());
    return check_summary("test_api");
}
