/* tests/fuzz/fuzz_redis.c - what libember-redis reads from outside: the
 * result blobs bridges post (ember_redis_result_parse, src/redis/blob.c) and
 * Redis URLs (ember_redis_url_parse, src/redis/url.c).
 *
 * Feeds: the first byte chooses (even: a blob, odd: a URL), the rest is it.
 *
 * Asserts: a blob is read (0) or refused (-EMBER_REDIS_EBLOB with a
 * message), never anything else; a read one's output lies inside the blob,
 * right after the first newline, to its end, and its receipt (if any) inside
 * the JSON line starting with '{'; its strings are NUL-terminated within
 * their fields; written again by the bridge's writer (ember_redis__blob_write)
 * it reads back the same. A URL is read or refused (-EMBER_EINVAL with a message); a
 * read one has a port in 1..65535 and a host or a socket path. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <ember/client.h>
#include <ember/redis.h>
#include "redis/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    if (!n) return 0;
    const char *p = (const char *)data + 1;
    size_t len = n - 1;
    char err[256];
    if (!(data[0] & 1)) {
        char *blob = malloc(len ? len : 1); /* exactly LEN: ASan sees any read past it */
        if (len) memcpy(blob, p, len);
        ember_redis_result r;
        int rc = ember_redis_result_parse(blob, len, &r, err, sizeof err);
        assert(rc == 0 || rc == -EMBER_REDIS_EBLOB);
        if (rc) {
            assert(err[0]);
        } else {
            const char *nl = memchr(blob, '\n', len);
            assert(nl && (const char *)r.data == nl + 1 && r.len == len - (size_t)(nl + 1 - blob));
            assert(!r.receipt || (r.receipt >= blob && r.receipt + r.receipt_len <= nl && r.receipt[0] == '{'));
            assert(memchr(r.host, 0, sizeof r.host) && memchr(r.error, 0, sizeof r.error) &&
                   memchr(r.cause, 0, sizeof r.cause) && memchr(r.consumer, 0, sizeof r.consumer));
            assert(r.status <= 0);
            struct ember_redis__post w = { .status = r.status, .detail = r.detail, .host = r.host,
                                           .consumer = r.consumer, .deliveries = r.deliveries,
                                           .cause = r.cause[0] ? r.cause : NULL, .receipt = r.receipt,
                                           .receipt_len = r.receipt_len, .out = r.data, .out_len = r.len };
            size_t wlen;
            char *again = ember_redis__blob_write(&w, &wlen);
            assert(again);
            ember_redis_result r2;
            assert(ember_redis_result_parse(again, wlen, &r2, err, sizeof err) == 0);
            assert(r2.status == r.status && r2.detail == r.detail && r2.deliveries == r.deliveries &&
                   strcmp(r2.host, r.host) == 0 && strcmp(r2.consumer, r.consumer) == 0 &&
                   strcmp(r2.cause, r.cause) == 0 && r2.len == r.len && memcmp(r2.data, r.data, r.len) == 0 &&
                   r2.receipt_len == r.receipt_len &&
                   (!r.receipt || memcmp(r2.receipt, r.receipt, r.receipt_len) == 0));
            free(again);
        }
        free(blob);
        return 0;
    }
    char *url = malloc(len + 1);
    memcpy(url, p, len);
    url[len] = 0;
    struct ember_redis_url u;
    int rc = ember_redis_url_parse(url, &u, err, sizeof err);
    assert(rc == 0 || rc == -EMBER_EINVAL);
    if (rc) assert(err[0]);
    else assert(u.unix_socket ? u.path[0] != 0 : u.host[0] != 0 && u.port >= 1 && u.port <= 65535);
    free(url);
    return 0;
}
