/*
 * scratch.h -- a scratch directory for the tests that write files (the
 * store's): made under $TMPDIR (else /tmp) by the group setup, removed with
 * everything in it by the teardown. Include after _GNU_SOURCE is defined.
 */
#ifndef USAGI_TEST_SCRATCH_H
#define USAGI_TEST_SCRATCH_H

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

static char tmpdir[512];

/* The path of name inside the scratch directory; the last four results stay
 * valid, so a call can take several paths. */
static const char *tmp(const char *name)
{
    static char buf[4][700];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* Makes tmpdir, "<TMPDIR>/<prefix>_XXXXXX"; 0, or -1 when it cannot. */
static int scratch_make(const char *prefix)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/%s_XXXXXX", base && *base ? base : "/tmp", prefix);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static int scratch_remove(void) { return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* The bytes of the file at path (malloc'd, the caller frees) and their
 * number in *n. */
static inline unsigned char *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc(*n);
    assert_int_equal(fread(buf, 1, *n, fp), *n);
    fclose(fp);
    return buf;
}

#endif
