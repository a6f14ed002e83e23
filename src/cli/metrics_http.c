/* cli/metrics_http.c - `ember pool start --metrics-listen ADDR:PORT`: the
 * pool's metrics over HTTP at /metrics, for Prometheus to scrape.
 *
 * Served from the pool's application process (the daemon, or the
 * foreground command), never from the supervisor: libmicrohttpd's own
 * thread answers each request with a fresh snapshot (openmetrics.c) taken
 * through a client attached like any other, so a slow or hostile scraper
 * costs the pool nothing but that snapshot. The listening socket is made
 * here, so that its failure (a port in use, an address not of this host)
 * is said with the system's reason. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include "cli.h"

struct metrics_http {
    struct MHD_Daemon *d;
    ember_client *c;
    char pool[EMBER_NAME_MAX];
    int fd;
};

int metrics_listen_parse(const char *val, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    const char *colon = val ? strrchr(val, ':') : NULL;
    if (!colon || colon == val || !colon[1])
        return usage_error("option --metrics-listen: '%s' is not ADDRESS:PORT (127.0.0.1:9464, "
                           "[::1]:9464)", val ? val : "");
    uint64_t port;
    if (!parse_uint(colon + 1, 65535, &port) || port == 0)
        return usage_error("option --metrics-listen: port '%s' is not a number from 1 to 65535",
                           colon + 1);
    char host[64];
    size_t hl = (size_t)(colon - val);
    if (val[0] == '[' && hl >= 2 && val[hl - 1] == ']') { /* [v6]:PORT */
        if (hl - 2 >= sizeof host) hl = sizeof host + 1;
        snprintf(host, sizeof host, "%.*s", (int)(hl - 2), val + 1);
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)port);
            *len = sizeof *s6;
            return 0;
        }
    } else if (hl < sizeof host) {
        snprintf(host, sizeof host, "%.*s", (int)hl, val);
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)port);
            *len = sizeof *s4;
            return 0;
        }
    }
    return usage_error("option --metrics-listen: '%.*s' is not an IP address (give one of this "
                       "host's, e.g. 127.0.0.1 or [::1]; names are not looked up)", (int)hl, val);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **req)
{
    (void)version, (void)upload, (void)req;
    struct metrics_http *mh = cls;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (*upload_len) return MHD_NO; /* nothing is uploaded to /metrics */
    unsigned code = MHD_HTTP_OK;
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (!f) return MHD_NO;
    if (strcmp(url, "/metrics") != 0) {
        code = MHD_HTTP_NOT_FOUND;
        fprintf(f, "ember serves the metrics of pool '%s' at /metrics\n", mh->pool);
    } else if (!get) {
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
        fprintf(f, "/metrics answers GET\n");
    } else if (openmetrics_write(mh->c, mh->pool, f) != 0) {
        code = MHD_HTTP_SERVICE_UNAVAILABLE;
        fprintf(f, "pool '%s': %s\n", mh->pool, ember_last_error());
    }
    if (fclose(f) != 0) {
        free(body);
        return MHD_NO;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    /* the text reads as OpenMetrics and as Prometheus's older format
     * alike (openmetrics.c): labelled as the scraper asks */
    const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
    const char *type = code != MHD_HTTP_OK ? "text/plain; charset=utf-8"
                       : accept && strstr(accept, "application/openmetrics-text")
                           ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                           : "text/plain; version=0.0.4; charset=utf-8";
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

struct metrics_http *metrics_http_start(const char *pool, const struct sockaddr_storage *ss,
                                        socklen_t len, const char *where, char *err, size_t errlen)
{
    struct metrics_http *mh = calloc(1, sizeof *mh);
    if (!mh) {
        snprintf(err, errlen, "--metrics-listen %s: out of memory", where);
        return NULL;
    }
    snprintf(mh->pool, sizeof mh->pool, "%s", pool);
    mh->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (mh->fd < 0 || setsockopt(mh->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(mh->fd, (const struct sockaddr *)ss, len) < 0 || listen(mh->fd, 64) < 0) {
        int e = errno;
        snprintf(err, errlen, "--metrics-listen %s: %s%s", where, strerror(e),
                 e == EADDRINUSE     ? " (another program listens there: choose another port)"
                 : e == EADDRNOTAVAIL ? " (not an address of this host)"
                 : e == EACCES       ? " (ports below 1024 need privileges: choose a higher one)"
                                     : "");
        if (mh->fd >= 0) close(mh->fd);
        free(mh);
        return NULL;
    }
    int rc = ember_attach(pool, &mh->c);
    if (rc) {
        snprintf(err, errlen, "--metrics-listen %s: %s", where, ember_last_error());
        close(mh->fd);
        free(mh);
        return NULL;
    }
    mh->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, answer, mh,
                             MHD_OPTION_LISTEN_SOCKET, mh->fd, MHD_OPTION_CONNECTION_TIMEOUT,
                             (unsigned)10, MHD_OPTION_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_END);
    if (!mh->d) {
        snprintf(err, errlen, "--metrics-listen %s: libmicrohttpd would not start its server", where);
        ember_detach(mh->c);
        close(mh->fd);
        free(mh);
        return NULL;
    }
    return mh;
}

void metrics_http_stop(struct metrics_http *mh)
{
    if (!mh) return;
    MHD_stop_daemon(mh->d);
    close(mh->fd); /* given with MHD_OPTION_LISTEN_SOCKET: ours to close */
    ember_detach(mh->c);
    free(mh);
}
