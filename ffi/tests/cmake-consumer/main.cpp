// Counts two visits of one browser on the memory store through sessionstore.hpp; prints the
// count and exits 0 when the second request saw the first one's session.
#include <cstdint>
#include <cstdio>
#include <string>

#include <sessionstore.hpp>

int main() {
    try {
        sessionstore::Options options;
        options.add_secret("cmake consumer");
        auto manager = sessionstore::Manager::open("memory://", options);

        auto first = manager.load();
        first.incr("visits");
        std::string cookie = first.save().set_cookie.value_or("");
        cookie = cookie.substr(0, cookie.find(';'));

        auto second = manager.load(cookie);
        std::int64_t visits = second.incr("visits");
        second.save();
        std::printf("sessionstore %s, visits: %lld\n", sessionstore::version().c_str(),
                    static_cast<long long>(visits));
        return visits == 2 ? 0 : 1;
    } catch (const sessionstore::Error &error) {
        std::fprintf(stderr, "sessionstore: %s (%s)\n", error.what(), error.code_name());
        return 1;
    }
}
