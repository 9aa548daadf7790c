/*
 * test_file.c -- cmocka tests of host/store/file.c: usg_file_read gives a
 * plain file's bytes and a gzip file's decompressed bytes (named .gz or
 * not, larger than its first buffer, empty, with NULs inside), NUL
 * terminated; usg_file_crc32 gives zlib's CRC-32. Their errors: USG_IO,
 * the message "fn: 'path': reason", errno as the system set it (ENOENT,
 * EISDIR) or EILSEQ for a corrupt gzip stream, the outputs cleared; and
 * each allocation of a read failing in turn is USG_NOMEM with nothing
 * leaked. Files live in a scratch directory (scratch.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "scratch.h"
#include "testutil.h"
#include "usagi/store.h"

static int setup(void **state)
{
    (void)state;
    return scratch_make("usagi_file");
}

static int teardown(void **state)
{
    (void)state;
    return scratch_remove();
}

static void put(const char *path, const void *bytes, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void put_gz(const char *path, const void *bytes, size_t n)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, bytes, (unsigned)n), (int)n);
    assert_int_equal(gzclose(f), Z_OK);
}

/* n bytes of a pattern that is not all one value and holds NULs. */
static unsigned char *pattern(size_t n)
{
    unsigned char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 7 % 251);
    return p;
}

static void expect_read(const char *path, const unsigned char *want, size_t n)
{
    char *data = (char *)SENT;
    size_t len = 1;
    if (usg_file_read(path, &data, &len, "t") != USG_OK) fail_msg("%s", usg_errmsg());
    assert_int_equal(len, n);
    assert_memory_equal(data, want, n);
    assert_int_equal(data[n], '\0');
    usg_free(data);
}

static void test_read_plain_and_gzip(void **state)
{
    (void)state;
    size_t big = 300000;                       /* past the 64 KiB a gzip read starts with */
    unsigned char *p = pattern(big);
    put(tmp("plain.bin"), p, big);
    put_gz(tmp("data.gz"), p, big);
    put_gz(tmp("no_suffix"), p, 1000);
    put(tmp("empty"), "", 0);
    expect_read(tmp("plain.bin"), p, big);
    expect_read(tmp("data.gz"), p, big);
    expect_read(tmp("no_suffix"), p, 1000);
    expect_read(tmp("empty"), p, 0);
    free(p);
}

/* A failed read: status, message, errno, and *data NULL, *len 0. */
static void expect_read_err(const char *path, const char *fn, const char *reason, int err)
{
    char *data = (char *)SENT;
    size_t len = 1;
    char want[1024];
    snprintf(want, sizeof want, "%s: '%s': %s", fn, path, reason);
    errno = 0;
    expect_err(usg_file_read(path, &data, &len, strcmp(fn, "usg_file_read") ? fn : NULL),
               USG_IO, want);
    assert_int_equal(errno, err);
    assert_null(data);
    assert_int_equal(len, 0);
}

static void test_read_errors(void **state)
{
    (void)state;
    expect_read_err(tmp("none"), "sys.read", "No such file or directory", ENOENT);
    expect_read_err(tmp("none"), "usg_file_read", "No such file or directory", ENOENT);
    expect_read_err(tmpdir, "sys.read", "Is a directory", EISDIR);
    /* a gzip header, then bytes that are no deflate stream */
    put(tmp("bad.gz"), "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage, not deflate", 30);
    expect_read_err(tmp("bad.gz"), "sys.read", "", EILSEQ);
}

/* Each allocation of a gzip read that grows its buffer, failing in turn. */
static void test_read_nomem(void **state)
{
    (void)state;
    size_t big = 300000;
    unsigned char *p = pattern(big);
    put_gz(tmp("grow.gz"), p, big);
    int failures = 0;
    for (long k = 1;; k++) {
        size_t live = usg_alloc_live_bytes();
        char *data = (char *)SENT;
        size_t len = 1;
        usg_alloc_fail_after(k);
        usg_status s = usg_file_read(tmp("grow.gz"), &data, &len, "sys.read");
        usg_alloc_fail_after(0);
        if (s == USG_OK) {
            assert_int_equal(len, big);
            assert_memory_equal(data, p, big);
            usg_free(data);
            assert_int_equal(usg_alloc_live_bytes(), live);
            break;
        }
        expect_err(s, USG_NOMEM, "sys.read: '");
        assert_null(data);
        assert_int_equal(len, 0);
        assert_int_equal(usg_alloc_live_bytes(), live);
        failures++;
        assert_true(k < 20);
    }
    assert_true(failures >= 3);                /* the first buffer and two doublings */
    free(p);
}

static void test_crc32(void **state)
{
    (void)state;
    uint32_t crc = 1;
    put(tmp("check"), "123456789", 9);
    assert_int_equal(usg_file_crc32(tmp("check"), &crc, "sys.crc32"), USG_OK);
    assert_int_equal(crc, 0xCBF43926u);        /* the CRC-32 check value */
    put(tmp("empty"), "", 0);
    assert_int_equal(usg_file_crc32(tmp("empty"), &crc, NULL), USG_OK);
    assert_int_equal(crc, 0);
    size_t big = 200000;                       /* several reads of 64 KiB */
    unsigned char *p = pattern(big);
    put(tmp("big"), p, big);
    assert_int_equal(usg_file_crc32(tmp("big"), &crc, NULL), USG_OK);
    assert_int_equal(crc, (uint32_t)crc32(0L, p, (uInt)big));
    free(p);

    char want[1024];
    errno = 0;
    snprintf(want, sizeof want, "sys.crc32: '%s': No such file or directory", tmp("none"));
    expect_err(usg_file_crc32(tmp("none"), &crc, "sys.crc32"), USG_IO, want);
    assert_int_equal(errno, ENOENT);
    snprintf(want, sizeof want, "usg_file_crc32: '%s': Is a directory", tmpdir);
    expect_err(usg_file_crc32(tmpdir, &crc, NULL), USG_IO, want);
    assert_int_equal(errno, EISDIR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_plain_and_gzip),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_read_nomem),
        cmocka_unit_test(test_crc32),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
