/*
 * h5_data.c -- datasets of the store: the mapping between tensor dtypes and
 * HDF5 types, reading any numeric dataset or attribute into a tensor with
 * every check made before allocating, and writing tensors.
 *
 * Not for extendable datasets (h5_append.c) or attribute values
 * (h5_attr.c), which build on the reading here.
 *
 * A file is data, never trusted: its dataspace may claim 2^40 elements or
 * 32 dims, its type may be a 128-bit integer or a compound. Each of those
 * is refused with a message before any buffer is sized from it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_internal.h"

/* ==== Types ============================================================= */

hid_t h5_file_type(usg_dtype dt)
{
    return dt == USG_F32 ? H5T_IEEE_F32LE : dt == USG_F64 ? H5T_IEEE_F64LE : H5T_STD_I32LE;
}

hid_t h5_mem_type(usg_dtype dt)
{
    return dt == USG_F32 ? H5T_NATIVE_FLOAT : dt == USG_F64 ? H5T_NATIVE_DOUBLE
                                                            : H5T_NATIVE_INT32;
}

const char *h5_class_name(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_TIME: return "time";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "vlen";
    case H5T_ARRAY: return "array";
    default: return "unknown";
    }
}

/* The value of enum member i as an int64 (the base is an integer of at
 * most 8 bytes, checked by the caller). */
static bool member_value(hid_t type, hid_t super, unsigned i, int64_t *v)
{
    unsigned char raw[16] = {0};
    size_t size = H5Tget_size(super);
    if (size == 0 || size > 8 || H5Tget_member_value(type, i, raw) < 0) return false;
    /* convert in place from the base type to a native int64 */
    if (H5Tconvert(super, H5T_NATIVE_INT64, 1, raw, NULL, H5P_DEFAULT) < 0) return false;
    memcpy(v, raw, sizeof *v);
    return true;
}

bool h5_is_bool_enum(hid_t type)
{
    if (H5Tget_class(type) != H5T_ENUM || H5Tget_nmembers(type) != 2) return false;
    hid_t super = H5Tget_super(type);
    if (super < 0) return false;
    bool ok = H5Tget_class(super) == H5T_INTEGER;
    for (unsigned i = 0; ok && i < 2; i++) {
        char *name = H5Tget_member_name(type, i);
        int64_t v;
        ok = name && member_value(type, super, i, &v) &&
             ((strcmp(name, "FALSE") == 0 && v == 0) || (strcmp(name, "TRUE") == 0 && v == 1));
        if (name) H5free_memory(name);
    }
    if (H5Tclose(super) < 0) ok = false;
    H5Eclear2(H5E_DEFAULT);
    return ok;
}

void h5_type_name(hid_t type, char *buf, size_t n)
{
    H5T_class_t c = H5Tget_class(type);
    size_t bits = H5Tget_size(type) * 8;
    if (c == H5T_INTEGER)
        snprintf(buf, n, "%c%zu", H5Tget_sign(type) == H5T_SGN_NONE ? 'u' : 'i', bits);
    else if (c == H5T_FLOAT)
        snprintf(buf, n, "f%zu", bits);
    else
        snprintf(buf, n, "%s", c == H5T_ENUM && h5_is_bool_enum(type) ? "bool" : h5_class_name(c));
}

/* ==== Reading =========================================================== */

/* How a file type reads into a tensor: straight into its storage through
 * `mem` (HDF5 converts), or "wide": into a scratch buffer of `esize`-byte
 * integers, each then checked to fit i32 (int64, uint32, uint64, enums). */
typedef struct read_plan {
    usg_dtype dt;
    hid_t mem;
    bool mem_owned, wide, is_signed;
    size_t esize;
} read_plan;

static usg_status plan_read(const char *fn, const usg_h5 *f, const char *obj, hid_t ftype,
                            read_plan *p)
{
    H5T_class_t c = H5Tget_class(ftype);
    size_t size = H5Tget_size(ftype);
    *p = (read_plan){.dt = USG_I32, .mem = H5T_NATIVE_INT32};
    if (c == H5T_FLOAT) {
        p->dt = size == 8 ? USG_F64 : USG_F32;
        p->mem = h5_mem_type(p->dt);
        H5T_cdata_t *cdata = NULL;
        if ((size == 4 || size == 8) || H5Tfind(ftype, p->mem, &cdata)) return USG_OK;
        H5Eclear2(H5E_DEFAULT);
        return h5_fail(USG_TYPE, fn, f->path, obj, "a %zu-bit float cannot be read as f32",
                       size * 8);
    }
    if (c == H5T_INTEGER) {
        p->is_signed = H5Tget_sign(ftype) != H5T_SGN_NONE;
        if (size <= 2 || (size == 4 && p->is_signed)) return USG_OK;
        if (size > 8)
            return h5_fail(USG_TYPE, fn, f->path, obj, "%zu-bit integers are not supported",
                           size * 8);
        p->wide = true;
        p->esize = 8;
        p->mem = p->is_signed ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT64;
        return USG_OK;
    }
    if (c == H5T_ENUM) {   /* h5py's bool among them: read the base integers */
        hid_t super = H5Tget_super(ftype);
        bool ok = super >= 0 && H5Tget_class(super) == H5T_INTEGER && H5Tget_size(super) <= 8;
        p->is_signed = ok && H5Tget_sign(super) != H5T_SGN_NONE;
        if (super >= 0 && H5Tclose(super) < 0) ok = false;
        p->mem = ok ? H5Tget_native_type(ftype, H5T_DIR_ASCEND) : -1;
        if (p->mem < 0) return h5_fail_lib(fn, f->path, obj, "unsupported enum type");
        p->mem_owned = p->wide = true;
        p->esize = H5Tget_size(p->mem);
        return USG_OK;
    }
    return h5_fail(USG_TYPE, fn, f->path, obj,
                   "unsupported type %s (only integers and floats read into tensors)",
                   h5_class_name(c));
}

usg_status h5_space_dims(const char *fn, const usg_h5 *f, const char *obj, hid_t space,
                         int *ndim, int64_t *dims)
{
    H5S_class_t c = H5Sget_simple_extent_type(space);
    *ndim = 0;
    if (c == H5S_SCALAR) return USG_OK;
    if (c == H5S_NULL) return h5_fail(USG_ARG, fn, f->path, obj, "holds no data (null dataspace)");
    if (c != H5S_SIMPLE) return h5_fail_lib(fn, f->path, obj, "bad dataspace");
    int r = H5Sget_simple_extent_ndims(space);
    if (r < 0) return h5_fail_lib(fn, f->path, obj, "bad dataspace");
    if (r > USG_MAX_DIMS)
        return h5_fail(USG_SHAPE, fn, f->path, obj, "expected rank <= %d, got %d", USG_MAX_DIMS, r);
    hsize_t d[H5S_MAX_RANK];
    if (H5Sget_simple_extent_dims(space, d, NULL) < 0)
        return h5_fail_lib(fn, f->path, obj, "bad dataspace");
    for (int i = 0; i < r; i++) {
        if (d[i] > (hsize_t)INT64_MAX)
            return h5_fail(USG_SHAPE, fn, f->path, obj, "dim %d is %llu, too large", i + 1,
                           (unsigned long long)d[i]);
        dims[i] = (int64_t)d[i];
    }
    *ndim = r;
    return USG_OK;
}

/* The most a read may ask for: the core's limit, and no more than this
 * machine's memory (overcommit would let a bigger malloc succeed and the
 * read then kill the process). */
static uint64_t read_limit(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t phys = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : USG_MAX_BYTES;
    return phys < USG_MAX_BYTES ? phys : USG_MAX_BYTES;
}

/* numel of dims into *n; fails on overflow or when `esize`-byte elements
 * would pass the read limit. */
static usg_status check_size(const char *fn, const usg_h5 *f, const char *obj, int ndim,
                             const int64_t *dims, size_t esize, int64_t *n)
{
    char b[256];
    uint64_t total = 1, lim = read_limit();
    for (int i = 0; i < ndim; i++) {
        if (dims[i] && total > (uint64_t)INT64_MAX / (uint64_t)dims[i])
            return h5_fail(USG_SHAPE, fn, f->path, obj, "dims %s overflow",
                           usg_shape_str(b, sizeof b, ndim, dims));
        total *= (uint64_t)dims[i];
    }
    if (total > lim / esize)
        return h5_fail(USG_NOMEM, fn, f->path, obj,
                       "dims %s need %.4g GB, more than this machine can hold (%.4g GB)",
                       usg_shape_str(b, sizeof b, ndim, dims), (double)total * esize / 1e9,
                       (double)lim / 1e9);
    *n = (int64_t)total;
    return USG_OK;
}

static herr_t read_into(hid_t obj, bool is_attr, hid_t mem, void *buf)
{
    return is_attr ? H5Aread(obj, mem, buf) : H5Dread(obj, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
}

/* Widen the esize-byte integers in raw to i32 in out, each checked. */
static usg_status narrow_i32(const char *fn, const usg_h5 *f, const char *obj,
                             const read_plan *p, const unsigned char *raw, int64_t n, int32_t *out)
{
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *e = raw + (size_t)i * p->esize;
        int64_t v = 0;
        uint64_t u = 0;
        bool fits;
        if (p->is_signed) {
            int8_t v8; int16_t v16; int32_t v32;
            switch (p->esize) {
            case 1: memcpy(&v8, e, 1); v = v8; break;
            case 2: memcpy(&v16, e, 2); v = v16; break;
            case 4: memcpy(&v32, e, 4); v = v32; break;
            default: memcpy(&v, e, 8); break;
            }
            fits = v >= INT32_MIN && v <= INT32_MAX;
        } else {
            uint8_t u8; uint16_t u16; uint32_t u32;
            switch (p->esize) {
            case 1: memcpy(&u8, e, 1); u = u8; break;
            case 2: memcpy(&u16, e, 2); u = u16; break;
            case 4: memcpy(&u32, e, 4); u = u32; break;
            default: memcpy(&u, e, 8); break;
            }
            fits = u <= INT32_MAX;
            v = (int64_t)(fits ? u : 0);
        }
        if (!fits) {
            char val[32];
            if (p->is_signed) snprintf(val, sizeof val, "%lld", (long long)v);
            else snprintf(val, sizeof val, "%llu", (unsigned long long)u);
            return h5_fail(USG_TYPE, fn, f->path, obj,
                           "value %s (element %lld) does not fit in i32", val, (long long)i + 1);
        }
        out[i] = (int32_t)v;
    }
    return USG_OK;
}

usg_status h5_read_numeric(const char *fn, const usg_h5 *f, const char *obj, hid_t oid,
                           bool is_attr, hid_t ftype, hid_t space, usg_tensor **out)
{
    int ndim;
    int64_t dims[USG_MAX_DIMS], n = 0;
    read_plan p;
    *out = NULL;
    usg_status s = h5_space_dims(fn, f, obj, space, &ndim, dims);
    if (s != USG_OK) return s;
    if ((s = plan_read(fn, f, obj, ftype, &p)) != USG_OK) return s;
    size_t esize = usg_dtype_size(p.dt) + (p.wide ? p.esize : 0);
    usg_tensor *t = NULL;
    void *raw = NULL;
    if ((s = check_size(fn, f, obj, ndim, dims, esize, &n)) != USG_OK) goto done;
    if ((s = usg_tensor_empty(&t, p.dt, ndim, dims)) != USG_OK) {
        s = h5_fail(s, fn, f->path, obj, "%s", usg_errmsg());
        goto done;
    }
    if (n == 0) goto done;
    if (p.wide && !(raw = usg_alloc((size_t)n * p.esize))) {
        s = h5_fail(USG_NOMEM, fn, f->path, obj, "%s", usg_errmsg());
        goto done;
    }
    if (read_into(oid, is_attr, p.mem, raw ? raw : usg_tensor_data(t)) < 0) {
        s = h5_fail_lib(fn, f->path, obj, "cannot read the data");
        goto done;
    }
    if (raw) s = narrow_i32(fn, f, obj, &p, raw, n, usg_tensor_data(t));
done:
    usg_free(raw);
    if (p.mem_owned) s = h5_close(s, p.mem, fn, f, obj);
    if (s != USG_OK) usg_tensor_release(t);
    else *out = t;
    return s;
}

/* A chunk so big that HDF5 would allocate gigabytes to read one: only a
 * crafted file has it (h5py aims at chunks under 1 MB). */
#define CHUNK_LIMIT ((uint64_t)1 << 30)

static usg_status check_chunk(const char *fn, const usg_h5 *f, const char *obj, hid_t did,
                              hid_t ftype)
{
    hid_t dcpl = H5Dget_create_plist(did);
    if (dcpl < 0) return h5_fail_lib(fn, f->path, obj, "cannot read the layout");
    usg_status s = USG_OK;
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t c[H5S_MAX_RANK];
        int r = H5Pget_chunk(dcpl, H5S_MAX_RANK, c);
        uint64_t bytes = H5Tget_size(ftype);
        for (int i = 0; i < r && bytes <= CHUNK_LIMIT; i++)
            bytes = c[i] > CHUNK_LIMIT ? CHUNK_LIMIT + 1 : bytes * c[i];
        if (r < 0 || bytes > CHUNK_LIMIT)
            s = h5_fail(USG_NOMEM, fn, f->path, obj, "chunks of more than %llu bytes are refused",
                        (unsigned long long)CHUNK_LIMIT);
    }
    return h5_close(s, dcpl, fn, f, obj);
}

usg_status usg_h5_read(usg_h5 *f, const char *path, usg_tensor **out)
{
    hid_t did = -1, ftype = -1, space = -1;
    *out = NULL;
    usg_status s = h5_check("h5.read", f, path);
    if (s == USG_OK) s = h5_open_dataset("h5.read", f, path, &did);
    if (s != USG_OK) return s;
    if ((ftype = H5Dget_type(did)) < 0 || (space = H5Dget_space(did)) < 0)
        s = h5_fail_lib("h5.read", f->path, path, "cannot read type and dataspace");
    if (s == USG_OK) s = check_chunk("h5.read", f, path, did, ftype);
    if (s == USG_OK) s = h5_read_numeric("h5.read", f, path, did, false, ftype, space, out);
    s = h5_close(s, space, "h5.read", f, path);
    s = h5_close(s, ftype, "h5.read", f, path);
    s = h5_close(s, did, "h5.read", f, path);
    if (s != USG_OK && *out) {
        usg_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

usg_status usg_h5_shape(usg_h5 *f, const char *path, int *ndim, int64_t *shape)
{
    hid_t did = -1, space = -1;
    *ndim = 0;
    usg_status s = h5_check("h5.shape", f, path);
    if (s == USG_OK) s = h5_open_dataset("h5.shape", f, path, &did);
    if (s != USG_OK) return s;
    if ((space = H5Dget_space(did)) < 0)
        s = h5_fail_lib("h5.shape", f->path, path, "cannot read the dataspace");
    else
        s = h5_space_dims("h5.shape", f, path, space, ndim, shape);
    s = h5_close(s, space, "h5.shape", f, path);
    return h5_close(s, did, "h5.shape", f, path);
}

usg_status usg_h5_dtype(usg_h5 *f, const char *path, char *buf, size_t n)
{
    hid_t did = -1, ftype;
    if (n) buf[0] = 0;
    usg_status s = h5_check("h5.dtype", f, path);
    if (s == USG_OK) s = h5_open_dataset("h5.dtype", f, path, &did);
    if (s != USG_OK) return s;
    if ((ftype = H5Dget_type(did)) < 0) {
        s = h5_fail_lib("h5.dtype", f->path, path, "cannot read the type");
    } else {
        h5_type_name(ftype, buf, n);
        s = h5_close(s, ftype, "h5.dtype", f, path);
    }
    return h5_close(s, did, "h5.dtype", f, path);
}

/* ==== Writing =========================================================== */

/* The existing dataset at path takes t in place when type and dims agree
 * (a checkpoint rewriting its parameters does not grow the file); else it
 * is unlinked. *did is the open dataset, or -1 to create one. */
static usg_status reuse_or_unlink(usg_h5 *f, const char *path, const usg_tensor *t, hid_t *did)
{
    hid_t d = H5Dopen2(f->fid, path, H5P_DEFAULT), ty = -1, sp = -1;
    bool same = false;
    *did = -1;
    if (d >= 0 && (ty = H5Dget_type(d)) >= 0 && (sp = H5Dget_space(d)) >= 0 &&
        H5Tequal(ty, h5_file_type(t->dtype)) > 0) {
        H5S_class_t c = H5Sget_simple_extent_type(sp);
        int r = H5Sget_simple_extent_ndims(sp);
        hsize_t dims[H5S_MAX_RANK];
        same = (t->ndim == 0) ? c == H5S_SCALAR
             : c == H5S_SIMPLE && r == t->ndim && H5Sget_simple_extent_dims(sp, dims, NULL) >= 0;
        for (int i = 0; same && i < t->ndim; i++) same = dims[i] == (hsize_t)t->shape[i];
    }
    usg_status s = h5_close(USG_OK, sp, "h5.write", f, path);
    s = h5_close(s, ty, "h5.write", f, path);
    if (s == USG_OK && same) { *did = d; return USG_OK; }
    s = h5_close(s, d, "h5.write", f, path);
    if (s != USG_OK) return s;
    H5Eclear2(H5E_DEFAULT);   /* a failed H5Dopen2 above is not an error */
    if (H5Ldelete(f->fid, path, H5P_DEFAULT) < 0)
        return h5_fail_lib("h5.write", f->path, path, "cannot replace the dataset");
    return USG_OK;
}

/* Data up to this size lives in the dataset's object header (the compact
 * layout): no block of its own, and the header's checksum covers it. */
#define COMPACT_BYTES 16384
/* Larger data is cut in chunks of about this size, each with a Fletcher-32
 * checksum: one chunk fits HDF5's default chunk cache (1 MiB), and a
 * 100 MB tensor is a hundred of them. */
#define CHUNK_TARGET ((uint64_t)1 << 20)

/* The creation list of a fixed dataset of t's shape: compact when small,
 * else chunked and checksummed. Chunks split the leading dims: dim i gets
 * as many slices as fit CHUNK_TARGET once the dims after it are whole. */
static herr_t h5_fixed_dcpl(const usg_tensor *t, hid_t *out)
{
    uint64_t bytes = (uint64_t)usg_tensor_numel(t) * usg_dtype_size(t->dtype);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    *out = dcpl;
    if (dcpl < 0) return -1;
    if (bytes <= COMPACT_BYTES) return H5Pset_layout(dcpl, H5D_COMPACT);
    hsize_t chunk[USG_MAX_DIMS];
    uint64_t inner = bytes;
    bool whole = false;
    for (int i = 0; i < t->ndim; i++) {
        inner /= (uint64_t)t->shape[i];   /* bytes of one slice along dim i */
        if (whole) chunk[i] = (hsize_t)t->shape[i];
        else if (inner > CHUNK_TARGET) chunk[i] = 1;
        else {
            uint64_t k = CHUNK_TARGET / inner;
            chunk[i] = (hsize_t)(k < (uint64_t)t->shape[i] ? k : (uint64_t)t->shape[i]);
            whole = true;
        }
    }
    if (H5Pset_chunk(dcpl, t->ndim, chunk) < 0) return -1;
    return H5Pset_fletcher32(dcpl);
}

static hid_t create_dataset(usg_h5 *f, const char *path, const usg_tensor *t)
{
    hsize_t dims[USG_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) dims[i] = (hsize_t)t->shape[i];
    hid_t space = t->ndim ? H5Screate_simple(t->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t lcpl = h5_lcpl(), did = -1, dcpl = -1;
    if (space >= 0 && lcpl >= 0 && h5_fixed_dcpl(t, &dcpl) >= 0)
        did = H5Dcreate2(f->fid, path, h5_file_type(t->dtype), space, lcpl, dcpl, H5P_DEFAULT);
    usg_status s = did < 0 ? h5_fail_lib("h5.write", f->path, path, "cannot create the dataset")
                           : USG_OK;
    s = h5_close(s, dcpl, "h5.write", f, path);
    s = h5_close(s, lcpl, "h5.write", f, path);
    s = h5_close(s, space, "h5.write", f, path);
    if (s != USG_OK && did >= 0) {
        h5_close(s, did, "h5.write", f, path);
        did = -1;
    }
    return did;
}

usg_status usg_h5_write(usg_h5 *f, const char *path, usg_tensor *t)
{
    usg_h5_kind k;
    usg_status s = h5_check_w("h5.write", f, path);
    if (s != USG_OK) return s;
    if (!t) return h5_fail(USG_ARG, "h5.write", f->path, path, "tensor must not be NULL");
    if ((s = h5_kind("h5.write", f, path, &k)) != USG_OK) return s;
    if (k == USG_H5_GROUP || k == USG_H5_DATATYPE)
        return h5_fail(USG_ARG, "h5.write", f->path, path, "is a %s; remove it first",
                       k == USG_H5_GROUP ? "group" : "datatype");
    usg_tensor *c = NULL;
    if ((s = usg_contiguous(&c, t)) != USG_OK)
        return h5_fail(s, "h5.write", f->path, path, "%s", usg_errmsg());
    hid_t did = -1;
    s = h5_append_forget(USG_OK, f, "h5.write", path);
    if (s == USG_OK && k == USG_H5_DATASET) s = reuse_or_unlink(f, path, c, &did);
    if (s == USG_OK && did < 0 && (did = create_dataset(f, path, c)) < 0) s = USG_HDF5;
    if (s == USG_OK && usg_tensor_numel(c) > 0 &&
        H5Dwrite(did, h5_mem_type(c->dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT,
                 usg_tensor_data(c)) < 0)
        s = h5_fail_lib("h5.write", f->path, path, "cannot write the data");
    s = h5_close(s, did, "h5.write", f, path);
    usg_tensor_release(c);
    return s;
}
