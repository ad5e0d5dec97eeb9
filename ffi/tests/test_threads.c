/* No lost updates across threads: 8 pthreads share one manager and one session cookie, each
 * running 1000 requests that increment the same key; the count must end at exactly 8000, on
 * the memory store and on SQLite. Run under valgrind by the test command. */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

#define THREADS 8
#define REQUESTS 1000

struct job {
    const sessionstore_manager *manager;
    const char *cookie;
    int failures;
};

/* One request: load the session from the cookie, increment, save. Returns the step that
 * failed, NULL on success. */
static const char *one_request(const sessionstore_manager *manager, const char *cookie) {
    sessionstore_session *session = NULL;
    if (sessionstore_manager_load(manager, cookie, &session) != SESSIONSTORE_OK)
        return "load";
    if (sessionstore_session_incr(session, "hits", 1, NULL) != SESSIONSTORE_OK) {
        sessionstore_session_free(session);
        return "incr";
    }
    sessionstore_saved saved;
    if (sessionstore_session_save(session, &saved) != SESSIONSTORE_OK)
        return "save";
    sessionstore_string_free(saved.set_cookie);
    return saved.ended ? "save (the session ended)" : NULL;
}

static void *worker(void *arg) {
    struct job *job = arg;
    for (int i = 0; i < REQUESTS; i++) {
        const char *failed = one_request(job->manager, job->cookie);
        if (failed) {
            job->failures++;
            fprintf(stderr, "request failed in %s: %s\n", failed, sessionstore_last_error());
        }
    }
    return NULL;
}

static void increments_are_never_lost(const char *url) {
    sessionstore_options *options = NULL;
    CHECK_OK(sessionstore_options_new(&options));
    CHECK_OK(sessionstore_options_add_secret(options, "thread test secret"));
    sessionstore_manager *manager = NULL;
    CHECK_OK(sessionstore_manager_open(url, options, &manager));
    sessionstore_options_free(options);
    if (!manager)
        return;

    /* The first request creates the session. */
    sessionstore_session *session = NULL;
    CHECK_OK(sessionstore_manager_load(manager, NULL, &session));
    CHECK_OK(sessionstore_session_set_i64(session, "hits", 0));
    sessionstore_saved saved;
    CHECK_OK(sessionstore_session_save(session, &saved));
    char cookie[256];
    snprintf(cookie, sizeof cookie, "%.*s", (int)strcspn(saved.set_cookie, ";"),
             saved.set_cookie);
    sessionstore_string_free(saved.set_cookie);

    pthread_t threads[THREADS];
    struct job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (struct job){manager, cookie, 0};
        CHECK(pthread_create(&threads[t], NULL, worker, &jobs[t]) == 0);
    }
    int failures = 0;
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
        failures += jobs[t].failures;
    }
    CHECK(failures == 0);

    int64_t hits = 0;
    CHECK_OK(sessionstore_manager_load(manager, cookie, &session));
    CHECK_OK(sessionstore_session_get_i64(session, "hits", &hits));
    printf("%s: %d threads x %d increments = %lld\n", url, THREADS, REQUESTS, (long long)hits);
    CHECK(hits == THREADS * REQUESTS);
    sessionstore_session_free(session);
    sessionstore_manager_free(manager);
}

/* Usage: test_threads [SQLITE_QUERY], e.g. "busy_timeout=60": parameters for the SQLite URL. */
int main(int argc, char **argv) {
    char dir[] = "/tmp/sessionstore-c-threads-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    char db[PATH_MAX], url[2 * PATH_MAX];
    snprintf(db, sizeof db, "%s/threads.db", dir);
    snprintf(url, sizeof url, "sqlite://%s%s%s", db, argc > 1 ? "?" : "", argc > 1 ? argv[1] : "");

    increments_are_never_lost("memory://");
    increments_are_never_lost(url);

    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char path[PATH_MAX + 8];
        snprintf(path, sizeof path, "%s%s", db, suffixes[i]);
        unlink(path);
    }
    rmdir(dir);
    CHECK(only_this_thread_left());
    return check_summary("test_threads");
}
