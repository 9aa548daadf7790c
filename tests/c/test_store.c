/*
 * test_store.c -- cmocka tests of host/store (libusagi_store): round trips
 * of every dtype at ranks 0..4 (views and empty dims too), the types read
 * from files other tools write (int8..uint64, both byte orders, float16,
 * bool enums), attributes of every kind, extendable datasets, groups and
 * paths, every error path with its message, and hostile files: truncated
 * copies, random bytes behind an HDF5 signature, corrupted copies, dims
 * claiming 2^40 elements, rank 12, absurd chunks, strings and compounds.
 *
 * Hostile files are crafted here through libhdf5 itself. Every file lives
 * in a fresh directory under $TMPDIR (or /tmp), removed at the end.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <hdf5.h>

#include "scratch.h"
#include "testutil.h"
#include "usagi/store.h"

/* libhdf5 1.10 loses the object header it was loading when the header's
 * checksum fails (424 bytes per damaged header read): not the store's to
 * free. LeakSanitizer (the sanitized test build) asks for its suppressions
 * through this hook; other builds never call it. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libhdf5\n"; }

/* ==== Scratch directory (scratch.h) ==================================== */

static int setup(void **state)
{
    if (scratch_make("usagi_store") != 0) return -1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    return scratch_remove();
}

/* ==== Helpers =========================================================== */

/* A failing open must leave *out NULL: start from a sentinel to see it. */
#define H5SENT ((usg_h5 *)SENT)

static usg_h5 *open_ok(const char *path, const char *mode)
{
    usg_h5 *f = NULL;
    if (usg_h5_open(&f, path, mode) != USG_OK) fail_msg("open %s: %s", path, usg_errmsg());
    return f;
}

static void close_ok(usg_h5 *f) { assert_int_equal(usg_h5_close(f), USG_OK); }

static void write_ok(usg_h5 *f, const char *path, usg_tensor *t)
{
    if (usg_h5_write(f, path, t) != USG_OK) fail_msg("write %s: %s", path, usg_errmsg());
}

static usg_tensor *read_ok(usg_h5 *f, const char *path)
{
    usg_tensor *t = NULL;
    if (usg_h5_read(f, path, &t) != USG_OK) fail_msg("read %s: %s", path, usg_errmsg());
    return t;
}

/* A tensor of dtype dt and the given shape with distinct values. */
static usg_tensor *ramp(usg_dtype dt, int ndim, const int64_t *shape)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_empty(&t, dt, ndim, shape), USG_OK);
    for (int64_t i = 0; i < usg_tensor_numel(t); i++)
        usg_store(dt, usg_tensor_data(t), i, dt == USG_I32 ? i * 7 - 20 : i * 1.25 - 3.5);
    return t;
}

static void expect_same(const usg_tensor *got, const usg_tensor *want)
{
    check_shape(got, want->dtype, want->ndim, want->shape);
    assert_true(usg_tensor_is_contiguous(got));
    for (int64_t i = 0; i < usg_tensor_numel(want); i++)
        if (usg_tensor_get_flat(got, i) != usg_tensor_get_flat(want, i))
            fail_msg("element %lld: got %g, want %g", (long long)i, usg_tensor_get_flat(got, i),
                     usg_tensor_get_flat(want, i));
}

/* The call fails with `want` and the message names fn, the file and obj. */
static void expect_h5_err(usg_status got, usg_status want, const char *fn, const char *file,
                          const char *obj, const char *needle)
{
    char head[800];
    if (obj) snprintf(head, sizeof head, "%s: '%s' '%s': ", fn, file, obj);
    else snprintf(head, sizeof head, "%s: '%s': ", fn, file);
    if (got != want) fail_msg("status %d, want %d (%s)", got, want, usg_errmsg());
    if (strncmp(usg_errmsg(), head, strlen(head)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", usg_errmsg(), head);
    if (!strstr(usg_errmsg(), needle)) fail_msg("message \"%s\" lacks \"%s\"", usg_errmsg(), needle);
}

/* ==== Round trips ======================================================= */

static void test_roundtrip_dtypes_ranks(void **state)
{
    const int64_t shapes[5][4] = {{0}, {5}, {2, 3}, {2, 3, 4}, {2, 1, 3, 2}};
    const usg_dtype dts[3] = {USG_F32, USG_F64, USG_I32};
    const char *path = tmp("rt.h5");
    usg_h5 *f = open_ok(path, "w");
    for (int d = 0; d < 3; d++)
        for (int r = 0; r <= 4; r++) {
            char name[64];
            snprintf(name, sizeof name, "/%s/rank%d", usg_dtype_name(dts[d]), r);
            usg_tensor *t = ramp(dts[d], r, shapes[r]);
            write_ok(f, name, t);
            usg_tensor *back = read_ok(f, name);
            expect_same(back, t);
            usg_tensor_release(back);
            usg_tensor_release(t);
        }
    close_ok(f);
    /* and again from a fresh handle, read-only */
    f = open_ok(path, "r");
    usg_tensor *t = ramp(USG_F64, 3, shapes[3]), *back = read_ok(f, "/f64/rank3");
    expect_same(back, t);
    usg_tensor_release(back);
    usg_tensor_release(t);
    char dt[32];
    assert_int_equal(usg_h5_dtype(f, "/i32/rank2", dt, sizeof dt), USG_OK);
    assert_string_equal(dt, "i32");
    int ndim;
    int64_t shape[USG_MAX_DIMS];
    assert_int_equal(usg_h5_shape(f, "/f32/rank4", &ndim, shape), USG_OK);
    assert_int_equal(ndim, 4);
    assert_int_equal(shape[3], 2);
    assert_int_equal(usg_h5_shape(f, "/f32/rank0", &ndim, shape), USG_OK);
    assert_int_equal(ndim, 0);
    close_ok(f);
}

/* Views are written in logical order: transposed, narrowed, expanded. */
static void test_roundtrip_views(void **state)
{
    usg_h5 *f = open_ok(tmp("views.h5"), "w");
    for (int d = 0; d < 3; d++) {
        usg_dtype dt = (usg_dtype)d;
        usg_tensor *t = transposed(ramp(dt, 2, SHAPE(3, 4))), *nar = NULL, *ex = NULL, *back;
        write_ok(f, "/t", t);
        back = read_ok(f, "/t");
        expect_same(back, t);
        assert_int_equal(back->shape[0], 4);
        usg_tensor_release(back);
        assert_int_equal(usg_narrow(&nar, t, 1, 1, 2), USG_OK);
        write_ok(f, "/g/narrow", nar);
        back = read_ok(f, "/g/narrow");
        expect_same(back, nar);
        usg_tensor_release(back);
        usg_tensor *row = ramp(dt, 1, SHAPE(3));
        assert_int_equal(usg_expand(&ex, row, 2, SHAPE(2, 3)), USG_OK);
        write_ok(f, "/g/expanded", ex);
        back = read_ok(f, "/g/expanded");
        expect_same(back, ex);
        usg_tensor_release(back);
        usg_tensor_release(row);
        usg_tensor_release(ex);
        usg_tensor_release(nar);
        usg_tensor_release(t);
    }
    close_ok(f);
}

static void test_roundtrip_empty_and_overwrite(void **state)
{
    const char *path = tmp("over.h5");
    usg_h5 *f = open_ok(path, "w");
    usg_tensor *e = ramp(USG_F32, 3, SHAPE(2, 0, 3)), *back;
    write_ok(f, "/empty", e);
    back = read_ok(f, "/empty");
    check_shape(back, USG_F32, 3, SHAPE(2, 0, 3));
    usg_tensor_release(back);
    /* same type and shape: in place; another shape or dtype: replaced */
    usg_tensor *a = ramp(USG_F32, 1, SHAPE(4)), *b = ramp(USG_I32, 2, SHAPE(2, 2));
    write_ok(f, "/x", a);
    usg_fill_(a, 9);
    write_ok(f, "/x", a);
    back = read_ok(f, "/x");
    expect_same(back, a);
    usg_tensor_release(back);
    write_ok(f, "/x", b);
    back = read_ok(f, "/x");
    expect_same(back, b);
    usg_tensor_release(back);
    /* rewriting in place a thousand times does not grow the file */
    close_ok(f);
    struct stat st0, st1;
    f = open_ok(path, "a");
    write_ok(f, "/x", b);
    close_ok(f);
    stat(path, &st0);
    f = open_ok(path, "a");
    for (int i = 0; i < 1000; i++) write_ok(f, "/x", b);
    close_ok(f);
    stat(path, &st1);
    assert_int_equal(st0.st_size, st1.st_size);
    usg_tensor_release(a);
    usg_tensor_release(b);
    usg_tensor_release(e);
}

/* ==== Types from other writers ========================================== */

/* Write n values v (given as doubles) into dataset name of file type
 * `ftype`, converting from native double; dims (n) or scalar when n < 0. */
static void craft_numeric(hid_t fid, const char *name, hid_t ftype, int n, const double *v)
{
    hsize_t dims[1] = {(hsize_t)(n < 0 ? 1 : n)};
    hid_t sp = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(fid, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(sp);
}

static hid_t float16(void)
{
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_precision(t, 16);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 15);
    return t;
}

static void expect_read(usg_h5 *f, const char *name, usg_dtype dt, int64_t n, const double *v)
{
    usg_tensor *t = read_ok(f, name);
    assert_int_equal(t->dtype, dt);
    expect_values(t, n, v);
    usg_tensor_release(t);
}

static void test_foreign_types(void **state)
{
    const char *path = tmp("foreign.h5");
    hid_t fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const double small[] = {-3, 0, 7, 100}, usmall[] = {0, 7, 200, 255};
    craft_numeric(fid, "i8", H5T_STD_I8LE, 4, small);
    craft_numeric(fid, "u8", H5T_STD_U8LE, 4, usmall);
    craft_numeric(fid, "i16be", H5T_STD_I16BE, 4, small);
    craft_numeric(fid, "u16be", H5T_STD_U16BE, 4, (const double[]){0, 1, 40000, 65535});
    craft_numeric(fid, "i32be", H5T_STD_I32BE, 4, small);
    craft_numeric(fid, "u32", H5T_STD_U32LE, 4, usmall);
    craft_numeric(fid, "i64", H5T_STD_I64LE, 4, (const double[]){-2147483648.0, 0, 1, 2147483647.0});
    craft_numeric(fid, "u64be", H5T_STD_U64BE, 4, usmall);
    craft_numeric(fid, "i64big", H5T_STD_I64LE, 3, (const double[]){1, 3e9, 2});
    craft_numeric(fid, "u32big", H5T_STD_U32LE, 2, (const double[]){5, 4e9});
    craft_numeric(fid, "f32be", H5T_IEEE_F32BE, 3, (const double[]){1.5, -2, 1e30});
    craft_numeric(fid, "f64be", H5T_IEEE_F64BE, 2, (const double[]){0.1, -1e300});
    craft_numeric(fid, "i64scalar", H5T_STD_I64LE, -1, (const double[]){42});
    hid_t f16 = float16();
    craft_numeric(fid, "f16", f16, 3, (const double[]){1.5, -2, 0.25});
    H5Tclose(f16);
    /* h5py's bool: enum int8 {FALSE, TRUE} */
    hid_t b = H5Tenum_create(H5T_NATIVE_INT8);
    int8_t no = 0, yes = 1, vals[3] = {1, 0, 1};
    H5Tenum_insert(b, "FALSE", &no);
    H5Tenum_insert(b, "TRUE", &yes);
    hsize_t three = 3;
    hid_t sp = H5Screate_simple(1, &three, NULL);
    hid_t d = H5Dcreate2(fid, "bool", b, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Dwrite(d, b, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals) >= 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(b);
    H5Fclose(fid);

    usg_h5 *f = open_ok(path, "r");
    expect_read(f, "i8", USG_I32, 4, small);
    expect_read(f, "u8", USG_I32, 4, usmall);
    expect_read(f, "i16be", USG_I32, 4, small);
    expect_read(f, "u16be", USG_I32, 4, (const double[]){0, 1, 40000, 65535});
    expect_read(f, "i32be", USG_I32, 4, small);
    expect_read(f, "u32", USG_I32, 4, usmall);
    expect_read(f, "i64", USG_I32, 4, (const double[]){-2147483648.0, 0, 1, 2147483647.0});
    expect_read(f, "u64be", USG_I32, 4, usmall);
    expect_read(f, "f32be", USG_F32, 3, (const double[]){1.5, -2, (float)1e30});
    expect_read(f, "f64be", USG_F64, 2, (const double[]){0.1, -1e300});
    expect_read(f, "f16", USG_F32, 3, (const double[]){1.5, -2, 0.25});
    expect_read(f, "bool", USG_I32, 3, (const double[]){1, 0, 1});
    usg_tensor *t = read_ok(f, "i64scalar");
    check_shape(t, USG_I32, 0, NULL);
    expect_values(t, 1, (const double[]){42});
    usg_tensor_release(t);
    t = SENT;
    expect_h5_err(usg_h5_read(f, "i64big", &t), USG_TYPE, "h5.read", path, "i64big",
                  "value 3000000000 (element 2) does not fit in i32");
    assert_null(t);
    expect_h5_err(usg_h5_read(f, "u32big", &t), USG_TYPE, "h5.read", path, "u32big",
                  "4000000000");
    const char *names[][2] = {{"i8", "i8"}, {"u16be", "u16"}, {"u64be", "u64"}, {"f16", "f16"},
                              {"f64be", "f64"}, {"bool", "bool"}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char dt[32];
        assert_int_equal(usg_h5_dtype(f, names[i][0], dt, sizeof dt), USG_OK);
        assert_string_equal(dt, names[i][1]);
    }
    close_ok(f);
}

/* ==== Attributes ======================================================== */

static usg_h5_value vint(int64_t i) { return (usg_h5_value){.type = USG_H5_VINT, .i = i}; }

static void test_attributes(void **state)
{
    const char *path = tmp("attrs.h5");
    usg_h5 *f = open_ok(path, "w");
    usg_tensor *w = ramp(USG_F32, 2, SHAPE(2, 3)), *idx = ramp(USG_I32, 1, SHAPE(4));
    write_ok(f, "/d", w);
    assert_int_equal(usg_h5_group(f, "/g/h"), USG_OK);
    char *list[] = {"rnn", "", "lstm ü"};
    const char *objs[] = {"/", "/g/h", "/d"};
    for (int o = 0; o < 3; o++) {
        usg_h5_value v = vint(-((int64_t)1 << 40));
        assert_int_equal(usg_h5_attr_set(f, objs[o], "int", &v), USG_OK);
        v = (usg_h5_value){.type = USG_H5_VFLOAT, .d = 0.1};
        assert_int_equal(usg_h5_attr_set(f, objs[o], "float", &v), USG_OK);
        v = (usg_h5_value){.type = USG_H5_VSTRING, .s = "héllo wörld"};
        assert_int_equal(usg_h5_attr_set(f, objs[o], "str", &v), USG_OK);
        v = (usg_h5_value){.type = USG_H5_VBOOL, .b = true};
        assert_int_equal(usg_h5_attr_set(f, objs[o], "yes", &v), USG_OK);
        v = (usg_h5_value){.type = USG_H5_VBOOL, .b = false};
        assert_int_equal(usg_h5_attr_set(f, objs[o], "no", &v), USG_OK);
        v = (usg_h5_value){.type = USG_H5_VTENSOR, .t = w};
        assert_int_equal(usg_h5_attr_set(f, objs[o], "tensor", &v), USG_OK);
        v = (usg_h5_value){.type = USG_H5_VTENSOR, .t = idx};
        assert_int_equal(usg_h5_attr_set(f, objs[o], "ids", &v), USG_OK);
        v = (usg_h5_value){.type = USG_H5_VSTRINGS, .strs = {3, list}};
        assert_int_equal(usg_h5_attr_set(f, objs[o], "list", &v), USG_OK);
        v = (usg_h5_value){.type = USG_H5_VSTRINGS, .strs = {0, NULL}};
        assert_int_equal(usg_h5_attr_set(f, objs[o], "nothing", &v), USG_OK);
        /* replace with another type */
        v = vint(7);
        assert_int_equal(usg_h5_attr_set(f, objs[o], "float", &v), USG_OK);
        v = (usg_h5_value){.type = USG_H5_VFLOAT, .d = 0.25};
        assert_int_equal(usg_h5_attr_set(f, objs[o], "float", &v), USG_OK);
    }
    close_ok(f);

    f = open_ok(path, "a");
    for (int o = 0; o < 3; o++) {
        usg_h5_value v;
        assert_int_equal(usg_h5_attr_get(f, objs[o], "int", &v), USG_OK);
        assert_int_equal(v.type, USG_H5_VINT);
        assert_true(v.i == -((int64_t)1 << 40));
        assert_int_equal(usg_h5_attr_get(f, objs[o], "float", &v), USG_OK);
        assert_int_equal(v.type, USG_H5_VFLOAT);
        assert_true(v.d == 0.25);
        assert_int_equal(usg_h5_attr_get(f, objs[o], "str", &v), USG_OK);
        assert_int_equal(v.type, USG_H5_VSTRING);
        assert_string_equal(v.s, "héllo wörld");
        usg_h5_value_clear(&v);
        assert_int_equal(usg_h5_attr_get(f, objs[o], "yes", &v), USG_OK);
        assert_int_equal(v.type, USG_H5_VBOOL);
        assert_true(v.b);
        assert_int_equal(usg_h5_attr_get(f, objs[o], "no", &v), USG_OK);
        assert_int_equal(v.type, USG_H5_VBOOL);
        assert_false(v.b);
        assert_int_equal(usg_h5_attr_get(f, objs[o], "tensor", &v), USG_OK);
        assert_int_equal(v.type, USG_H5_VTENSOR);
        expect_same(v.t, w);
        usg_h5_value_clear(&v);
        assert_int_equal(usg_h5_attr_get(f, objs[o], "ids", &v), USG_OK);
        expect_same(v.t, idx);
        usg_h5_value_clear(&v);
        assert_int_equal(usg_h5_attr_get(f, objs[o], "list", &v), USG_OK);
        assert_int_equal(v.type, USG_H5_VSTRINGS);
        assert_int_equal(v.strs.n, 3);
        for (int i = 0; i < 3; i++) assert_string_equal(v.strs.v[i], list[i]);
        usg_h5_value_clear(&v);
        assert_int_equal(usg_h5_attr_get(f, objs[o], "nothing", &v), USG_OK);
        assert_int_equal(v.type, USG_H5_VSTRINGS);
        assert_int_equal(v.strs.n, 0);
        usg_h5_value_clear(&v);
        assert_int_equal(usg_h5_attr_get(f, objs[o], "missing", &v), USG_OK);
        assert_int_equal(v.type, USG_H5_VNONE);
        usg_h5_names names;
        assert_int_equal(usg_h5_attr_names(f, objs[o], &names), USG_OK);
        const char *want[] = {"float", "ids", "int", "list", "no", "nothing", "str", "tensor", "yes"};
        assert_int_equal(names.n, 9);
        for (int i = 0; i < 9; i++) assert_string_equal(names.v[i], want[i]);
        usg_h5_names_free(&names);
        assert_int_equal(usg_h5_attr_delete(f, objs[o], "int"), USG_OK);
        assert_int_equal(usg_h5_attr_delete(f, objs[o], "int"), USG_OK);   /* already gone */
        assert_int_equal(usg_h5_attr_get(f, objs[o], "int", &v), USG_OK);
        assert_int_equal(v.type, USG_H5_VNONE);
    }
    /* errors */
    usg_h5_value v = vint(1);
    expect_h5_err(usg_h5_attr_set(f, "/nope", "x", &v), USG_ARG, "h5.attr", path, "/nope",
                  "no such object");
    expect_h5_err(usg_h5_attr_get(f, "/nope", "x", &v), USG_ARG, "h5.attr", path, "/nope",
                  "no such object");
    expect_h5_err(usg_h5_attr_set(f, "/", "", &v), USG_ARG, "h5.attr", path, "/", "non-empty");
    usg_tensor *big = ramp(USG_F64, 1, SHAPE(10000));
    v = (usg_h5_value){.type = USG_H5_VTENSOR, .t = big};
    expect_h5_err(usg_h5_attr_set(f, "/", "big", &v), USG_SHAPE, "h5.attr", path, "/",
                  "too big for an attribute");
    usg_tensor_release(big);
    close_ok(f);
    f = open_ok(path, "r");
    v = vint(1);
    expect_h5_err(usg_h5_attr_set(f, "/", "x", &v), USG_IO, "h5.attr", path, "/", "read-only");
    close_ok(f);
    usg_tensor_release(w);
    usg_tensor_release(idx);
}

/* Attributes as h5py and other tools write them: fixed-length strings
 * (NUL- and space-padded), uint64 past INT64_MAX, float32 scalars, a
 * compound (refused, naming it). */
static void test_foreign_attributes(void **state)
{
    const char *path = tmp("fattr.h5");
    hid_t fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sc = H5Screate(H5S_SCALAR), a;
    hid_t s8 = H5Tcopy(H5T_C_S1);
    H5Tset_size(s8, 8);
    H5Tset_strpad(s8, H5T_STR_SPACEPAD);
    a = H5Acreate2(fid, "spaced", s8, sc, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, s8, "abc     ");
    H5Aclose(a);
    H5Tset_strpad(s8, H5T_STR_NULLPAD);
    a = H5Acreate2(fid, "nullpad", s8, sc, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, s8, "abcdefgh");   /* exactly 8: no NUL at all */
    H5Aclose(a);
    H5Tclose(s8);
    uint64_t big = UINT64_MAX;
    a = H5Acreate2(fid, "u64", H5T_STD_U64BE, sc, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_UINT64, &big);
    H5Aclose(a);
    float x = 1.5f;
    a = H5Acreate2(fid, "f32", H5T_IEEE_F32BE, sc, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_FLOAT, &x);
    H5Aclose(a);
    hid_t cmp = H5Tcreate(H5T_COMPOUND, 8);
    H5Tinsert(cmp, "a", 0, H5T_NATIVE_INT32);
    H5Tinsert(cmp, "b", 4, H5T_NATIVE_FLOAT);
    char raw[8] = {0};
    a = H5Acreate2(fid, "cmp", cmp, sc, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, cmp, raw);
    H5Aclose(a);
    H5Tclose(cmp);
    H5Sclose(sc);
    H5Fclose(fid);

    usg_h5 *f = open_ok(path, "r");
    usg_h5_value v;
    assert_int_equal(usg_h5_attr_get(f, "/", "spaced", &v), USG_OK);
    assert_string_equal(v.s, "abc");
    usg_h5_value_clear(&v);
    assert_int_equal(usg_h5_attr_get(f, "/", "nullpad", &v), USG_OK);
    assert_string_equal(v.s, "abcdefgh");
    usg_h5_value_clear(&v);
    assert_int_equal(usg_h5_attr_get(f, "/", "u64", &v), USG_OK);
    assert_int_equal(v.type, USG_H5_VFLOAT);
    assert_true(v.d == 18446744073709551615.0);
    assert_int_equal(usg_h5_attr_get(f, "/", "f32", &v), USG_OK);
    assert_int_equal(v.type, USG_H5_VFLOAT);
    assert_true(v.d == 1.5);
    expect_h5_err(usg_h5_attr_get(f, "/", "cmp", &v), USG_TYPE, "h5.attr", path,
                  "/' attribute 'cmp", "attributes of type compound are not supported");
    assert_int_equal(v.type, USG_H5_VNONE);
    close_ok(f);
}

/* ==== Extendable datasets =============================================== */

static void test_append(void **state)
{
    const char *path = tmp("append.h5");
    usg_h5 *f = open_ok(path, "w");
    int64_t len = 0;
    for (int i = 0; i < 9000; i++) {   /* past the first chunk of 8192 values */
        assert_int_equal(usg_h5_append_number(f, "/metrics/loss", 0.5 * i, &len), USG_OK);
        assert_int_equal(len, i + 1);
    }
    usg_tensor *row = ramp(USG_F32, 1, SHAPE(3)), *rows = ramp(USG_F32, 2, SHAPE(2, 3));
    assert_int_equal(usg_h5_append(f, "/metrics/grad", row, &len), USG_OK);
    assert_int_equal(len, 1);
    assert_int_equal(usg_h5_append(f, "/metrics/grad", rows, &len), USG_OK);
    assert_int_equal(len, 3);
    usg_tensor *tr = transposed(ramp(USG_F32, 2, SHAPE(3, 2)));   /* rows from a view */
    assert_int_equal(usg_h5_append(f, "/metrics/grad", tr, &len), USG_OK);
    assert_int_equal(len, 5);
    /* an i32 series of 0-dim tensors, then numbers converted to it */
    usg_tensor *one = mk(USG_I32, 0, NULL, VALS(4));
    assert_int_equal(usg_h5_append(f, "/metrics/step", one, &len), USG_OK);
    assert_int_equal(usg_h5_append_number(f, "/metrics/step", 5, &len), USG_OK);
    assert_int_equal(len, 2);
    /* a 2-D value starts a dataset of several rows */
    assert_int_equal(usg_h5_append(f, "/metrics/pairs", rows, &len), USG_OK);
    assert_int_equal(len, 2);
    close_ok(f);

    f = open_ok(path, "a");
    usg_tensor *t = read_ok(f, "/metrics/loss");
    check_shape(t, USG_F64, 1, SHAPE(9000));
    for (int i = 0; i < 9000; i += 997) near(usg_tensor_get_flat(t, i), 0.5 * i, 0);
    usg_tensor_release(t);
    t = read_ok(f, "/metrics/grad");
    check_shape(t, USG_F32, 2, SHAPE(5, 3));
    expect_values(t, 15, VALS(-3.5, -2.25, -1, -3.5, -2.25, -1, 0.25, 1.5, 2.75,
                              -3.5, -1, 1.5, -2.25, 0.25, 2.75));
    usg_tensor_release(t);
    t = read_ok(f, "/metrics/step");
    check_shape(t, USG_I32, 1, SHAPE(2));
    expect_values(t, 2, VALS(4, 5));
    usg_tensor_release(t);
    /* appending again after reopening continues the series */
    assert_int_equal(usg_h5_append_number(f, "/metrics/loss", -1, &len), USG_OK);
    assert_int_equal(len, 9001);

    /* errors: dtype, row shape, rank, a non-extendable dataset, a group */
    usg_tensor *d64 = ramp(USG_F64, 1, SHAPE(3)), *r4 = ramp(USG_F32, 1, SHAPE(4));
    usg_tensor *r3d = ramp(USG_F32, 3, SHAPE(1, 2, 2));
    expect_h5_err(usg_h5_append(f, "/metrics/grad", d64, &len), USG_TYPE, "h5.append", path,
                  "/metrics/grad", "the dataset is f32, the value f64");
    expect_h5_err(usg_h5_append(f, "/metrics/grad", r4, &len), USG_SHAPE, "h5.append", path,
                  "/metrics/grad", "the dataset is (5, 3) with rows of (3,), got a row of (4,)");
    expect_h5_err(usg_h5_append(f, "/metrics/loss", rows, &len), USG_SHAPE, "h5.append", path,
                  "/metrics/loss", "the dataset has rank 1");
    expect_h5_err(usg_h5_append(f, "/metrics/new3d", r3d, &len), USG_SHAPE, "h5.append", path,
                  "/metrics/new3d", "0-, 1- or 2-D");
    expect_h5_err(usg_h5_append_number(f, "/metrics/grad", 1, &len), USG_SHAPE, "h5.append",
                  path, "/metrics/grad", "rows of (3,), got a row of ()");
    expect_h5_err(usg_h5_append_number(f, "/metrics/step", 0.5, &len), USG_TYPE, "h5.append",
                  path, "/metrics/step", "not an i32 integer");
    write_ok(f, "/fixed", d64);
    expect_h5_err(usg_h5_append(f, "/fixed", one, &len), USG_TYPE, "h5.append", path, "/fixed",
                  "the dataset is f64, the value i32");
    assert_int_equal(usg_h5_append_number(f, "/fixed", 1, &len) == USG_OK, 0);
    assert_non_null(strstr(usg_errmsg(), "not extendable"));
    expect_h5_err(usg_h5_append_number(f, "/metrics", 1, &len), USG_ARG, "h5.append", path,
                  "/metrics", "is a group");
    /* nothing of that changed the series */
    int ndim;
    int64_t shape[USG_MAX_DIMS];
    assert_int_equal(usg_h5_shape(f, "/metrics/grad", &ndim, shape), USG_OK);
    assert_int_equal(shape[0], 5);
    close_ok(f);
    f = open_ok(path, "r");
    expect_h5_err(usg_h5_append_number(f, "/metrics/loss", 1, &len), USG_IO, "h5.append", path,
                  "/metrics/loss", "read-only");
    close_ok(f);
    usg_tensor_release(d64);
    usg_tensor_release(r4);
    usg_tensor_release(r3d);
    usg_tensor_release(one);
    usg_tensor_release(tr);
    usg_tensor_release(row);
    usg_tensor_release(rows);
}

/* Appends keep their dataset open between calls; anything that replaces or
 * unlinks it, and other handles reading it, must see the truth. */
static void test_append_kept_open(void **state)
{
    const char *path = tmp("kept.h5");
    usg_h5 *f = open_ok(path, "w");
    int64_t len = 0;
    for (int i = 0; i < 3; i++) assert_int_equal(usg_h5_append_number(f, "m/a", i, &len), USG_OK);
    usg_tensor *t = read_ok(f, "/m/a");   /* unflushed, read through another id */
    expect_values(t, 3, VALS(0, 1, 2));
    usg_tensor_release(t);
    /* a write replaces it: appends then see the new (fixed) dataset */
    usg_tensor *two = ramp(USG_F64, 1, SHAPE(2));
    write_ok(f, "//m//a/", two);
    assert_int_not_equal(usg_h5_append_number(f, "/m/a", 9, &len), USG_OK);
    assert_non_null(strstr(usg_errmsg(), "not extendable"));
    /* a removed group takes its series; the next append starts afresh */
    assert_int_equal(usg_h5_append_number(f, "/m/b", 1, &len), USG_OK);
    assert_int_equal(usg_h5_remove(f, "/m"), USG_OK);
    assert_int_equal(usg_h5_append_number(f, "/m/b", 5, &len), USG_OK);
    assert_int_equal(len, 1);
    /* more series than are kept open: every one grows correctly */
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 80; k++) {
            char name[32];
            snprintf(name, sizeof name, "/many/s%02d", k);
            assert_int_equal(usg_h5_append_number(f, name, k * 10 + round, &len), USG_OK);
            assert_int_equal(len, round + 1);
        }
    close_ok(f);
    f = open_ok(path, "r");
    for (int k = 0; k < 80; k += 13) {
        char name[32];
        snprintf(name, sizeof name, "/many/s%02d", k);
        t = read_ok(f, name);
        expect_values(t, 3, VALS(k * 10, k * 10 + 1, k * 10 + 2));
        usg_tensor_release(t);
    }
    t = read_ok(f, "/m/b");
    expect_values(t, 1, VALS(5));
    usg_tensor_release(t);
    close_ok(f);
    usg_tensor_release(two);
}

/* A process that dies without closing keeps everything up to its last
 * flush: the child appends, flushes, and _exits with the file open. */
static void test_flush_survives_crash(void **state)
{
    const char *path = tmp("crash.h5");
    usg_h5 *f = open_ok(path, "w");
    assert_int_equal(usg_h5_append_number(f, "/m/loss", -1, NULL), USG_OK);
    close_ok(f);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        usg_h5 *g = NULL;
        if (usg_h5_open(&g, path, "a") != USG_OK) _exit(2);
        usg_tensor *row = ramp(USG_F32, 1, SHAPE(4));
        for (int i = 0; i < 50; i++) {
            if (usg_h5_append_number(g, "/m/loss", i, NULL) != USG_OK) _exit(3);
            if (usg_h5_append(g, "/m/rows", row, NULL) != USG_OK) _exit(4);
            if (usg_h5_flush(g, i % 10 == 0) != USG_OK) _exit(5);
        }
        usg_h5_append_number(g, "/m/loss", 1000, NULL);   /* never flushed */
        _exit(0);   /* no close, no atexit: as if killed */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    f = open_ok(path, "r");
    usg_tensor *t = read_ok(f, "/m/loss");
    assert_true(t->shape[0] == 51 || t->shape[0] == 52);   /* the last may or may not be in */
    near(usg_tensor_get_flat(t, 0), -1, 0);
    near(usg_tensor_get_flat(t, 50), 49, 0);
    usg_tensor_release(t);
    t = read_ok(f, "/m/rows");
    check_shape(t, USG_F32, 2, SHAPE(50, 4));
    near(usg_tensor_get_flat(t, 199), 0.25, 0);
    usg_tensor_release(t);
    close_ok(f);
}

/* ==== Groups and paths ================================================== */

static void test_groups_and_paths(void **state)
{
    const char *path = tmp("paths.h5");
    usg_h5 *f = open_ok(path, "w");
    usg_tensor *t = ramp(USG_F32, 1, SHAPE(2));
    write_ok(f, "/b/x", t);
    write_ok(f, "a", t);   /* relative to the root */
    write_ok(f, "/b/10", t);
    write_ok(f, "/b/2", t);
    assert_int_equal(usg_h5_group(f, "/c/d/e"), USG_OK);
    assert_int_equal(usg_h5_group(f, "/c/d"), USG_OK);   /* exists: fine */
    usg_h5_names names;
    assert_int_equal(usg_h5_list(f, "/", &names), USG_OK);
    assert_int_equal(names.n, 3);
    assert_string_equal(names.v[0], "a");
    assert_string_equal(names.v[1], "b");
    assert_string_equal(names.v[2], "c");
    usg_h5_names_free(&names);
    assert_int_equal(usg_h5_list(f, "/b/", &names), USG_OK);
    assert_int_equal(names.n, 3);
    assert_string_equal(names.v[0], "10");
    assert_string_equal(names.v[1], "2");
    assert_string_equal(names.v[2], "x");
    usg_h5_names_free(&names);
    assert_int_equal(usg_h5_list(f, "/c/d/e", &names), USG_OK);
    assert_int_equal(names.n, 0);
    usg_h5_names_free(&names);

    struct { const char *p; usg_h5_kind k; } kinds[] = {
        {"/", USG_H5_GROUP}, {"/a", USG_H5_DATASET}, {"a", USG_H5_DATASET},
        {"/b", USG_H5_GROUP}, {"/b/x", USG_H5_DATASET}, {"//b//x/", USG_H5_DATASET},
        {"/c/d/e", USG_H5_GROUP}, {"/nope", USG_H5_NONE}, {"/nope/deeper", USG_H5_NONE},
        {"/a/under_a_dataset", USG_H5_NONE}};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        usg_h5_kind k;
        bool ex;
        assert_int_equal(usg_h5_kind_of(f, kinds[i].p, &k), USG_OK);
        if (k != kinds[i].k) fail_msg("%s: kind %d, want %d", kinds[i].p, k, kinds[i].k);
        assert_int_equal(usg_h5_exists(f, kinds[i].p, &ex), USG_OK);
        assert_int_equal(ex, kinds[i].k != USG_H5_NONE);
    }
    expect_h5_err(usg_h5_list(f, "/a", &names), USG_ARG, "h5.list", path, "/a",
                  "is a dataset, not a group");
    expect_h5_err(usg_h5_list(f, "/zz", &names), USG_ARG, "h5.list", path, "/zz", "no such group");
    expect_h5_err(usg_h5_group(f, "/a"), USG_ARG, "h5.group", path, "/a", "is a dataset");
    assert_int_equal(usg_h5_group(f, "/a/sub"), USG_HDF5);   /* under a dataset */
    expect_h5_err(usg_h5_write(f, "/b", t), USG_ARG, "h5.write", path, "/b", "is a group");
    expect_h5_err(usg_h5_write(f, "/a/x", t), USG_HDF5, "h5.write", path, "/a/x",
                  "cannot create the dataset");
    expect_h5_err(usg_h5_remove(f, "/zz"), USG_ARG, "h5.remove", path, "/zz", "no such object");
    expect_h5_err(usg_h5_remove(f, "/"), USG_ARG, "h5.remove", path, "/", "root");
    assert_int_equal(usg_h5_remove(f, "/b"), USG_OK);
    bool ex = true;
    assert_int_equal(usg_h5_exists(f, "/b/x", &ex), USG_OK);
    assert_false(ex);
    assert_int_equal(usg_h5_remove(f, "/a"), USG_OK);
    assert_int_equal(usg_h5_exists(f, "/a", &ex), USG_OK);
    assert_false(ex);
    expect_h5_err(usg_h5_list(f, "", &names), USG_ARG, "h5.list", path, NULL, "non-empty");
    close_ok(f);
    usg_tensor_release(t);
}

/* ==== Files ============================================================= */

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    fclose(fp);
}

static void test_open_errors(void **state)
{
    usg_h5 *f = H5SENT;
    const char *missing = tmp("missing.h5"), *text = tmp("text.txt"), *empty = tmp("empty.h5");
    expect_h5_err(usg_h5_open(&f, missing, "r"), USG_IO, "h5.open", missing, NULL,
                  "no such file");
    assert_null(f);
    expect_h5_err(usg_h5_open(&f, tmpdir, "r"), USG_IO, "h5.open", tmpdir, NULL, "is a directory");
    expect_h5_err(usg_h5_open(&f, missing, "x"), USG_ARG, "h5.open", missing, NULL,
                  "mode must be 'r', 'w' or 'a', got 'x'");
    expect_h5_err(usg_h5_open(&f, missing, "rw"), USG_ARG, "h5.open", missing, NULL, "got 'rw'");
    expect_h5_err(usg_h5_open(&f, tmp("no/such/dir.h5"), "w"), USG_IO, "h5.open",
                  tmp("no/such/dir.h5"), NULL, "cannot create");
    write_bytes(text, "hello, this is not HDF5\n", 24);
    expect_h5_err(usg_h5_open(&f, text, "r"), USG_IO, "h5.open", text, NULL, "not an HDF5 file");
    expect_h5_err(usg_h5_open(&f, text, "a"), USG_IO, "h5.open", text, NULL, "not an HDF5 file");
    write_bytes(empty, "", 0);
    expect_h5_err(usg_h5_open(&f, empty, "a"), USG_IO, "h5.open", empty, NULL, "empty");
    expect_h5_err(usg_h5_open(&f, "/dev/null", "r"), USG_IO, "h5.open", "/dev/null", NULL,
                  "not a regular file");
    assert_null(f);
    /* the text file was refused, not clobbered; "w" truncates it */
    struct stat st;
    assert_int_equal(stat(text, &st), 0);
    assert_int_equal(st.st_size, 24);
    close_ok(open_ok(text, "w"));
    assert_true(usg_h5_is_hdf5(text));
    /* "a" creates a missing file */
    const char *fresh = tmp("fresh.h5");
    close_ok(open_ok(fresh, "a"));
    assert_true(usg_h5_is_hdf5(fresh));
    assert_false(usg_h5_is_hdf5(missing));
    assert_false(usg_h5_is_hdf5(empty));
    assert_false(usg_h5_is_hdf5(tmpdir));
    assert_false(usg_h5_is_hdf5(NULL));
    if (geteuid() != 0) {   /* root reads anything */
        const char *locked = tmp("locked.h5");
        close_ok(open_ok(locked, "w"));
        chmod(locked, 0);
        expect_h5_err(usg_h5_open(&f, locked, "r"), USG_IO, "h5.open", locked, NULL,
                      "Permission denied");
        chmod(locked, 0600);
    }

    /* reads and writes on a missing or closed file */
    f = open_ok(fresh, "a");
    usg_tensor *t = SENT;
    expect_h5_err(usg_h5_read(f, "/a/b", &t), USG_ARG, "h5.read", fresh, "/a/b", "no such dataset");
    assert_null(t);
    assert_int_equal(usg_h5_group(f, "/g"), USG_OK);
    expect_h5_err(usg_h5_read(f, "/g", &t), USG_TYPE, "h5.read", fresh, "/g",
                  "is a group, not a dataset");
    expect_h5_err(usg_h5_write(f, "/x", NULL), USG_ARG, "h5.write", fresh, "/x", "NULL");
    close_ok(f);
    expect_err(usg_h5_read(NULL, "/x", &t), USG_ARG, "h5.read: file is closed");
    expect_err(usg_h5_flush(NULL, false), USG_ARG, "h5.flush: file is closed");
    assert_int_equal(usg_h5_close(NULL), USG_OK);
}

/* Close closes everything: the file can be renamed, reopened for writing
 * and truncated at once; flush with sync works on a writable file. */
static void test_close_flush_rename(void **state)
{
    const char *a = tmp("ckpt.tmp"), *b = tmp("ckpt.h5");
    usg_h5 *f = open_ok(a, "w");
    usg_tensor *t = ramp(USG_F32, 2, SHAPE(3, 3));
    write_ok(f, "/params/w", t);
    assert_int_equal(usg_h5_append_number(f, "/m", 1, NULL), USG_OK);
    assert_int_equal(usg_h5_flush(f, true), USG_OK);
    assert_string_equal(usg_h5_path(f), a);
    assert_string_equal(usg_h5_mode(f), "w");
    close_ok(f);
    assert_int_equal(rename(a, b), 0);
    f = open_ok(b, "r");
    assert_int_equal(usg_h5_flush(f, true), USG_OK);   /* read-only: nothing to do */
    usg_tensor *back = read_ok(f, "/params/w");
    expect_same(back, t);
    usg_tensor_release(back);
    close_ok(f);
    for (int i = 0; i < 3; i++) close_ok(open_ok(b, "w"));
    f = open_ok(b, "r");
    usg_h5_names names;
    assert_int_equal(usg_h5_list(f, "/", &names), USG_OK);
    assert_int_equal(names.n, 0);
    usg_h5_names_free(&names);
    /* a file open for reading cannot be truncated behind its back */
    usg_h5 *g = H5SENT;
    assert_int_equal(usg_h5_open(&g, b, "w"), USG_HDF5);
    assert_null(g);
    close_ok(f);
    usg_tensor_release(t);
}

/* ==== Hostile files ===================================================== */

/* Every operation on whatever opened must end in OK or an error. */
static void poke(usg_h5 *f)
{
    static const char *paths[] = {"/", "/a", "/g/b", "/g/c", "/m", "/nope"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        usg_tensor *t = NULL;
        usg_h5_names names;
        usg_h5_value v;
        usg_h5_kind k;
        if (usg_h5_read(f, paths[i], &t) == USG_OK) usg_tensor_release(t);
        if (usg_h5_list(f, paths[i], &names) == USG_OK) usg_h5_names_free(&names);
        if (usg_h5_attr_names(f, paths[i], &names) == USG_OK) usg_h5_names_free(&names);
        if (usg_h5_attr_get(f, paths[i], "x", &v) == USG_OK) usg_h5_value_clear(&v);
        usg_h5_kind_of(f, paths[i], &k);
    }
}

static unsigned char *make_valid(size_t *n)
{
    const char *path = tmp("valid.h5");
    usg_h5 *f = open_ok(path, "w");
    usg_tensor *t = ramp(USG_F32, 2, SHAPE(20, 30)), *i = ramp(USG_I32, 1, SHAPE(50));
    write_ok(f, "/a", t);
    write_ok(f, "/g/b", i);
    usg_h5_value v = {.type = USG_H5_VSTRING, .s = "some string"};
    assert_int_equal(usg_h5_attr_set(f, "/", "x", &v), USG_OK);
    for (int k = 0; k < 100; k++) assert_int_equal(usg_h5_append_number(f, "/m", k, NULL), USG_OK);
    close_ok(f);
    usg_tensor_release(t);
    usg_tensor_release(i);
    return slurp(path, n);
}

static void test_hostile_truncated(void **state)
{
    size_t n;
    unsigned char *buf = make_valid(&n);
    const char *path = tmp("trunc.h5");
    size_t cuts[] = {8, 40, 95, 96, 200, 511, 800, 1400, 2048, n / 2, n - 100, n - 1};
    for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
        if (cuts[c] >= n) continue;
        write_bytes(path, buf, cuts[c]);
        usg_h5 *f = H5SENT;
        usg_status s = usg_h5_open(&f, path, "r");
        if (s == USG_OK) fail_msg("a copy cut at %zu of %zu bytes opened", cuts[c], n);
        assert_null(f);
        assert_non_null(strstr(usg_errmsg(), path));
        /* "a" must refuse it too, not repair or clobber it */
        assert_int_not_equal(usg_h5_open(&f, path, "a"), USG_OK);
    }
    free(buf);
}

/* Random bytes behind the signature, and valid files with a stretch of
 * bytes overwritten (a seeded LCG picks where): open or not, every
 * operation must come back. */
static void test_hostile_garbage(void **state)
{
    const char *path = tmp("garbage.h5");
    unsigned char junk[4096];
    uint64_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        junk[i] = (unsigned char)(x >> 56);
    }
    memcpy(junk, "\211HDF\r\n\032\n", 8);
    write_bytes(path, junk, sizeof junk);
    assert_true(usg_h5_is_hdf5(path));   /* the signature is all it checks */
    usg_h5 *f = H5SENT;
    expect_h5_err(usg_h5_open(&f, path, "r"), USG_HDF5, "h5.open", path, NULL, "cannot open");
    assert_null(f);
    size_t n;
    unsigned char *valid = make_valid(&n);
    int opened = 0;
    for (int trial = 0; trial < 60; trial++) {
        unsigned char *copy = malloc(n);
        memcpy(copy, valid, n);
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t at = 48 + (size_t)(x >> 33) % (n - 64), len = 1 + trial % 16;
        for (size_t i = 0; i < len && at + i < n; i++) copy[at + i] ^= junk[(trial * 31 + i) % 4096] | 1;
        write_bytes(path, copy, n);
        free(copy);
        if (usg_h5_open(&f, path, "r") == USG_OK) {
            opened++;
            poke(f);
            usg_h5_close(f);
        } else {
            assert_non_null(strstr(usg_errmsg(), path));
        }
    }
    assert_true(opened > 0);   /* most corruptions hit data or metadata past the superblock */
    free(valid);
}

/* A chunked dataset never written: dims claim what no file holds. */
static void craft_space(hid_t fid, const char *name, int rank, const hsize_t *dims,
                        const hsize_t *chunk, hid_t type)
{
    hsize_t maxd[32];
    for (int i = 0; i < rank; i++) maxd[i] = H5S_UNLIMITED;
    hid_t sp = H5Screate_simple(rank, dims, maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_true(H5Pset_chunk(dcpl, rank, chunk) >= 0);
    hid_t d = H5Dcreate2(fid, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) fail_msg("cannot craft %s", name);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
}

static void test_hostile_shapes_and_types(void **state)
{
    const char *path = tmp("hostile.h5");
    hid_t fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t big[2] = {(hsize_t)1 << 20, (hsize_t)1 << 20}, c2[2] = {16, 16};
    craft_space(fid, "huge", 2, big, c2, H5T_IEEE_F32LE);                     /* 2^40 elements */
    hsize_t over[3] = {(hsize_t)1 << 40, (hsize_t)1 << 40, 1 << 10}, c3[3] = {1, 1, 1};
    craft_space(fid, "overflow", 3, over, c3, H5T_IEEE_F32LE);              /* 2^90 */
    hsize_t r12[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    craft_space(fid, "rank12", 12, r12, r12, H5T_IEEE_F32LE);
    hsize_t d1 = 4, chunk_big = (hsize_t)1 << 29;
    craft_space(fid, "bigchunk", 1, &d1, &chunk_big, H5T_IEEE_F32LE);      /* 2 GiB chunks */
    hsize_t phys = (hsize_t)sysconf(_SC_PHYS_PAGES) * (hsize_t)sysconf(_SC_PAGESIZE);
    hsize_t mem_dims[2] = {phys / 4096 + 1, 1024};                           /* > RAM, < 2^40 B */
    craft_space(fid, "morethanram", 2, mem_dims, c2, H5T_IEEE_F32LE);
    /* a fixed-length string dataset and a compound one */
    hid_t s = H5Tcopy(H5T_C_S1);
    H5Tset_size(s, 5);
    hsize_t two = 2;
    hid_t sp = H5Screate_simple(1, &two, NULL);
    hid_t d = H5Dcreate2(fid, "strings", s, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, s, H5S_ALL, H5S_ALL, H5P_DEFAULT, "helloworld");
    H5Dclose(d);
    H5Tclose(s);
    hid_t cmp = H5Tcreate(H5T_COMPOUND, 8);
    H5Tinsert(cmp, "a", 0, H5T_NATIVE_INT32);
    H5Tinsert(cmp, "b", 4, H5T_NATIVE_FLOAT);
    d = H5Dcreate2(fid, "compound", cmp, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Tclose(cmp);
    H5Sclose(sp);
    hid_t i128 = H5Tcopy(H5T_STD_I64LE);
    H5Tset_size(i128, 16);
    H5Tset_precision(i128, 128);
    sp = H5Screate_simple(1, &two, NULL);
    d = H5Dcreate2(fid, "wide", i128, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(i128);
    sp = H5Screate(H5S_NULL);
    d = H5Dcreate2(fid, "null", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(fid);

    usg_h5 *f = open_ok(path, "r");
    size_t live = usg_alloc_live_bytes();
    usg_tensor *t = SENT;
    expect_h5_err(usg_h5_read(f, "huge", &t), USG_NOMEM, "h5.read", path, "huge",
                  "dims (1048576, 1048576) need");
    assert_null(t);
    expect_h5_err(usg_h5_read(f, "overflow", &t), USG_SHAPE, "h5.read", path, "overflow",
                  "overflow");
    expect_h5_err(usg_h5_read(f, "rank12", &t), USG_SHAPE, "h5.read", path, "rank12",
                  "expected rank <= 8, got 12");
    expect_h5_err(usg_h5_read(f, "bigchunk", &t), USG_NOMEM, "h5.read", path, "bigchunk",
                  "chunks of more than");
    expect_h5_err(usg_h5_read(f, "morethanram", &t), USG_NOMEM, "h5.read", path, "morethanram",
                  "more than this machine can hold");
    expect_h5_err(usg_h5_read(f, "strings", &t), USG_TYPE, "h5.read", path, "strings",
                  "unsupported type string");
    expect_h5_err(usg_h5_read(f, "compound", &t), USG_TYPE, "h5.read", path, "compound",
                  "unsupported type compound");
    expect_h5_err(usg_h5_read(f, "wide", &t), USG_TYPE, "h5.read", path, "wide",
                  "128-bit integers are not supported");
    expect_h5_err(usg_h5_read(f, "null", &t), USG_ARG, "h5.read", path, "null", "no data");
    assert_null(t);
    assert_int_equal(usg_alloc_live_bytes(), live);
    int ndim;
    int64_t shape[USG_MAX_DIMS];
    expect_h5_err(usg_h5_shape(f, "rank12", &ndim, shape), USG_SHAPE, "h5.shape", path, "rank12",
                  "expected rank <= 8, got 12");
    assert_int_equal(usg_h5_shape(f, "huge", &ndim, shape), USG_OK);   /* dims alone are fine */
    assert_int_equal(shape[1], 1 << 20);
    char dt[32];
    assert_int_equal(usg_h5_dtype(f, "compound", dt, sizeof dt), USG_OK);
    assert_string_equal(dt, "compound");
    assert_int_equal(usg_h5_dtype(f, "strings", dt, sizeof dt), USG_OK);
    assert_string_equal(dt, "string");
    close_ok(f);
}

/* Links a file may hold: dangling and looping ones. (External links, which
 * the store refuses to follow, are in h5_spec.lua: h5py makes that file,
 * since this process has the external class unregistered.) */
static void test_hostile_links(void **state)
{
    const char *path = tmp("links.h5");
    hsize_t two = 2;
    hid_t sp = H5Screate_simple(1, &two, NULL);
    hid_t fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(H5Dcreate2(fid, "real", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(sp);
    assert_true(H5Lcreate_soft("/nowhere", fid, "dangling", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    assert_true(H5Lcreate_soft("/loop", fid, "loop", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    assert_true(H5Lcreate_soft("/real", fid, "alias", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    H5Fclose(fid);

    usg_h5 *f = open_ok(path, "r");
    usg_h5_kind k;
    usg_tensor *t = SENT;
    assert_int_equal(usg_h5_kind_of(f, "/dangling", &k), USG_OK);
    assert_int_equal(k, USG_H5_NONE);
    expect_h5_err(usg_h5_read(f, "/dangling", &t), USG_ARG, "h5.read", path, "/dangling",
                  "no such dataset");
    assert_int_equal(usg_h5_kind_of(f, "/alias", &k), USG_OK);   /* soft links are fine */
    assert_int_equal(k, USG_H5_DATASET);
    t = read_ok(f, "/alias");
    usg_tensor_release(t);
    t = SENT;
    assert_int_not_equal(usg_h5_read(f, "/loop", &t), USG_OK);
    assert_non_null(strstr(usg_errmsg(), "'/loop'"));
    assert_null(t);
    usg_h5_names names;
    assert_int_equal(usg_h5_list(f, "/", &names), USG_OK);   /* listing names is harmless */
    assert_int_equal(names.n, 4);
    usg_h5_names_free(&names);
    close_ok(f);
}

/* Reading with the k-th allocation failing: NOMEM with the names, no leak. */
static void test_read_nomem(void **state)
{
    const char *path = tmp("nomem.h5");
    usg_h5 *f = open_ok(path, "w");
    usg_tensor *t = ramp(USG_F64, 2, SHAPE(4, 5)), *out;
    write_ok(f, "/t", t);
    int nfail;
    NOMEM_LOOP_CORE(nfail, out, usg_h5_read(f, "/t", &out), 20, usg_tensor_release(out), {
        assert_int_equal(s_, USG_NOMEM);
        assert_null(out);
        assert_non_null(strstr(usg_errmsg(), "h5.read: '"));
    });
    assert_true(nfail >= 1);
    usg_tensor *tr = transposed(ramp(USG_F32, 2, SHAPE(3, 2)));
    usg_alloc_fail_after(1);   /* the contiguous copy of the view */
    expect_h5_err(usg_h5_write(f, "/v", tr), USG_NOMEM, "h5.write", path, "/v", "out of memory");
    usg_alloc_fail_after(0);
    close_ok(f);
    usg_tensor_release(tr);
    usg_tensor_release(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_dtypes_ranks),
        cmocka_unit_test(test_roundtrip_views),
        cmocka_unit_test(test_roundtrip_empty_and_overwrite),
        cmocka_unit_test(test_foreign_types),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_foreign_attributes),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_append_kept_open),
        cmocka_unit_test(test_flush_survives_crash),
        cmocka_unit_test(test_groups_and_paths),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_close_flush_rename),
        cmocka_unit_test(test_hostile_truncated),
        cmocka_unit_test(test_hostile_garbage),
        cmocka_unit_test(test_hostile_shapes_and_types),
        cmocka_unit_test(test_hostile_links),
        cmocka_unit_test(test_read_nomem),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
