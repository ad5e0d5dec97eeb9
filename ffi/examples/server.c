/* The demo web app of examples/demo.rs, in C on libmicrohttpd, with the same HTTP contract:
 *
 *   GET  /whoami               {"user": <string or null>, "visits": <int>}, changes nothing
 *   GET  /visit                increments visits (sessionstore_session_incr: concurrent
 *                              visits all count), then answers like /whoami
 *   POST /login  (user=NAME)   new session id, sets user and binds the session to it as its
 *                              owner (unless over 256 bytes or with NUL); 400 {"error": ...}
 *                              without a name
 *   POST /logout               destroys the session: {"user": null, "visits": 0}
 *   GET  /sessions             the user's sessions: {"user": <string or null>, "sessions":
 *                              [{"id_hint", "bound_at", "expires_at", "current"}]}
 *   POST /logout-all           ends the user's other sessions: {"ended": <count>}
 *   GET  /metrics              the manager's metrics in the Prometheus text format (no
 *                              session; metrics are turned on as in the demo)
 *   anything else              404, empty body
 *   a store failure            503 {"error": "<message>"}
 *
 * and the same flags and defaults: --listen 127.0.0.1:8000, --store sqlite:demo-sessions.db,
 * --secret S, --cookie-mode plain|signed|flask, --cookie-name NAME, --prefix P. Pointed at the
 * same store with the same secret, this server and the Rust demo share their sessions.
 *
 * Build: cc server.c $(pkg-config --cflags --libs sessionstore libmicrohttpd)
 * Stop with SIGINT or SIGTERM. Request bodies are limited to 1 MiB (413 above).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <sessionstore.h>

#define USAGE                                                                                \
    "usage: demo [--listen ADDR] [--store URL] [--secret S] "                                \
    "[--cookie-mode plain|signed|flask] [--cookie-name NAME] [--prefix P]"
#define MAX_BODY (1 << 20)
#define THREADS 8

struct options {
    const char *listen, *store, *secret, *cookie_name, *prefix;
    int cookie_mode; /* a sessionstore_cookie_mode, or -1 when not given */
};

/* ---- a growable string ------------------------------------------------------------------ */

struct buffer {
    char *data;
    size_t len, cap;
    bool failed; /* out of memory */
};

static void append_bytes(struct buffer *b, const char *bytes, size_t n) {
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *data = realloc(b->data, cap);
        if (!data) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void append(struct buffer *b, const char *text) { append_bytes(b, text, strlen(text)); }

/* A JSON string, escaped exactly as serde_json escapes it. */
static void append_json_string(struct buffer *b, const char *text, size_t len) {
    static const char hex[] = "0123456789abcdef";
    append(b, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        char escape[7] = {0};
        switch (c) {
        case '"': strcpy(escape, "\\\""); break;
        case '\\': strcpy(escape, "\\\\"); break;
        case '\b': strcpy(escape, "\\b"); break;
        case '\f': strcpy(escape, "\\f"); break;
        case '\n': strcpy(escape, "\\n"); break;
        case '\r': strcpy(escape, "\\r"); break;
        case '\t': strcpy(escape, "\\t"); break;
        default:
            if (c < 0x20) {
                memcpy(escape, "\\u00", 4);
                escape[4] = hex[c >> 4];
                escape[5] = hex[c & 15];
            }
        }
        if (escape[0])
            append(b, escape);
        else
            append_bytes(b, (const char *)&c, 1);
    }
    append(b, "\"");
}

/* ---- application/x-www-form-urlencoded, decoded as the url crate decodes it --------------- */

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int utf8_width(unsigned char b) {
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF)
        return 3;
    if (b >= 0xF0 && b <= 0xF4)
        return 4;
    return 0;
}

/* Whether `second` may follow the lead byte `b` of a 3- or 4-byte sequence. */
static bool valid_second(unsigned char b, unsigned char second) {
    switch (b) {
    case 0xE0: return second >= 0xA0 && second <= 0xBF;
    case 0xED: return second >= 0x80 && second <= 0x9F;
    case 0xF0: return second >= 0x90 && second <= 0xBF;
    case 0xF4: return second >= 0x80 && second <= 0x8F;
    default: return second >= 0x80 && second <= 0xBF;
    }
}

/* Appends `src` with each maximal invalid UTF-8 subsequence replaced by U+FFFD, as Rust's
 * String::from_utf8_lossy does. */
static void append_lossy_utf8(struct buffer *b, const unsigned char *src, size_t len) {
    size_t pos = 0;
    while (pos < len) {
        size_t i = pos, valid_up_to = pos;
        while (i < len) {
            unsigned char lead = src[i++];
            int width = utf8_width(lead);
            if (width == 0)
                break;
            if (width > 1) {
                if (i >= len || !(width == 2 ? src[i] >= 0x80 && src[i] <= 0xBF
                                             : valid_second(lead, src[i])))
                    break;
                i++;
                int k = 2;
                for (; k < width; k++) {
                    if (i >= len || src[i] < 0x80 || src[i] > 0xBF)
                        break;
                    i++;
                }
                if (k < width)
                    break;
            }
            valid_up_to = i;
        }
        append_bytes(b, (const char *)src + pos, valid_up_to - pos);
        if (i > valid_up_to)
            append(b, "\xEF\xBF\xBD");
        pos = i;
    }
}

/* Decodes one name or value: '+' is a space, %XX a byte, then lossy UTF-8. */
static void decode_form_part(struct buffer *out, const char *part, size_t len) {
    unsigned char *bytes = malloc(len + 1);
    if (!bytes) {
        out->failed = true;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)part[i];
        if (c == '+') {
            bytes[n++] = ' ';
        } else if (c == '%' && i + 2 < len && hex_value((unsigned char)part[i + 1]) >= 0 &&
                   hex_value((unsigned char)part[i + 2]) >= 0) {
            bytes[n++] = (unsigned char)(hex_value((unsigned char)part[i + 1]) * 16 +
                                         hex_value((unsigned char)part[i + 2]));
            i += 2;
        } else {
            bytes[n++] = c;
        }
    }
    append_lossy_utf8(out, bytes, n);
    free(bytes);
}

/* Finds the first field named `wanted` in a form body; its decoded value goes to `out`. */
static bool form_field(const char *body, size_t len, const char *wanted, struct buffer *out) {
    size_t start = 0;
    while (start < len) {
        const char *piece = body + start;
        const char *amp = memchr(piece, '&', len - start);
        size_t piece_len = amp ? (size_t)(amp - piece) : len - start;
        start += piece_len + 1;
        if (piece_len == 0)
            continue;
        const char *eq = memchr(piece, '=', piece_len);
        size_t name_len = eq ? (size_t)(eq - piece) : piece_len;
        struct buffer name = {0};
        decode_form_part(&name, piece, name_len);
        bool match = !name.failed && name.len == strlen(wanted) &&
                     memcmp(name.data ? name.data : "", wanted, name.len) == 0;
        free(name.data);
        if (match) {
            if (eq)
                decode_form_part(out, eq + 1, piece_len - name_len - 1);
            return true;
        }
    }
    return false;
}

/* ---- MessagePack strings, for values holding a NUL byte (which C strings cannot) --------- */

static bool set_string_bytes(sessionstore_session *session, const char *key, const char *text,
                             size_t len) {
    if (!memchr(text, '\0', len))
        return sessionstore_session_set_string(session, key, text) == SESSIONSTORE_OK;
    uint8_t *packed = malloc(len + 5);
    if (!packed)
        return false;
    size_t head;
    if (len < 32) {
        packed[0] = (uint8_t)(0xa0 | len);
        head = 1;
    } else if (len <= 0xff) {
        packed[0] = 0xd9;
        packed[1] = (uint8_t)len;
        head = 2;
    } else if (len <= 0xffff) {
        packed[0] = 0xda;
        packed[1] = (uint8_t)(len >> 8);
        packed[2] = (uint8_t)len;
        head = 3;
    } else {
        packed[0] = 0xdb;
        for (int k = 0; k < 4; k++)
            packed[1 + k] = (uint8_t)(len >> (24 - 8 * k));
        head = 5;
    }
    memcpy(packed + head, text, len);
    bool ok = sessionstore_session_set_msgpack(session, key, packed, head + len) ==
              SESSIONSTORE_OK;
    free(packed);
    return ok;
}

/* Appends the string under `key` as JSON (null when absent); false on any other error. */
static bool append_string_value(struct buffer *b, const sessionstore_session *session,
                                const char *key) {
    char *text = NULL;
    size_t len = 0;
    sessionstore_result rc = sessionstore_session_get_string(session, key, &text, &len);
    if (rc == SESSIONSTORE_OK) {
        append_json_string(b, text, len);
        sessionstore_string_free(text);
        return true;
    }
    if (rc == SESSIONSTORE_NOT_FOUND) {
        append(b, "null");
        return true;
    }
    sessionstore_value_type type;
    if (rc != SESSIONSTORE_TYPE_MISMATCH ||
        sessionstore_session_get_type(session, key, &type) != SESSIONSTORE_OK ||
        type != SESSIONSTORE_TYPE_STRING)
        return false;
    /* A string with a NUL byte: read its MessagePack encoding. */
    uint8_t *packed = NULL;
    if (sessionstore_session_get_msgpack(session, key, &packed, &len) != SESSIONSTORE_OK)
        return false;
    size_t head = packed[0] == 0xd9 ? 2 : packed[0] == 0xda ? 3 : packed[0] == 0xdb ? 5 : 1;
    append_json_string(b, (const char *)packed + head, len - head);
    sessionstore_bytes_free(packed, len);
    return true;
}

/* ---- the application -------------------------------------------------------------------- */

struct request {
    struct buffer body;
    bool too_large;
};

struct reply {
    unsigned status;
    struct buffer json; /* empty: no body */
};

/* {"user": ..., "visits": ...}, keys in serde_json's order. */
static bool whoami(const sessionstore_session *session, struct reply *reply) {
    struct buffer *b = &reply->json;
    append(b, "{\"user\":");
    if (!append_string_value(b, session, "user"))
        return false;
    int64_t visits = 0;
    sessionstore_result rc = sessionstore_session_get_i64(session, "visits", &visits);
    if (rc != SESSIONSTORE_OK && rc != SESSIONSTORE_NOT_FOUND)
        return false;
    char number[32];
    snprintf(number, sizeof number, ",\"visits\":%" PRId64 "}", visits);
    append(b, number);
    return true;
}

/* Appends `list`, the JSON array of sessionstore_manager_sessions_of(), with a "current"
 * member added to each object: whether its "id_hint" is `hint`. */
static void append_marked(struct buffer *b, const char *list, const char *hint) {
    char wanted[64];
    snprintf(wanted, sizeof wanted, "\"id_hint\":\"%s\"", hint);
    const char *object = list;
    for (const char *at = list; *at; at++) {
        if (*at == '{')
            object = at;
        if (*at != '}')
            continue;
        append_bytes(b, list, (size_t)(at - list));
        const char *found = strstr(object, wanted);
        append(b, found && found < at ? ",\"current\":true}" : ",\"current\":false}");
        list = at + 1;
    }
    append(b, list);
}

/* GET /sessions: the logged-in user's sessions, the current one marked. */
static bool sessions(const sessionstore_manager *manager, const sessionstore_session *session,
                     struct reply *reply) {
    char *owner = NULL;
    if (sessionstore_session_owner(session, &owner) != SESSIONSTORE_OK)
        return false;
    if (!owner) {
        append(&reply->json, "{\"user\":null,\"sessions\":[]}");
        return true;
    }
    char *list = NULL, *hint = NULL;
    bool ok = sessionstore_manager_sessions_of(manager, owner, &list) == SESSIONSTORE_OK &&
              sessionstore_session_id_hint(session, &hint) == SESSIONSTORE_OK;
    if (ok) {
        append(&reply->json, "{\"user\":");
        append_json_string(&reply->json, owner, strlen(owner));
        append(&reply->json, ",\"sessions\":");
        append_marked(&reply->json, list, hint);
        append(&reply->json, "}");
    }
    sessionstore_string_free(hint);
    sessionstore_string_free(list);
    sessionstore_string_free(owner);
    return ok;
}

/* POST /logout-all: ends the user's other sessions. */
static bool logout_all(const sessionstore_manager *manager, const sessionstore_session *session,
                       struct reply *reply) {
    char *owner = NULL, *id = NULL;
    uint64_t ended = 0;
    bool ok = sessionstore_session_owner(session, &owner) == SESSIONSTORE_OK &&
              sessionstore_session_id(session, &id) == SESSIONSTORE_OK &&
              (!owner || sessionstore_manager_end_sessions_of(manager, owner, id, &ended) ==
                             SESSIONSTORE_OK);
    if (ok) {
        char number[48];
        snprintf(number, sizeof number, "{\"ended\":%" PRIu64 "}", ended);
        append(&reply->json, number);
    }
    sessionstore_string_free(id);
    sessionstore_string_free(owner);
    return ok;
}

/* Runs the route; false when the session library failed (see sessionstore_last_error()). */
static bool route(struct MHD_Connection *connection, const sessionstore_manager *manager,
                  const char *url, const char *method, const struct request *request,
                  sessionstore_session *session, struct reply *reply) {
    reply->status = MHD_HTTP_OK;
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (get && strcmp(url, "/whoami") == 0)
        return whoami(session, reply);
    if (get && strcmp(url, "/sessions") == 0)
        return sessions(manager, session, reply);
    if (post && strcmp(url, "/logout-all") == 0)
        return logout_all(manager, session, reply);
    if (get && strcmp(url, "/visit") == 0)
        return sessionstore_session_incr(session, "visits", 1, NULL) == SESSIONSTORE_OK &&
               whoami(session, reply);
    if (post && strcmp(url, "/login") == 0) {
        const char *type = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_CONTENT_TYPE);
        struct buffer user = {0};
        bool form = type && strncmp(type, "application/x-www-form-urlencoded", 33) == 0;
        if (form && request->body.len > 0)
            form_field(request->body.data, request->body.len, "user", &user);
        if (user.failed) {
            free(user.data);
            return false;
        }
        if (user.len == 0) {
            free(user.data);
            reply->status = MHD_HTTP_BAD_REQUEST;
            append(&reply->json, "{\"error\":\"form field user is required\"}");
            return true;
        }
        /* A name no owner can be (over 256 bytes, or with NUL) stays unbound. */
        bool bindable = user.len <= 256 && !memchr(user.data, '\0', user.len);
        bool ok = sessionstore_session_regenerate(session) == SESSIONSTORE_OK &&
                  (!bindable ||
                   sessionstore_session_set_owner(session, user.data) == SESSIONSTORE_OK) &&
                  set_string_bytes(session, "user", user.data, user.len) &&
                  whoami(session, reply);
        free(user.data);
        return ok;
    }
    if (post && strcmp(url, "/logout") == 0) {
        append(&reply->json, "{\"user\":null,\"visits\":0}");
        return sessionstore_session_destroy(session) == SESSIONSTORE_OK;
    }
    reply->status = MHD_HTTP_NOT_FOUND;
    return true;
}

static enum MHD_Result send_reply(struct MHD_Connection *connection, const struct reply *reply,
                                  const sessionstore_saved *saved) {
    struct MHD_Response *response = MHD_create_response_from_buffer(
        reply->json.len, reply->json.data ? reply->json.data : "", MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    if (reply->json.len > 0)
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json; charset=utf-8");
    if (saved && saved->set_cookie)
        MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, saved->set_cookie);
    if (saved && saved->vary_cookie)
        MHD_add_response_header(response, MHD_HTTP_HEADER_VARY, "Cookie");
    enum MHD_Result queued = MHD_queue_response(connection, reply->status, response);
    MHD_destroy_response(response);
    return queued;
}

/* A failure of the session library: 503 with its message, as the demo answers. */
static enum MHD_Result send_error(struct MHD_Connection *connection, unsigned status) {
    const char *message = sessionstore_last_error();
    fprintf(stderr, "demo: %s\n", message);
    struct reply reply = {status, {0}};
    append(&reply.json, "{\"error\":");
    append_json_string(&reply.json, message, strlen(message));
    append(&reply.json, "}");
    enum MHD_Result queued = reply.json.failed ? MHD_NO : send_reply(connection, &reply, NULL);
    free(reply.json.data);
    return queued;
}

/* GET /metrics: the Prometheus text of sessionstore_manager_metrics_text(). */
static enum MHD_Result send_metrics(struct MHD_Connection *connection,
                                   const sessionstore_manager *manager) {
    char *text = NULL;
    if (sessionstore_manager_metrics_text(manager, &text) != SESSIONSTORE_OK)
        return send_error(connection, MHD_HTTP_SERVICE_UNAVAILABLE);
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
    sessionstore_string_free(text);
    if (!response)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4");
    enum MHD_Result queued = MHD_queue_response(connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return queued;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **context) {
    (void)version;
    const sessionstore_manager *manager = cls;
    struct request *request = *context;
    if (!request) { /* first call: headers only */
        request = calloc(1, sizeof *request);
        *context = request;
        return request ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size > 0) { /* a piece of the body */
        if (request->body.len + *upload_data_size > MAX_BODY)
            request->too_large = true;
        else
            append_bytes(&request->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (request->too_large || request->body.failed) {
        struct reply reply = {request->too_large ? MHD_HTTP_CONTENT_TOO_LARGE
                                                 : MHD_HTTP_INTERNAL_SERVER_ERROR,
                              {0}};
        return send_reply(connection, &reply, NULL);
    }

    if (strcmp(method, "GET") == 0 && strcmp(url, "/metrics") == 0)
        return send_metrics(connection, manager);

    const char *cookie =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
    sessionstore_session *session = NULL;
    sessionstore_result rc = sessionstore_manager_load(manager, cookie, &session);
    if (rc != SESSIONSTORE_OK) /* a Cookie header that is not UTF-8 is the client's fault */
        return send_error(connection, rc == SESSIONSTORE_INVALID_ARGUMENT
                                          ? MHD_HTTP_BAD_REQUEST
                                          : MHD_HTTP_SERVICE_UNAVAILABLE);
    struct reply reply = {0};
    if (!route(connection, manager, url, method, request, session, &reply) ||
        reply.json.failed) {
        sessionstore_session_free(session);
        free(reply.json.data);
        return send_error(connection, MHD_HTTP_SERVICE_UNAVAILABLE);
    }
    sessionstore_saved saved;
    if (sessionstore_session_save(session, &saved) != SESSIONSTORE_OK) {
        free(reply.json.data);
        return send_error(connection, MHD_HTTP_SERVICE_UNAVAILABLE);
    }
    enum MHD_Result queued = send_reply(connection, &reply, &saved);
    sessionstore_string_free(saved.set_cookie);
    free(reply.json.data);
    return queued;
}

static void completed(void *cls, struct MHD_Connection *connection, void **context,
                      enum MHD_RequestTerminationCode code) {
    (void)cls;
    (void)connection;
    (void)code;
    struct request *request = *context;
    if (request) {
        free(request->body.data);
        free(request);
        *context = NULL;
    }
}

/* ---- startup ---------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct options *options) {
    *options = (struct options){"127.0.0.1:8000", "sqlite:demo-sessions.db", NULL, NULL, NULL, -1};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            fprintf(stderr, "%s\n", USAGE);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s needs a value\n%s\n", flag, USAGE);
            return -1;
        }
        const char *value = argv[++i];
        if (strcmp(flag, "--listen") == 0) {
            options->listen = value;
        } else if (strcmp(flag, "--store") == 0) {
            options->store = value;
        } else if (strcmp(flag, "--secret") == 0) {
            options->secret = value;
        } else if (strcmp(flag, "--cookie-mode") == 0) {
            if (strcasecmp(value, "plain") == 0)
                options->cookie_mode = SESSIONSTORE_COOKIE_PLAIN;
            else if (strcasecmp(value, "signed") == 0)
                options->cookie_mode = SESSIONSTORE_COOKIE_SIGNED;
            else if (strcasecmp(value, "flask") == 0)
                options->cookie_mode = SESSIONSTORE_COOKIE_FLASK;
            else {
                fprintf(stderr, "--cookie-mode: expected plain, signed or flask, got \"%s\"\n",
                        value);
                return -1;
            }
        } else if (strcmp(flag, "--cookie-name") == 0) {
            options->cookie_name = value;
        } else if (strcmp(flag, "--prefix") == 0) {
            options->prefix = value;
        } else {
            fprintf(stderr, "unknown flag %s\n%s\n", flag, USAGE);
            return -1;
        }
    }
    return 0;
}

/* Opens `store` with metrics on, as the demo does (metrics=on added to the URL). */
static bool open_with_metrics(const char *store, const sessionstore_options *options,
                              sessionstore_manager **manager) {
    const char *separator = strchr(store, '?') ? "&" : "?";
    size_t len = strlen(store) + strlen(separator) + strlen("metrics=on") + 1;
    char *url = malloc(len);
    if (!url)
        return false;
    snprintf(url, len, "%s%smetrics=on", store, separator);
    bool ok = sessionstore_manager_open(url, options, manager) == SESSIONSTORE_OK;
    free(url);
    return ok;
}

static sessionstore_manager *open_manager(const struct options *o) {
    sessionstore_options *options = NULL;
    sessionstore_manager *manager = NULL;
    bool ok = sessionstore_options_new(&options) == SESSIONSTORE_OK &&
              (!o->secret ||
               sessionstore_options_add_secret(options, o->secret) == SESSIONSTORE_OK) &&
              (o->cookie_mode < 0 || sessionstore_options_set_cookie_mode(
                                         options, o->cookie_mode) == SESSIONSTORE_OK) &&
              (!o->cookie_name || sessionstore_options_set_cookie_name(
                                      options, o->cookie_name) == SESSIONSTORE_OK) &&
              (!o->prefix ||
               sessionstore_options_set_prefix(options, o->prefix) == SESSIONSTORE_OK) &&
              open_with_metrics(o->store, options, &manager);
    if (!ok)
        fprintf(stderr, "demo: %s\n", sessionstore_last_error());
    sessionstore_options_free(options);
    return manager;
}

/* Resolves "HOST:PORT" ("[::1]:8000" for IPv6) like Rust's ToSocketAddrs. */
static struct addrinfo *resolve(const char *listen) {
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return NULL;
    size_t host_len = (size_t)(colon - listen);
    char host[256];
    if (host_len >= sizeof host)
        return NULL;
    memcpy(host, listen, host_len);
    host[host_len] = '\0';
    char *name = host;
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        host[host_len - 1] = '\0';
        name = host + 1;
    }
    struct addrinfo hints = {0}, *found = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    return getaddrinfo(name, colon + 1, &hints, &found) == 0 ? found : NULL;
}

int main(int argc, char **argv) {
    struct options options;
    if (parse_args(argc, argv, &options) != 0)
        return 2;
    sessionstore_manager *manager = open_manager(&options);
    if (!manager)
        return 2;
    struct addrinfo *address = resolve(options.listen);
    if (!address) {
        fprintf(stderr, "demo: cannot listen on %s: not a host:port address\n", options.listen);
        sessionstore_manager_free(manager);
        return 1;
    }

    /* The MHD threads inherit this mask: only the main thread takes SIGINT and SIGTERM. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (address->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, manager, MHD_OPTION_SOCK_ADDR, address->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)THREADS, MHD_OPTION_NOTIFY_COMPLETED, completed,
        NULL, MHD_OPTION_END);
    if (!daemon) {
        fprintf(stderr, "demo: cannot listen on %s: %s\n", options.listen, strerror(errno));
        freeaddrinfo(address);
        sessionstore_manager_free(manager);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    char host[1025] = "?"; /* NI_MAXHOST */
    getnameinfo(address->ai_addr, address->ai_addrlen, host, sizeof host, NULL, 0,
                NI_NUMERICHOST);
    bool v6 = address->ai_family == AF_INET6;
    printf("server listening on http://%s%s%s:%u\n", v6 ? "[" : "", host, v6 ? "]" : "",
           info ? (unsigned)info->port : 0u);
    fflush(stdout);
    freeaddrinfo(address);

    int signal = 0;
    sigwait(&stop, &signal);
    MHD_stop_daemon(daemon);
    sessionstore_manager_free(manager);
    return 0;
}
