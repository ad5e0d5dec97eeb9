// The demo web app of examples/demo.rs, in C++ on cpp-httplib and sessionstore.hpp, with the
// same HTTP contract as the demo and the C server (ffi/examples/server.c):
//
//   GET  /whoami               {"user": <string or null>, "visits": <int>}, changes nothing
//   GET  /visit                increments visits (Session::modify: concurrent visits all
//                              count), then answers like /whoami
//   POST /login  (user=NAME)   new session id, sets user and binds the session to it as its
//                              owner (unless over 256 bytes or with NUL); 400 {"error": ...}
//                              without a name
//   POST /logout               destroys the session: {"user": null, "visits": 0}
//   GET  /sessions             the user's sessions: {"user": <string or null>, "sessions":
//                              [{"id_hint", "bound_at", "expires_at", "current"}]}
//   POST /logout-all           ends the user's other sessions: {"ended": <count>}
//   anything else              404, empty body
//   a store failure            503 {"error": "<message>"}
//
// and the same flags and defaults: --listen 127.0.0.1:8000, --store sqlite:demo-sessions.db,
// --secret S, --cookie-mode plain|signed|flask, --cookie-name NAME, --prefix P. Pointed at the
// same store with the same secret, this server, the C server and the Rust demo share their
// sessions.
//
// Build: c++ -std=c++17 server.cpp $(pkg-config --cflags --libs sessionstore cpp-httplib)
// Stop with SIGINT or SIGTERM. Request bodies are limited to 1 MiB (413 above).
#include <cctype>
#include <csignal>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <pthread.h>
#include <unistd.h>

#include <httplib.h>
#include <sessionstore.hpp>

namespace {

constexpr const char *usage = "usage: demo [--listen ADDR] [--store URL] [--secret S] "
                              "[--cookie-mode plain|signed|flask] [--cookie-name NAME] "
                              "[--prefix P]";
constexpr std::size_t max_body = 1 << 20;
// Threads serving connections; an idle keep-alive connection holds one for up to 5 s.
constexpr std::size_t threads = 16;

struct Flags {
    std::string listen = "127.0.0.1:8000";
    std::string store = "sqlite:demo-sessions.db";
    std::optional<std::string> secret, cookie_name, prefix;
    std::optional<sessionstore::CookieMode> cookie_mode;
};

// ---- JSON and forms, as serde_json and the url crate write and read them ------------------

// A JSON string, escaped exactly as serde_json escapes it.
std::string json_string(std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (byte < 0x20) {
                out += "\\u00";
                out += hex[byte >> 4];
                out += hex[byte & 15];
            } else {
                out += c;
            }
        }
    }
    return out + "\"";
}

// The bytes a UTF-8 sequence starting with `lead` has, 0 for a byte that cannot start one.
std::size_t utf8_width(unsigned char lead) {
    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf)
        return 2;
    if (lead >= 0xe0 && lead <= 0xef)
        return 3;
    if (lead >= 0xf0 && lead <= 0xf4)
        return 4;
    return 0;
}

// Whether `next` may be byte number `index` (1, 2 or 3) of the sequence led by `lead`.
bool continues(unsigned char lead, std::size_t index, unsigned char next) {
    unsigned char low = 0x80, high = 0xbf;
    if (index == 1) {
        if (lead == 0xe0)
            low = 0xa0;
        else if (lead == 0xed)
            high = 0x9f;
        else if (lead == 0xf0)
            low = 0x90;
        else if (lead == 0xf4)
            high = 0x8f;
    }
    return next >= low && next <= high;
}

// `bytes` with each maximal invalid UTF-8 subsequence replaced by U+FFFD, as Rust's
// String::from_utf8_lossy does.
std::string lossy_utf8(std::string_view bytes) {
    std::string out;
    std::size_t at = 0;
    while (at < bytes.size()) {
        auto lead = static_cast<unsigned char>(bytes[at]);
        std::size_t width = utf8_width(lead), valid = width > 0 ? 1 : 0;
        while (valid > 0 && valid < width && at + valid < bytes.size() &&
               continues(lead, valid, static_cast<unsigned char>(bytes[at + valid])))
            valid++;
        if (width > 0 && valid == width) {
            out.append(bytes.substr(at, width));
            at += width;
        } else {
            out += "\xEF\xBF\xBD";
            at += valid > 0 ? valid : 1;
        }
    }
    return out;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

// One name or value of a form: '+' is a space, %XX a byte (a bad escape stays as it is),
// then lossy UTF-8.
std::string decode_form_part(std::string_view part) {
    std::string bytes;
    for (std::size_t i = 0; i < part.size(); i++) {
        if (part[i] == '+') {
            bytes += ' ';
        } else if (part[i] == '%' && i + 2 < part.size() && hex_digit(part[i + 1]) >= 0 &&
                   hex_digit(part[i + 2]) >= 0) {
            bytes += static_cast<char>(hex_digit(part[i + 1]) * 16 + hex_digit(part[i + 2]));
            i += 2;
        } else {
            bytes += part[i];
        }
    }
    return lossy_utf8(bytes);
}

// The value of the first field named `wanted` in a form body, if there is one.
std::optional<std::string> form_field(std::string_view body, std::string_view wanted) {
    while (!body.empty()) {
        std::size_t amp = body.find('&');
        std::string_view piece = body.substr(0, amp);
        body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
        if (piece.empty())
            continue;
        std::size_t eq = piece.find('=');
        if (decode_form_part(piece.substr(0, eq)) == wanted)
            return eq == std::string_view::npos ? std::string()
                                                : decode_form_part(piece.substr(eq + 1));
    }
    return std::nullopt;
}

// ---- the application ---------------------------------------------------------------------

// {"user": ..., "visits": ...}, keys in serde_json's order.
std::string whoami(const sessionstore::Session &session) {
    std::optional<std::string> user = session.get<std::string>("user");
    std::int64_t visits = session.get<std::int64_t>("visits").value_or(0);
    return "{\"user\":" + (user ? json_string(*user) : "null") +
           ",\"visits\":" + std::to_string(visits) + "}";
}

// The JSON array of Manager::sessions_of() with a "current" member added to each object:
// whether its "id_hint" is `hint`.
std::string mark_current(const std::string &list, const std::string &hint) {
    const std::string wanted = "\"id_hint\":" + json_string(hint);
    std::string marked;
    std::size_t object = 0;
    for (std::size_t at = 0; at < list.size(); at++) {
        if (list[at] == '{')
            object = at;
        if (list[at] == '}') {
            bool current = list.substr(object, at - object).find(wanted) != std::string::npos;
            marked += current ? ",\"current\":true" : ",\"current\":false";
        }
        marked += list[at];
    }
    return marked;
}

// GET /sessions: the logged-in user's sessions, the current one marked.
std::string sessions(const sessionstore::Manager &manager, const sessionstore::Session &session) {
    std::optional<std::string> owner = session.owner();
    if (!owner)
        return "{\"user\":null,\"sessions\":[]}";
    return "{\"user\":" + json_string(*owner) + ",\"sessions\":" +
           mark_current(manager.sessions_of(*owner), session.id_hint()) + "}";
}

// POST /logout-all: ends the user's other sessions.
std::string logout_all(const sessionstore::Manager &manager, const sessionstore::Session &session) {
    std::optional<std::string> owner = session.owner();
    std::uint64_t ended = owner ? manager.end_sessions_of(*owner, session.id()) : 0;
    return "{\"ended\":" + std::to_string(ended) + "}";
}

// Runs the route on the session: the status and JSON body (empty: no body).
std::pair<int, std::string> route(const sessionstore::Manager &manager,
                                  const httplib::Request &request, const std::string &body,
                                  sessionstore::Session &session) {
    bool get = request.method == "GET", post = request.method == "POST";
    if (get && request.path == "/whoami")
        return {200, whoami(session)};
    if (get && request.path == "/sessions")
        return {200, sessions(manager, session)};
    if (post && request.path == "/logout-all")
        return {200, logout_all(manager, session)};
    if (get && request.path == "/visit") {
        session.modify("visits", [](std::optional<std::int64_t> n) { return n.value_or(0) + 1; });
        return {200, whoami(session)};
    }
    if (post && request.path == "/login") {
        const std::string form_type = "application/x-www-form-urlencoded";
        std::optional<std::string> user;
        if (request.get_header_value("Content-Type").compare(0, form_type.size(), form_type) == 0)
            user = form_field(body, "user");
        if (!user || user->empty())
            return {400, "{\"error\":\"form field user is required\"}"};
        session.regenerate();
        // A name no owner can be (over 256 bytes, or with NUL) stays unbound.
        if (user->size() <= 256 && user->find('\0') == std::string::npos)
            session.set_owner(*user);
        session.set("user", *user);
        return {200, whoami(session)};
    }
    if (post && request.path == "/logout") {
        session.destroy();
        return {200, "{\"user\":null,\"visits\":0}"};
    }
    return {404, ""};
}

// Every Cookie header of the request, joined with "; " (an HTTP/2 proxy may split them).
std::optional<std::string> cookie_header(const httplib::Request &request) {
    std::size_t count = request.get_header_value_count("Cookie");
    if (count == 0)
        return std::nullopt;
    std::string joined = request.get_header_value("Cookie", 0);
    for (std::size_t i = 1; i < count; i++)
        joined += "; " + request.get_header_value("Cookie", i);
    return joined;
}

void send_json(httplib::Response &response, int status, const std::string &json) {
    response.status = status;
    if (!json.empty())
        response.set_content(json, "application/json; charset=utf-8");
}

// A failure of the session library: its message as JSON.
void send_error(httplib::Response &response, int status, const sessionstore::Error &error) {
    std::cerr << "demo: " << error.what() << std::endl;
    response.headers.clear();
    send_json(response, status, "{\"error\":" + json_string(error.what()) + "}");
}

// Loads the session, routes, saves: what every request runs.
void handle(const sessionstore::Manager &manager, const httplib::Request &request,
            httplib::Response &response, const std::string &body) {
    std::optional<sessionstore::Session> session;
    try {
        std::optional<std::string> cookies = cookie_header(request);
        session = cookies ? manager.load(*cookies) : manager.load();
    } catch (const sessionstore::Error &error) {
        // A Cookie header that is not UTF-8 is the client's fault.
        send_error(response, error.code() == SESSIONSTORE_INVALID_ARGUMENT ? 400 : 503, error);
        return;
    }
    try {
        auto [status, json] = route(manager, request, body, *session);
        sessionstore::Saved saved = session->save();
        send_json(response, status, json);
        if (saved.set_cookie)
            response.set_header("Set-Cookie", *saved.set_cookie);
        if (saved.vary_cookie)
            response.set_header("Vary", "Cookie");
    } catch (const sessionstore::Error &error) {
        send_error(response, 503, error);
    }
}

// ---- startup -----------------------------------------------------------------------------

// The flags, or nullopt after printing why not (exit status 2).
std::optional<Flags> parse_flags(int argc, char **argv) {
    Flags flags;
    for (int i = 1; i < argc; i++) {
        std::string_view flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            std::cerr << usage << "\n";
            return std::nullopt;
        }
        if (i + 1 >= argc) {
            std::cerr << flag << " needs a value\n" << usage << "\n";
            return std::nullopt;
        }
        std::string value = argv[++i];
        if (flag == "--listen") {
            flags.listen = value;
        } else if (flag == "--store") {
            flags.store = value;
        } else if (flag == "--secret") {
            flags.secret = value;
        } else if (flag == "--cookie-mode") {
            std::string mode;
            for (char c : value)
                mode += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (mode == "plain")
                flags.cookie_mode = sessionstore::CookieMode::Plain;
            else if (mode == "signed")
                flags.cookie_mode = sessionstore::CookieMode::Signed;
            else if (mode == "flask")
                flags.cookie_mode = sessionstore::CookieMode::Flask;
            else {
                std::cerr << "--cookie-mode: expected plain, signed or flask, got \"" << value
                          << "\"\n";
                return std::nullopt;
            }
        } else if (flag == "--cookie-name") {
            flags.cookie_name = value;
        } else if (flag == "--prefix") {
            flags.prefix = value;
        } else {
            std::cerr << "unknown flag " << flag << "\n" << usage << "\n";
            return std::nullopt;
        }
    }
    return flags;
}

sessionstore::Manager open_manager(const Flags &flags) {
    sessionstore::Options options;
    if (flags.secret)
        options.add_secret(*flags.secret);
    if (flags.cookie_mode)
        options.set_cookie_mode(*flags.cookie_mode);
    if (flags.cookie_name)
        options.set_cookie_name(*flags.cookie_name);
    if (flags.prefix)
        options.set_prefix(*flags.prefix);
    return sessionstore::Manager::open(flags.store, options);
}

// "HOST:PORT" ("[::1]:8000" for IPv6) split into the host to bind and the port.
std::optional<std::pair<std::string, int>> split_address(const std::string &listen) {
    std::size_t colon = listen.rfind(':');
    if (colon == std::string::npos || colon + 1 == listen.size() || listen.size() - colon > 6)
        return std::nullopt;
    std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
    for (char c : port)
        if (!std::isdigit(static_cast<unsigned char>(c)))
            return std::nullopt;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    int number = std::stoi(port);
    if (number > 65535)
        return std::nullopt;
    return std::make_pair(host, number);
}

} // namespace

int main(int argc, char **argv) {
    // Every thread started from here (the store's pool, the server's) inherits this mask:
    // only sigwait below takes SIGINT and SIGTERM.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    std::optional<Flags> flags = parse_flags(argc, argv);
    if (!flags)
        return 2;
    std::optional<sessionstore::Manager> manager;
    try {
        manager = open_manager(*flags);
    } catch (const sessionstore::Error &error) {
        std::cerr << "demo: " << error.what() << std::endl;
        return 2;
    }
    auto address = split_address(flags->listen);
    if (!address) {
        std::cerr << "demo: cannot listen on " << flags->listen << ": not a host:port address\n";
        return 1;
    }

    httplib::Server server;
    server.new_task_queue = [] { return new httplib::ThreadPool(threads); };
    server.set_payload_max_length(max_body);
    const sessionstore::Manager &shared = *manager;
    auto plain = [&shared](const httplib::Request &request, httplib::Response &response) {
        handle(shared, request, response, request.body);
    };
    // Requests that may have a body (POST, PUT, PATCH, DELETE): read here, so httplib does
    // not parse forms itself, and only when there is one (httplib would wait for the client
    // to close a request without Content-Length or Transfer-Encoding).
    auto with_body = [&shared](const httplib::Request &request, httplib::Response &response,
                               const httplib::ContentReader &reader) {
        std::string body;
        bool has_body =
            request.has_header("Content-Length") || request.has_header("Transfer-Encoding");
        auto append = [&body](const char *data, std::size_t length) {
            body.append(data, length);
            return true;
        };
        if (has_body && !reader(append))
            return; // too large (413) or unreadable (400): httplib set the status

        handle(shared, request, response, body);
    };
    server.Get(".*", plain).Post(".*", plain).Post(".*", with_body);
    server.Put(".*", plain).Put(".*", with_body).Patch(".*", plain).Patch(".*", with_body);
    server.Delete(".*", plain).Delete(".*", with_body).Options(".*", plain);

    auto [host, port] = *address;
    bool bound = port == 0 ? (port = server.bind_to_any_port(host)) > 0
                           : server.bind_to_port(host, port);
    if (!bound) {
        std::cerr << "demo: cannot listen on " << flags->listen << std::endl;
        return 1;
    }
    bool v6 = host.find(':') != std::string::npos;
    std::cout << "server listening on http://" << (v6 ? "[" : "") << host << (v6 ? "]" : "")
              << ":" << port << std::endl;

    bool failed = false;
    std::thread listener([&server, &failed] {
        failed = !server.listen_after_bind();
        // Wakes the sigwait below if the server stopped by itself.
        kill(getpid(), SIGTERM);
    });
    int signal = 0;
    sigwait(&stop, &signal);
    server.stop();
    listener.join();
    return failed ? 1 : 0;
}
