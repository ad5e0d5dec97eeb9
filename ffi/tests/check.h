/* A minimal test harness for the C tests: CHECK counts and reports, check_summary() prints
 * "N passed, N failed" and gives the exit status. */
#ifndef SESSIONSTORE_CHECK_H
#define SESSIONSTORE_CHECK_H

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sessionstore.h"

static int checks_passed, checks_failed;

static void check_report(int ok, const char *file, int line, const char *what) {
    if (ok) {
        checks_passed++;
        return;
    }
    checks_failed++;
    fprintf(stderr, "%s:%d: failed: %s (last error: %s)\n", file, line, what,
            sessionstore_last_error());
}

/* Checks a condition. */
#define CHECK(cond) check_report((cond) ? 1 : 0, __FILE__, __LINE__, #cond)

/* Checks that a call returns the expected sessionstore_result. */
#define CHECK_RC(call, expected)                                                             \
    do {                                                                                     \
        int check_rc_ = (int)(call);                                                         \
        if (check_rc_ != (int)(expected))                                                    \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s\n", __FILE__, __LINE__,      \
                    #call, sessionstore_result_name(check_rc_),                              \
                    sessionstore_result_name((int)(expected)));                              \
        check_report(check_rc_ == (int)(expected), __FILE__, __LINE__, #call);               \
    } while (0)

/* Checks that a call succeeds. */
#define CHECK_OK(call) CHECK_RC(call, SESSIONSTORE_OK)

/* Checks that the last error message mentions `text`. */
#define CHECK_ERROR_MENTIONS(text) CHECK(strstr(sessionstore_last_error(), (text)) != NULL)

/* Whether, within 10 s, every thread the library started (a store's pool threads) has ended
 * and only the calling thread is left: freeing the last handle releases everything. */
static int only_this_thread_left(void) {
    for (int attempt = 0; attempt < 1000; attempt++) {
        FILE *status = fopen("/proc/self/status", "r");
        char line[256];
        int threads = 0;
        while (status && fgets(line, sizeof line, status))
            if (sscanf(line, "Threads: %d", &threads) == 1)
                break;
        if (status)
            fclose(status);
        if (threads == 1)
            return 1;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return 0;
}

/* Prints the totals; returns the process exit status. */
static int check_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, checks_passed, checks_failed);
    return checks_failed == 0 && checks_passed > 0 ? 0 : 1;
}

#endif
