// Description: a C++ program embedding a pool through libember's pool.h:
// it registers a handler, starts a pool, calls it and stops it.
#include <ember/pool.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>

static int upper(const void *args, size_t len, ember_out *out, const ember_job *)
{
    char *p = static_cast<char *>(ember_out_reserve(out, len));
    if (!p) return 1;
    const char *in = static_cast<const char *>(args);
    for (size_t i = 0; i < len; i++) p[i] = (char)std::toupper((unsigned char)in[i]);
    return 0;
}

int main()
{
    if (ember_handler_register("upper", upper) != 0) return 1;
    ember_pool_config cfg;
    ember_pool_config_init(&cfg);
    std::string name = "cxx-" + std::to_string(getpid());
    cfg.name = name.c_str();
    cfg.max = 1;
    ember_pool *pool = nullptr;
    if (int rc = ember_pool_start(&cfg, &pool)) {
        std::fprintf(stderr, "start: %s: %s\n", ember_strerror(rc), ember_last_error());
        return 1;
    }
    ember_client *c = nullptr;
    int ok = ember_attach(name.c_str(), &c) == 0;
    ember_result r;
    ok = ok && ember_call(c, ember_handler(c, "upper"), "cxx", 3, &r, EMBER_TIMEOUT_DEFAULT) == 0 &&
         r.len == 3 && std::memcmp(r.data, "CXX", 3) == 0;
    if (c) {
        ember_result_release(c, &r);
        ember_detach(c);
    }
    ember_pool_stop(pool, EMBER_SECOND);
    if (!ok) std::fprintf(stderr, "the call failed: %s\n", ember_last_error());
    return ok ? 0 : 1;
}
