/*
 * fetch.h -- what `usagi data` needs from C: SHA-256 of a file (of its
 * bytes, or of what a gzip file decompresses to) and an HTTP(S) download
 * through libcurl that resumes a partial file. No Lua here; fetch_lua.c
 * is the binding.
 */
#ifndef USAGI_CLI_FETCH_H
#define USAGI_CLI_FETCH_H

#include <stddef.h>
#include <stdint.h>

/* ==== SHA-256 (FIPS 180-4) ============================================== */

typedef struct {
    uint32_t h[8];
    uint64_t bytes;         /* message length so far */
    unsigned char buf[64];  /* a partial block */
    size_t used;
} usg_sha256;

void usg_sha256_init(usg_sha256 *c);
void usg_sha256_update(usg_sha256 *c, const void *data, size_t n);
void usg_sha256_final(usg_sha256 *c, unsigned char out[32]);

/* The SHA-256 of the file at path as 64 lowercase hex digits, and the
 * number of bytes hashed. With gunzip, the bytes hashed are those the gzip
 * file decompresses to (a file that is not gzip is hashed as it is).
 * Returns 0, or -1 with a message in err. */
int usg_sha256_file(const char *path, int gunzip, char hex[65], uint64_t *size,
                    char *err, size_t errlen);

/* ==== Downloads ========================================================= */

/* How a download ended. */
enum {
    USG_FETCH_OK = 0,
    USG_FETCH_HTTP,         /* the server answered with an error status */
    USG_FETCH_NETWORK,      /* no connection, a timeout, a cut transfer */
    USG_FETCH_LOCAL,        /* the local file could not be written */
    USG_FETCH_INTERRUPTED,  /* Ctrl-C */
};

typedef struct {
    const char *label;      /* shown before the progress bar */
    long connect_timeout;   /* seconds to connect */
    long stall_timeout;     /* seconds without a byte before giving up */
    int progress;           /* 0 none, 1 a bar on a terminal, 2 a line now and then */
} usg_fetch_opts;

/* Appends url's body to the file at part, resuming from part's current
 * size with an HTTP Range request (a server that ignores the range makes
 * the download start over). Redirects are followed; proxies come from the
 * environment (http_proxy, https_proxy, no_proxy), as libcurl reads them.
 * On return *http holds the last HTTP status (0 when none came). Returns a
 * USG_FETCH_* code, with a message in err when it is not OK. */
int usg_fetch(const char *url, const char *part, const usg_fetch_opts *o, long *http,
              char *err, size_t errlen);

#endif
