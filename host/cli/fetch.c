/*
 * fetch.c -- SHA-256 of files and resumable HTTP(S) downloads for
 * `usagi data` (scripts/usagi/datasets.lua and data_get.lua decide what to
 * fetch and where it goes; this file only moves and hashes bytes).
 *
 * Only the usagi executable links libcurl: the tensor core, the store and
 * the binding never see the network. The SHA-256 is written out here (a
 * page of FIPS 180-4) rather than taken from OpenSSL, so that hashing does
 * not depend on which TLS flavour of libcurl is installed.
 */
#include "fetch.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <zlib.h>

/* ==== SHA-256 ============================================================ */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

/* One 64-byte block into the state: the message schedule W, then the 64
 * rounds with Sigma0, Sigma1, Ch and Maj of FIPS 180-4, section 6.2.2. */
static void sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void usg_sha256_init(usg_sha256 *c)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof h0);
    c->bytes = 0;
    c->used = 0;
}

void usg_sha256_update(usg_sha256 *c, const void *data, size_t n)
{
    const unsigned char *p = data;
    c->bytes += n;
    if (c->used) {
        size_t take = 64 - c->used < n ? 64 - c->used : n;
        memcpy(c->buf + c->used, p, take);
        c->used += take; p += take; n -= take;
        if (c->used < 64) return;
        sha256_block(c->h, c->buf);
        c->used = 0;
    }
    for (; n >= 64; p += 64, n -= 64) sha256_block(c->h, p);
    memcpy(c->buf, p, n);
    c->used = n;
}

/* The padding: a 1 bit, zeros, the length in bits as 64 bits big-endian. */
void usg_sha256_final(usg_sha256 *c, unsigned char out[32])
{
    uint64_t bits = c->bytes * 8;
    unsigned char pad[72] = {0x80};
    size_t n = (c->used < 56 ? 56 : 120) - c->used;
    for (int i = 0; i < 8; i++) pad[n + i] = (unsigned char)(bits >> (56 - 8 * i));
    usg_sha256_update(c, pad, n + 8);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(c->h[i] >> (24 - 8 * j));
}

int usg_sha256_file(const char *path, int gunzip, char hex[65], uint64_t *size,
                    char *err, size_t errlen)
{
    static unsigned char buf[1 << 16];
    usg_sha256 c;
    usg_sha256_init(&c);
    /* gzread passes a file that is not gzip through as it is. */
    gzFile gz = NULL;
    FILE *f = NULL;
    if (gunzip) gz = gzopen(path, "rb");
    else f = fopen(path, "rb");
    if (!gz && !f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        int n = gz ? gzread(gz, buf, sizeof buf) : (int)fread(buf, 1, sizeof buf, f);
        if (n < 0 || (f && n == 0 && ferror(f))) {
            int e;
            const char *why = gz ? gzerror(gz, &e) : strerror(errno);
            snprintf(err, errlen, "cannot read %s: %s", path, why);
            if (gz) gzclose(gz); else fclose(f);
            return -1;
        }
        if (n == 0) break;
        usg_sha256_update(&c, buf, (size_t)n);
    }
    if (gz) gzclose(gz); else fclose(f);
    unsigned char d[32];
    *size = c.bytes;                    /* before the padding counts in */
    usg_sha256_final(&c, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return 0;
}

/* ==== Downloads ========================================================== */

/* Ctrl-C during a download stops it at the next progress callback; the
 * part file stays, so the next `usagi data get` resumes it. */
static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    FILE *f;
    const usg_fetch_opts *o;
    curl_off_t have;        /* bytes in the part file before this transfer */
    curl_off_t got;         /* bytes written by this transfer */
    int checked;            /* whether the status of the first answer was seen */
    CURL *curl;
    double t0, shown;
    int lines;              /* progress lines printed (not on a terminal) */
    int local_error;
} xfer;

static void human(char *out, size_t n, double bytes)
{
    if (bytes >= 1e9) snprintf(out, n, "%.2f GB", bytes / 1e9);
    else if (bytes >= 1e6) snprintf(out, n, "%.1f MB", bytes / 1e6);
    else snprintf(out, n, "%.0f kB", bytes / 1e3);
}

/* The progress: on a terminal a bar redrawn ten times a second, else one
 * line every five seconds (a log file gets a few lines, not thousands). */
static void show_progress(xfer *x, curl_off_t total, int last)
{
    double t = now();
    int tty = x->o->progress == 1;
    /* Not on a terminal: a line every 5 s, and a last one only after
     * others (a quick download needs none). */
    if (!last && t - x->shown < (tty ? 0.1 : 5.0)) return;
    if (last && !tty && x->lines == 0) return;
    x->lines++;
    x->shown = t;
    double done = (double)(x->have + x->got), all = total > 0 ? (double)(x->have + total) : 0;
    double rate = t > x->t0 + 0.2 ? (double)x->got / (t - x->t0) : 0;
    char d[32], a[32], r[32];
    human(d, sizeof d, done);
    human(a, sizeof a, all);
    human(r, sizeof r, rate);
    if (tty) {
        char bar[31];
        int fill = all > 0 ? (int)(30 * done / all) : 0;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        if (all > 0)
            fprintf(stderr, "\r  %-28.28s [%s] %3d%%  %s / %s  %s/s  ", x->o->label, bar,
                    (int)(100 * done / all), d, a, r);
        else
            fprintf(stderr, "\r  %-28.28s %s  %s/s  ", x->o->label, d, r);
        if (last) fputc('\n', stderr);
    } else if (all > 0) {
        fprintf(stderr, "  %s: %s of %s (%d%%)\n", x->o->label, d, a, (int)(100 * done / all));
    } else {
        fprintf(stderr, "  %s: %s\n", x->o->label, d);
    }
    fflush(stderr);
}

static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dlnow; (void)ultotal; (void)ulnow;
    xfer *x = p;
    if (stop_requested) return 1;
    if (x->o->progress && x->got > 0) show_progress(x, dltotal, 0);
    return 0;
}

/* A server that answers a Range request with the whole body (200, not
 * 206) would append the file to its own beginning: start the part over. */
static size_t on_data(char *data, size_t size, size_t n, void *p)
{
    xfer *x = p;
    if (!x->checked) {
        long status = 0;
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
        x->checked = 1;
        if (x->have > 0 && status == 200) {
            if (fflush(x->f) != 0 || ftruncate(fileno(x->f), 0) != 0 || fseek(x->f, 0, SEEK_SET) != 0) {
                x->local_error = errno;
                return 0;
            }
            x->have = 0;
        }
    }
    size_t bytes = size * n;
    if (fwrite(data, 1, bytes, x->f) != bytes) {
        x->local_error = errno ? errno : EIO;
        return 0;
    }
    x->got += (curl_off_t)bytes;
    return bytes;
}

/* One transfer appending to part from its current size. */
static int fetch_once(const char *url, const char *part, const usg_fetch_opts *o, long *http,
                      char *err, size_t errlen)
{
    FILE *f = fopen(part, "ab");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", part, strerror(errno));
        return USG_FETCH_LOCAL;
    }
    CURL *curl = curl_easy_init();
    if (!curl) {
        fclose(f);
        snprintf(err, errlen, "libcurl could not start a transfer");
        return USG_FETCH_LOCAL;
    }
    xfer x = {.f = f, .o = o, .curl = curl, .t0 = now()};
    x.shown = x.t0;
    x.have = (curl_off_t)ftello(f);
    if (x.have < 0) x.have = 0;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "usagi-data/1 (libcurl)");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, o->connect_timeout > 0 ? o->connect_timeout : 30L);
    /* A stalled transfer (under one byte a second for stall_timeout) fails
     * rather than hanging; a slow but moving one goes on. */
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, o->stall_timeout > 0 ? o->stall_timeout : 60L);
    curl_easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE, x.have);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &x);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, http);
    curl_off_t total = -1;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &total);
    if (o->progress && rc == CURLE_OK && x.got > 0) show_progress(&x, total, 1);
    else if (o->progress == 1 && x.got > 0) fputc('\n', stderr);
    curl_easy_cleanup(curl);
    int closed = fclose(f);
    if (rc == CURLE_OK && closed != 0) {
        snprintf(err, errlen, "cannot write %s: %s", part, strerror(errno));
        return USG_FETCH_LOCAL;
    }
    if (rc == CURLE_OK) return USG_FETCH_OK;
    if (rc == CURLE_ABORTED_BY_CALLBACK && stop_requested) {
        snprintf(err, errlen, "interrupted; %s keeps the %lld bytes fetched so far: the same command resumes it", part,
                 (long long)(x.have + x.got));
        return USG_FETCH_INTERRUPTED;
    }
    if (rc == CURLE_WRITE_ERROR && x.local_error) {
        snprintf(err, errlen, "cannot write %s: %s", part, strerror(x.local_error));
        return USG_FETCH_LOCAL;
    }
    if (rc == CURLE_RANGE_ERROR) {
        snprintf(err, errlen, "%s: the server cannot resume a download (no HTTP Range)", url);
        *http = 416;                    /* start over, as for a range it refuses */
        return USG_FETCH_HTTP;
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
        snprintf(err, errlen, "%s: the server answered HTTP %ld", url, *http);
        return USG_FETCH_HTTP;
    }
    snprintf(err, errlen, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return USG_FETCH_NETWORK;
}

int usg_fetch(const char *url, const char *part, const usg_fetch_opts *o, long *http,
              char *err, size_t errlen)
{
    static int initialized;
    if (!initialized) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
            snprintf(err, errlen, "libcurl could not be initialized");
            return USG_FETCH_LOCAL;
        }
        initialized = 1;
    }
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    stop_requested = 0;
    sigaction(SIGINT, &sa, &old);
    *http = 0;
    int rc = fetch_once(url, part, o, http, err, errlen);
    /* 416: the part file is as long as the whole or longer (a file changed
     * on the server), or the server ignores ranges: start over, once. */
    if (rc == USG_FETCH_HTTP && *http == 416) {
        FILE *f = fopen(part, "wb");
        if (f) fclose(f);
        rc = fetch_once(url, part, o, http, err, errlen);
    }
    sigaction(SIGINT, &old, NULL);
    return rc;
}
