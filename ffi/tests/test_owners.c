/* Sessions of an owner through the C API: sessionstore_session_set_owner(), _owner(),
 * _id_hint(), sessionstore_manager_sessions_of() and _end_sessions_of(), with the argument
 * errors. Uses the memory store; tests/integration/owners.rs covers every store. Run
 * natively and under valgrind by the test command. */
#define _POSIX_C_SOURCE 200809L /* strdup, nanosleep (check.h) */
#include <stdlib.h>

#include "check.h"

/* Logs a new device in as `owner`; returns the `name=value` cookie (to free) and puts the
 * session id in `*id` (to free). */
static char *log_in(sessionstore_manager *manager, const char *owner, char **id) {
    sessionstore_session *session = NULL;
    CHECK_OK(sessionstore_manager_load(manager, NULL, &session));
    CHECK_OK(sessionstore_session_set_owner(session, owner));
    char *bound = NULL;
    CHECK_OK(sessionstore_session_owner(session, &bound));
    CHECK(bound != NULL && strcmp(bound, owner) == 0);
    sessionstore_string_free(bound);
    CHECK_OK(sessionstore_session_id(session, id));
    sessionstore_saved saved;
    CHECK_OK(sessionstore_session_save(session, &saved));
    CHECK(saved.set_cookie != NULL);
    char *cookie = strdup(saved.set_cookie);
    cookie[strcspn(cookie, ";")] = '\0';
    sessionstore_string_free(saved.set_cookie);
    return cookie;
}

/* Whether the next request with `cookie` is anonymous. */
static bool anonymous(sessionstore_manager *manager, const char *cookie) {
    sessionstore_session *session = NULL;
    CHECK_OK(sessionstore_manager_load(manager, cookie, &session));
    bool is_new = false;
    CHECK_OK(sessionstore_session_is_new(session, &is_new));
    sessionstore_session_free(session);
    return is_new;
}

int main(void) {
    sessionstore_manager *manager = NULL;
    CHECK_OK(sessionstore_manager_open("memory://?max_sessions_per_owner=3", NULL, &manager));

    /* The cap through the options: one session per owner, the older one ended. */
    sessionstore_options *options = NULL;
    CHECK_OK(sessionstore_options_new(&options));
    CHECK_RC(sessionstore_options_set_max_sessions_per_owner(NULL, 1), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_OK(sessionstore_options_set_max_sessions_per_owner(options, 0));
    sessionstore_manager *capped = NULL;
    CHECK_RC(sessionstore_manager_open("memory://", options, &capped), SESSIONSTORE_CONFIG);
    CHECK_OK(sessionstore_options_set_max_sessions_per_owner(options, 1));
    CHECK_OK(sessionstore_manager_open("memory://", options, &capped));
    sessionstore_options_free(options);
    char *older_id = NULL, *newer_id = NULL;
    char *older = log_in(capped, "7", &older_id);
    char *newer = log_in(capped, "7", &newer_id);
    CHECK(anonymous(capped, older));
    CHECK(!anonymous(capped, newer));
    free(older);
    free(newer);
    sessionstore_string_free(older_id);
    sessionstore_string_free(newer_id);
    sessionstore_manager_free(capped);

    char *ids[3];
    char *cookies[3];
    for (int i = 0; i < 3; i++)
        cookies[i] = log_in(manager, "42", &ids[i]);

    /* The list: three entries, the caller's hint among them, no id in it. */
    char *list = NULL;
    CHECK_OK(sessionstore_manager_sessions_of(manager, "42", &list));
    CHECK(list != NULL && list[0] == '[');
    int entries = 0;
    for (const char *at = list; (at = strstr(at, "\"id_hint\"")) != NULL; at++)
        entries++;
    CHECK(entries == 3);
    for (int i = 0; i < 3; i++)
        CHECK(strstr(list, ids[i]) == NULL);
    sessionstore_session *current = NULL;
    CHECK_OK(sessionstore_manager_load(manager, cookies[0], &current));
    char *hint = NULL;
    CHECK_OK(sessionstore_session_id_hint(current, &hint));
    CHECK(hint != NULL && strlen(hint) == 8 && strstr(list, hint) != NULL);
    sessionstore_string_free(hint);
    sessionstore_string_free(list);

    /* Log out everywhere but here. */
    uint64_t ended = 0;
    CHECK_OK(sessionstore_manager_end_sessions_of(manager, "42", ids[0], &ended));
    CHECK(ended == 2);
    CHECK(!anonymous(manager, cookies[0]));
    CHECK(anonymous(manager, cookies[1]));
    CHECK(anonymous(manager, cookies[2]));
    CHECK_OK(sessionstore_manager_end_sessions_of(manager, "42", NULL, NULL));
    CHECK(anonymous(manager, cookies[0]));
    CHECK_OK(sessionstore_manager_sessions_of(manager, "42", &list));
    CHECK(strcmp(list, "[]") == 0);
    sessionstore_string_free(list);

    /* An unbound session has no owner; bad arguments change nothing. */
    sessionstore_session_free(current);
    CHECK_OK(sessionstore_manager_load(manager, NULL, &current));
    char *owner = (char *)"unchanged";
    CHECK_OK(sessionstore_session_owner(current, &owner));
    CHECK(owner == NULL);
    CHECK_RC(sessionstore_session_set_owner(current, ""), SESSIONSTORE_TYPE_MISMATCH);
    CHECK_RC(sessionstore_session_set_owner(current, NULL), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_session_set_owner(NULL, "42"), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_session_owner(current, NULL), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_session_id_hint(NULL, &hint), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_manager_sessions_of(NULL, "42", &list), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_manager_sessions_of(manager, NULL, &list), SESSIONSTORE_NULL_ARGUMENT);
    CHECK_RC(sessionstore_manager_sessions_of(manager, "", &list), SESSIONSTORE_TYPE_MISMATCH);
    CHECK(list == NULL);
    CHECK_RC(sessionstore_manager_end_sessions_of(manager, "42", "not an id", &ended),
             SESSIONSTORE_INVALID_ARGUMENT);
    CHECK(ended == 0);
    CHECK_RC(sessionstore_manager_end_sessions_of(NULL, "42", NULL, NULL),
             SESSIONSTORE_NULL_ARGUMENT);
    sessionstore_session_free(current);

    for (int i = 0; i < 3; i++) {
        sessionstore_string_free(ids[i]);
        free(cookies[i]);
    }
    sessionstore_manager_free(manager);
    CHECK(only_this_thread_left());
    return check_summary("test_owners");
}
