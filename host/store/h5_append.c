/*
 * h5_append.c -- extendable datasets: metrics that grow by one value or one
 * row per call (/metrics/loss, (k) f64; /metrics/grad_norms, (k, n)).
 *
 * The first append makes the dataset chunked with an unlimited first dim;
 * each later one checks dtype and row shape, extends dim 0 and writes the
 * new rows through a hyperslab. Not for whole tensors (h5_data.c).
 *
 * Appends run once per training step. A dataset stays open between them
 * (up to H5_APPEND_CACHE of them per file), so the chunk being filled stays
 * in HDF5's chunk cache: an append costs a few microseconds and no I/O,
 * and flush or close writes the chunk. Opening one tries H5Dopen2 first;
 * the path walk runs only to say what is wrong or when it is new.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define CHUNK_BYTES 8192    /* one chunk per 8 KiB of rows: 1024 f64 values */

/* What to append: `nrows` rows of shape (row_ndim, row) of dtype dt,
 * contiguous at data. */
typedef struct rows {
    usg_dtype dt;
    int row_ndim;
    int64_t row[USG_MAX_DIMS];
    int64_t nrows;
    const void *data;
} rows;

/* ==== Datasets kept open ================================================ */

/* "/a/b" for "a/b", "//a//b/", ...; NULL when out of memory. */
static char *canon(const char *path)
{
    char *c = malloc(strlen(path) + 2), *o = c;
    if (!c) return NULL;
    for (const char *p = path; *p;) {
        while (*p == '/') p++;
        if (!*p) break;
        *o++ = '/';
        while (*p && *p != '/') *o++ = *p++;
    }
    if (o == c) *o++ = '/';
    *o = 0;
    return c;
}

/* Close kept dataset i; closing writes its chunk, so this can fail. */
static usg_status drop_at(usg_status s, usg_h5 *f, int i, const char *fn)
{
    s = h5_close(s, f->open[i].did, fn, f, f->open[i].key);
    free(f->open[i].key);
    memmove(f->open + i, f->open + i + 1, (size_t)(f->nopen - i - 1) * sizeof *f->open);
    f->nopen--;
    return s;
}

usg_status h5_append_forget(usg_status s, usg_h5 *f, const char *fn, const char *path)
{
    char *key = path ? canon(path) : NULL;
    if (path && !key) return s != USG_OK ? s : h5_fail(USG_NOMEM, fn, f->path, path, "out of memory");
    for (int i = 0; i < f->nopen;)
        if (!key || strcmp(f->open[i].key, key) == 0) s = drop_at(s, f, i, fn);   /* no key: all */
        else i++;
    free(key);
    return s;
}

/* The kept dataset of key (moved to the front), or -1. */
static hid_t kept(usg_h5 *f, const char *key)
{
    for (int i = 0; i < f->nopen; i++)
        if (strcmp(f->open[i].key, key) == 0) {
            h5_open_ds e = f->open[i];
            memmove(f->open + 1, f->open, (size_t)i * sizeof e);
            f->open[0] = e;
            return e.did;
        }
    return -1;
}

/* Keep did under key (ownership of both passes to f), closing the least
 * recent one when all places are taken (that close may fail). */
static usg_status keep(usg_h5 *f, char *key, hid_t did)
{
    usg_status s = USG_OK;
    if (f->nopen == H5_APPEND_CACHE) s = drop_at(s, f, f->nopen - 1, "h5.append");
    memmove(f->open + 1, f->open, (size_t)f->nopen * sizeof *f->open);
    f->open[0] = (h5_open_ds){key, did};
    f->nopen++;
    return s;
}

/* The dataset at path (*did), or *did = -1 when nothing is there; an
 * error when something else is. */
static usg_status open_or_none(usg_h5 *f, const char *path, hid_t *did)
{
    usg_h5_kind k;
    if ((*did = H5Dopen2(f->fid, path, H5P_DEFAULT)) >= 0) return USG_OK;
    H5Eclear2(H5E_DEFAULT);
    usg_status s = h5_kind("h5.append", f, path, &k);
    if (s == USG_OK && k != USG_H5_NONE)
        s = h5_fail(USG_ARG, "h5.append", f->path, path, "is a %s, not a dataset",
                    k == USG_H5_GROUP ? "group" : "datatype");
    return s;
}

/* Type name and dims of an open dataset (rank <= USG_MAX_DIMS + 1 or an
 * error); maxdims[0] says whether it can grow. */
static usg_status describe(usg_h5 *f, const char *path, hid_t did, char *type, size_t n,
                           int *rank, hsize_t *dims, hsize_t *maxdim0)
{
    hsize_t maxdims[H5S_MAX_RANK];
    hid_t ty = H5Dget_type(did), sp = H5Dget_space(did);
    usg_status s = USG_OK;
    *rank = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (ty < 0 || *rank < 0 || H5Sget_simple_extent_dims(sp, dims, maxdims) < 0)
        s = h5_fail_lib("h5.append", f->path, path, "cannot read type and dataspace");
    else if (*rank == 0 || *rank > USG_MAX_DIMS)
        s = h5_fail(USG_SHAPE, "h5.append", f->path, path, "a dataset of rank %d cannot grow",
                    *rank);
    else {
        h5_type_name(ty, type, n);
        *maxdim0 = maxdims[0];
    }
    s = h5_close(s, sp, "h5.append", f, path);
    return h5_close(s, ty, "h5.append", f, path);
}

static usg_status create_extendable(usg_h5 *f, const char *path, const rows *r, hid_t *did)
{
    int rank = r->row_ndim + 1;
    hsize_t dims[USG_MAX_DIMS + 1] = {0}, maxdims[USG_MAX_DIMS + 1], chunk[USG_MAX_DIMS + 1];
    uint64_t row_bytes = usg_dtype_size(r->dt);
    maxdims[0] = H5S_UNLIMITED;
    for (int i = 0; i < r->row_ndim; i++) {
        dims[i + 1] = maxdims[i + 1] = chunk[i + 1] = (hsize_t)r->row[i];
        row_bytes *= (uint64_t)r->row[i];
    }
    if (row_bytes == 0 || row_bytes > CHUNK_BYTES * 64)
        return h5_fail(USG_SHAPE, "h5.append", f->path, path,
                       "a row must hold 1 to %d bytes, got %llu", CHUNK_BYTES * 64,
                       (unsigned long long)row_bytes);
    chunk[0] = row_bytes >= CHUNK_BYTES ? 1 : CHUNK_BYTES / row_bytes;
    usg_status s = USG_OK;
    hid_t space = H5Screate_simple(rank, dims, maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = h5_lcpl();
    *did = -1;
    /* each chunk carries a Fletcher-32 checksum, so a damaged one is an
     * error on read instead of wrong numbers */
    if (space >= 0 && dcpl >= 0 && lcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 &&
        H5Pset_fletcher32(dcpl) >= 0)
        *did = H5Dcreate2(f->fid, path, h5_file_type(r->dt), space, lcpl, dcpl, H5P_DEFAULT);
    if (*did < 0) s = h5_fail_lib("h5.append", f->path, path, "cannot create the dataset");
    s = h5_close(s, lcpl, "h5.append", f, path);
    s = h5_close(s, dcpl, "h5.append", f, path);
    return h5_close(s, space, "h5.append", f, path);
}

/* The open dataset must take r: same dtype, same row shape, room to grow. */
static usg_status check_rows(usg_h5 *f, const char *path, const char *type, int rank,
                             const hsize_t *dims, hsize_t maxdim0, const rows *r)
{
    if (strcmp(type, usg_dtype_name(r->dt)) != 0)
        return h5_fail(USG_TYPE, "h5.append", f->path, path, "the dataset is %s, the value %s",
                       type, usg_dtype_name(r->dt));
    int64_t got[USG_MAX_DIMS];
    for (int i = 0; i < rank; i++) got[i] = (int64_t)dims[i];
    bool same = rank == r->row_ndim + 1;
    for (int i = 0; same && i < r->row_ndim; i++) same = got[i + 1] == r->row[i];
    if (!same) {
        char ds[128], want[128], gotr[128];
        usg_shape_str(ds, sizeof ds, rank, got);
        usg_shape_str(want, sizeof want, rank - 1, got + 1);
        usg_shape_str(gotr, sizeof gotr, r->row_ndim, r->row);
        return h5_fail(USG_SHAPE, "h5.append", f->path, path,
                       "the dataset is %s with rows of %s, got a row of %s", ds, want, gotr);
    }
    if (maxdim0 != H5S_UNLIMITED && maxdim0 < dims[0] + (hsize_t)r->nrows)
        return h5_fail(USG_SHAPE, "h5.append", f->path, path,
                       "the dataset is not extendable (made by write, not append)");
    return USG_OK;
}

/* Extend the open dataset (dims, rank r->row_ndim + 1) by r's rows. */
static usg_status write_rows(usg_h5 *f, const char *path, hid_t did, hsize_t *dims,
                             const rows *r, int64_t *len)
{
    int rank = r->row_ndim + 1;
    hsize_t start[USG_MAX_DIMS + 1] = {0}, count[USG_MAX_DIMS + 1];
    hid_t fsp = -1, msp = -1;
    usg_status s = USG_OK;
    start[0] = dims[0];
    count[0] = (hsize_t)r->nrows;
    for (int i = 1; i < rank; i++) count[i] = dims[i];
    dims[0] += (hsize_t)r->nrows;
    if (r->nrows > 0 &&
        (H5Dset_extent(did, dims) < 0 || (fsp = H5Dget_space(did)) < 0 ||
         H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
         (msp = H5Screate_simple(rank, count, NULL)) < 0 ||
         H5Dwrite(did, h5_mem_type(r->dt), msp, fsp, H5P_DEFAULT, r->data) < 0))
        s = h5_fail_lib("h5.append", f->path, path, "cannot extend and write");
    s = h5_close(s, msp, "h5.append", f, path);
    s = h5_close(s, fsp, "h5.append", f, path);
    if (s == USG_OK && len) *len = (int64_t)dims[0];
    return s;
}

/* Check r against the open dataset, or create it from r (*did < 0), then
 * write. */
static usg_status append_rows(usg_h5 *f, const char *path, hid_t *didp, const rows *r,
                              int64_t *len)
{
    hid_t did = *didp;
    char type[32];
    int rank = r->row_ndim + 1;
    hsize_t dims[H5S_MAX_RANK] = {0}, maxdim0 = H5S_UNLIMITED;
    usg_status s = USG_OK;
    if (did < 0) {
        s = create_extendable(f, path, r, &did);
        *didp = did;
        for (int i = 0; i < r->row_ndim; i++) dims[i + 1] = (hsize_t)r->row[i];
    } else if ((s = describe(f, path, did, type, sizeof type, &rank, dims, &maxdim0)) == USG_OK) {
        s = check_rows(f, path, type, rank, dims, maxdim0, r);
    }
    return s == USG_OK ? write_rows(f, path, did, dims, r, len) : s;
}

/* The dataset to append to: kept open, or opened now (*fresh), or -1 when
 * there is none yet. *key is path's canonical form, for finish(). */
static usg_status begin(usg_h5 *f, const char *path, char **key, hid_t *did, bool *fresh)
{
    *did = -1;
    *fresh = true;
    if (!(*key = canon(path))) return h5_fail(USG_NOMEM, "h5.append", f->path, path, "out of memory");
    if ((*did = kept(f, *key)) >= 0) {
        *fresh = false;
        return USG_OK;
    }
    usg_status s = open_or_none(f, path, did);
    if (s != USG_OK) free(*key);
    return s;
}

/* Keep a dataset that worked; close one that failed (kept or not). */
static usg_status finish(usg_h5 *f, usg_status s, char *key, hid_t did, bool fresh)
{
    if (s == USG_OK && did >= 0 && fresh) return keep(f, key, did);
    if (s != USG_OK && !fresh) s = h5_append_forget(s, f, "h5.append", key);
    else if (s != USG_OK) s = h5_close(s, did, "h5.append", f, key);
    free(key);
    return s;
}

/* The rows in t: a value of the dataset's rank - 1 is one row, of its rank
 * several; a new dataset (did < 0) takes a 0-D or 1-D value as one row and
 * a 2-D one as rows. */
static usg_status rows_of(usg_h5 *f, const char *path, hid_t did, const usg_tensor *t, rows *r)
{
    int rank;
    if (did >= 0) {
        char type[32];
        hsize_t dims[H5S_MAX_RANK], maxdim0;
        usg_status s = describe(f, path, did, type, sizeof type, &rank, dims, &maxdim0);
        if (s != USG_OK) return s;
        if (t->ndim != rank - 1 && t->ndim != rank)
            return h5_fail(USG_SHAPE, "h5.append", f->path, path,
                           "the dataset has rank %d, so a value has rank %d (a row) or %d (rows), "
                           "got %d", rank, rank - 1, rank, t->ndim);
    } else if (t->ndim > 2) {
        return h5_fail(USG_SHAPE, "h5.append", f->path, path,
                       "a new dataset takes a 0-, 1- or 2-D value, got rank %d", t->ndim);
    } else {
        rank = t->ndim == 2 ? 2 : t->ndim + 1;
    }
    bool many = t->ndim == rank;
    r->dt = t->dtype;
    r->nrows = many ? t->shape[0] : 1;
    r->row_ndim = rank - 1;
    for (int i = 0; i < r->row_ndim; i++) r->row[i] = t->shape[i + many];
    return USG_OK;
}

usg_status usg_h5_append(usg_h5 *f, const char *path, usg_tensor *t, int64_t *len)
{
    rows r;
    hid_t did;
    bool fresh;
    char *key;
    usg_tensor *c = NULL;
    usg_status s = h5_check_w("h5.append", f, path);
    if (s != USG_OK) return s;
    if (!t) return h5_fail(USG_ARG, "h5.append", f->path, path, "tensor must not be NULL");
    if ((s = begin(f, path, &key, &did, &fresh)) != USG_OK) return s;
    if ((s = rows_of(f, path, did, t, &r)) == USG_OK && (s = usg_contiguous(&c, t)) != USG_OK)
        s = h5_fail(s, "h5.append", f->path, path, "%s", usg_errmsg());
    if (s == USG_OK) {
        r.data = usg_tensor_data(c);
        s = append_rows(f, path, &did, &r, len);
    }
    usg_tensor_release(c);
    return finish(f, s, key, did, fresh);
}

usg_status usg_h5_append_number(usg_h5 *f, const char *path, double v, int64_t *len)
{
    char dt[32] = "f64", *key;
    hid_t did;
    bool fresh;
    usg_status s = h5_check_w("h5.append", f, path);
    if (s == USG_OK) s = begin(f, path, &key, &did, &fresh);
    if (s != USG_OK) return s;
    hid_t ty = did >= 0 ? H5Dget_type(did) : -1;
    if (ty >= 0) {
        h5_type_name(ty, dt, sizeof dt);
        s = h5_close(s, ty, "h5.append", f, path);
    }
    rows r = {.row_ndim = 0, .nrows = 1};
    float f32 = (float)v;
    int32_t i32 = 0;
    if (!usg_dtype_parse(dt, &r.dt))
        s = h5_fail(USG_TYPE, "h5.append", f->path, path,
                    "the dataset is %s; a number goes to f32, f64 or i32", dt);
    else if (r.dt == USG_I32 && !(v == floor(v) && v >= INT32_MIN && v <= INT32_MAX))
        s = h5_fail(USG_TYPE, "h5.append", f->path, path,
                    "the dataset is i32, the value %.17g is not an i32 integer", v);
    if (s == USG_OK) {
        i32 = r.dt == USG_I32 ? (int32_t)v : 0;
        r.data = r.dt == USG_F64 ? (const void *)&v : r.dt == USG_F32 ? (const void *)&f32
                                                                      : (const void *)&i32;
        s = append_rows(f, path, &did, &r, len);
    }
    return finish(f, s, key, did, fresh);
}
