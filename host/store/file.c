/*
 * file.c -- whole files without HDF5: reading a data file whole, gzip
 * compressed or not, and a file's CRC-32. They live in the store because
 * the store already brings zlib in (libhdf5 links it), so the Lua binding
 * above needs no zlib of its own; usagi.sys.read and usagi.sys.crc32 are
 * thin wrappers over them.
 *
 * Errors follow the system's: the message is "fn: 'path': <the system's
 * reason>", and errno is left as the failing call set it, so a caller can
 * tell a missing file (ENOENT) from the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "usagi/store.h"

/* USG_IO with "fn: 'path': strerror(errno)", errno kept. */
static usg_status fail_errno(const char *fn, const char *path)
{
    int e = errno;
    usg_fail(USG_IO, "%s: '%s': %s", fn, path, strerror(e));
    errno = e;
    return USG_IO;
}

/* Move buf (n bytes used) into a new block of cap bytes; NULL on NOMEM,
 * with buf still valid. */
static char *grow(char *buf, size_t n, size_t cap)
{
    char *p = usg_alloc(cap);
    if (!p) return NULL;
    if (n) memcpy(p, buf, n);
    usg_free(buf);
    return p;
}

usg_status usg_file_read(const char *path, char **data, size_t *len, const char *fn)
{
    *data = NULL;
    *len = 0;
    if (!fn) fn = "usg_file_read";
    /* a plain file's size is the exact size wanted; a gzip file's is a
     * start that doubles */
    struct stat st;
    size_t cap = (size_t)1 << 16;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size + 1 > cap)
        cap = (size_t)st.st_size + 1;
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        if (errno == 0) errno = ENOMEM;       /* zlib's own allocation failed */
        return fail_errno(fn, path);
    }
    gzbuffer(f, 1 << 17);
    char *buf = usg_alloc(cap);
    size_t n = 0;
    usg_status s = buf ? USG_OK : USG_NOMEM;
    while (s == USG_OK) {
        if (cap - n < 2) {                    /* room for a byte and the NUL */
            char *p = cap > SIZE_MAX / 2 ? NULL : grow(buf, n, 2 * cap);
            if (!p) { s = USG_NOMEM; break; }
            buf = p;
            cap *= 2;
        }
        size_t want = cap - n - 1;
        int got = gzread(f, buf + n, want > INT_MAX ? INT_MAX : (unsigned)want);
        if (got == 0) break;
        if (got > 0) { n += (size_t)got; continue; }
        int zerr;
        const char *msg = gzerror(f, &zerr);
        if (zerr == Z_ERRNO) {
            s = fail_errno(fn, path);
        } else {
            s = usg_fail(USG_IO, "%s: '%s': %s", fn, path, msg);
            errno = EILSEQ;                   /* not the system's: the bytes are no gzip */
        }
    }
    int e = errno;
    gzclose(f);
    errno = e;
    if (s != USG_OK) {
        usg_free(buf);
        if (s == USG_NOMEM) usg_fail(USG_NOMEM, "%s: '%s': out of memory", fn, path);
        return s;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return USG_OK;
}

usg_status usg_file_crc32(const char *path, uint32_t *crc, const char *fn)
{
    *crc = 0;
    if (!fn) fn = "usg_file_crc32";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail_errno(fn, path);
    unsigned char buf[1 << 16];
    uLong c = crc32(0L, Z_NULL, 0);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            usg_status s = fail_errno(fn, path);
            int e = errno;
            close(fd);
            errno = e;
            return s;
        }
        if (n == 0) break;
        c = crc32(c, buf, (uInt)n);
    }
    close(fd);
    *crc = (uint32_t)c;
    return USG_OK;
}
