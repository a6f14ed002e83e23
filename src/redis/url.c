/* redis/url.c - Redis URLs (redis.h): redis://[[[USER]:]PASSWORD@]HOST[:PORT][/DB]
 * and unix://[[[USER]:]PASSWORD@]/PATH[?db=N] (or unix:PATH), read into
 * struct ember_redis_url, every bad part named in the error, never the
 * password. No connection, no allocation. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ember/client.h>
#include <ember/redis.h>

static int bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EMBER_EINVAL;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* S[0..N) with %XX decoded into DST (CAP bytes, NUL-terminated): 0, -1 too
 * long, -2 a bad %XX, -3 a NUL byte. */
static int decode(const char *s, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n) return -2;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) return -2;
            c = (char)(hi << 4 | lo);
            if (!c) return -3;
            i += 2;
        }
        if (o + 1 >= cap) return -1;
        dst[o++] = c;
    }
    dst[o] = 0;
    return 0;
}

/* A whole decimal number in S[0..N) within [LO, HI]. */
static bool number(const char *s, size_t n, long lo, long hi, int *out)
{
    if (!n || n > 9) return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

/* The credentials S[0..N) ("[[USER]:]PASSWORD", %XX decoded) into U: 0,
 * or -1 (too long, a bad %XX). */
static int credentials(const char *s, size_t n, struct ember_redis_url *u)
{
    const char *colon = memchr(s, ':', n);
    const char *pw = colon ? colon + 1 : s; /* PASSWORD@ alone: a password, as redis-cli reads it */
    if (decode(s, colon ? (size_t)(colon - s) : 0, u->user, sizeof u->user) ||
        decode(pw, (size_t)(s + n - pw), u->password, sizeof u->password))
        return -1;
    return 0;
}

/* The '@' that ends the credentials of unix://CREDENTIALS@/PATH, P being
 * what follows "unix://": the last '@' with the socket's absolute path
 * after it (so a password may hold '@', '/', '?' or '#' as they are; a
 * path that holds "@/" is written with no credentials, or as %40), or NULL. */
static const char *unix_at(const char *p)
{
    const char *at = NULL;
    for (const char *s = strchr(p, '@'); s; s = strchr(s + 1, '@'))
        if (s[1] == '/') at = s;
    return at;
}

/* P follows "unix://" (SLASHES) or "unix:". */
static int parse_unix(const char *url, const char *p, bool slashes, struct ember_redis_url *u, char *err,
                      size_t errlen)
{
    /* unix://:... is credentials with their '@' forgotten, not a relative
     * socket path (a connect error would print it): said without the URL */
    if (slashes && *p == ':' && !strchr(p, '@'))
        return bad(err, errlen, "a unix:// URL's credentials end with '@' before the socket's absolute "
                   "path: unix://[[USER]:PASSWORD@]/PATH/TO/SOCKET");
    if (slashes && *p != '/' && strchr(p, '@')) { /* unix://CREDENTIALS@/PATH */
        const char *at = unix_at(p);
        if (!at)
            return bad(err, errlen, "'%s': after the credentials' '@' comes the socket's absolute path: "
                       "unix://[[USER]:PASSWORD@]/PATH/TO/SOCKET", url);
        if (credentials(p, (size_t)(at - p), u))
            return bad(err, errlen, "'%s': the user or password is too long or has a bad %%XX", url);
        p = at + 1;
    }
    const char *q = strchr(p, '?');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    if (!n) return bad(err, errlen, "'%s' names no socket: unix:///PATH/TO/SOCKET", url);
    if (n >= sizeof u->path)
        return bad(err, errlen, "'%s': the socket's path is longer than %zu bytes", url, sizeof u->path - 1);
    int rc = decode(p, n, u->path, sizeof u->path);
    if (rc) return bad(err, errlen, "'%s': a bad %%XX in the socket's path", url);
    if (q) {
        if (strncmp(q + 1, "db=", 3) != 0 || !number(q + 4, strlen(q + 4), 0, 1000000, &u->db))
            return bad(err, errlen, "'%s': after '?' only db=N (a database number) is understood", url);
    }
    u->unix_socket = true;
    return 0;
}

/* URL as a message may quote it: its credentials as "***", into BUF. */
static const char *redacted(const char *url, char *buf, size_t len)
{
    const char *at = NULL, *rest;
    if (strncmp(url, "redis://", 8) == 0) {
        rest = url + 8;
        at = strrchr(rest, '@');
    } else if (strncmp(url, "unix://", 7) == 0 && url[7] != '/') {
        rest = url + 7;
        at = unix_at(rest);
        if (!at) at = strrchr(rest, '@');
    }
    if (!at) return url;
    snprintf(buf, len, "%.*s***%s", (int)(rest - url), url, at);
    return buf;
}

int ember_redis_url_parse(const char *raw, struct ember_redis_url *u, char *err, size_t errlen)
{
    char shown[320];
    const char *url = raw ? redacted(raw, shown, sizeof shown) : NULL;
    memset(u, 0, sizeof *u);
    if (errlen) err[0] = 0;
    if (!raw || !*raw) return bad(err, errlen, "no Redis URL: give redis://HOST[:PORT][/DB] or unix:///PATH");
    u->port = 6379;
    if (strncmp(raw, "unix://", 7) == 0) return parse_unix(url, raw + 7, true, u, err, errlen);
    if (strncmp(raw, "unix:", 5) == 0) return parse_unix(url, raw + 5, false, u, err, errlen);
    if (strncmp(raw, "redis://", 8) != 0)
        return bad(err, errlen, "'%s' is not a Redis URL: give redis://[[[USER]:]PASSWORD@]HOST[:PORT][/DB] "
                   "or unix://[[[USER]:]PASSWORD@]/PATH[?db=N] (rediss:// and other schemes are not supported)", url);
    /* credentials: up to the last '@' (nothing after the host holds one, so
     * a password may hold '@', '/', '?' or '#' as they are, or as %XX) */
    const char *p = raw + 8, *at = strrchr(p, '@');
    if (at) {
        if (credentials(p, (size_t)(at - p), u))
            return bad(err, errlen, "'%s': the user or password is too long or has a bad %%XX", url);
        p = at + 1;
    }
    const char *end = p + strcspn(p, "/?#");
    if (*end == '?' || *end == '#')
        return bad(err, errlen, "'%s': query strings and fragments are not understood", url);
    const char *hend;
    if (*p == '[') { /* [IPv6] */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb) return bad(err, errlen, "'%s': an IPv6 address needs its closing ']'", url);
        if ((size_t)(rb - p - 1) >= sizeof u->host) return bad(err, errlen, "'%s': the host is too long", url);
        memcpy(u->host, p + 1, (size_t)(rb - p - 1));
        u->host[rb - p - 1] = 0;
        hend = rb + 1;
        if (hend < end && *hend != ':') return bad(err, errlen, "'%s': after ']' comes :PORT or /DB", url);
    } else {
        hend = memchr(p, ':', (size_t)(end - p));
        if (!hend) hend = end;
        if ((size_t)(hend - p) >= sizeof u->host) return bad(err, errlen, "'%s': the host is too long", url);
        memcpy(u->host, p, (size_t)(hend - p));
        u->host[hend - p] = 0;
    }
    if (!u->host[0]) return bad(err, errlen, "'%s' names no host: redis://HOST[:PORT][/DB]", url);
    if (hend < end) { /* :PORT */
        if (!number(hend + 1, (size_t)(end - hend - 1), 1, 65535, &u->port))
            return bad(err, errlen, "'%s': the port '%.*s' is not a number from 1 to 65535", url,
                       (int)(end - hend - 1), hend + 1);
    }
    if (*end == '/' && end[1]) {
        if (!number(end + 1, strlen(end + 1), 0, 1000000, &u->db))
            return bad(err, errlen, "'%s': the database '%s' is not a number", url, end + 1);
    }
    return 0;
}
