/*
 * h5_strings.c -- 1-D datasets of strings (variable-length UTF-8, what h5py
 * writes for a list of str and reads back as one): a vocabulary beside its
 * vectors, labels beside their ids. Numbers are in h5_data.c.
 *
 * Reading checks the class (string), rank (1) and size before it
 * allocates; fixed-length strings are read too (NUL- or space-padded).
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* The dataset holds one reference (16 bytes) per string into HDF5's
 * global heap, where the strings themselves live. Up to 1024 references
 * sit in the dataset's checksummed header (compact). HDF5 refuses filters,
 * Fletcher-32 among them, on variable-length types, so more stay
 * contiguous and unchecked, as does the heap (its format has no checksum). */
#define COMPACT_STRINGS 1024

static hid_t strings_dcpl(size_t n)
{
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl >= 0 && n <= COMPACT_STRINGS && H5Pset_layout(dcpl, H5D_COMPACT) < 0) {
        if (H5Pclose(dcpl) < 0) H5Eclear2(H5E_DEFAULT);   /* -1 says it failed */
        return -1;
    }
    return dcpl;
}

usg_status usg_h5_write_strings(usg_h5 *f, const char *path, const char *const *v, size_t n)
{
    usg_h5_kind k;
    usg_status s = h5_check_w("h5.write_strings", f, path);
    if (s != USG_OK) return s;
    if (n > 0 && !v) return h5_fail(USG_ARG, "h5.write_strings", f->path, path, "strings must not be NULL");
    for (size_t i = 0; i < n; i++)
        if (!v[i]) return h5_fail(USG_ARG, "h5.write_strings", f->path, path, "string %zu is NULL", i + 1);
    if ((s = h5_kind("h5.write_strings", f, path, &k)) != USG_OK) return s;
    if (k == USG_H5_GROUP || k == USG_H5_DATATYPE)
        return h5_fail(USG_ARG, "h5.write_strings", f->path, path, "is a %s; remove it first",
                       k == USG_H5_GROUP ? "group" : "datatype");
    if ((s = h5_append_forget(USG_OK, f, "h5.write_strings", path)) != USG_OK) return s;
    if (k == USG_H5_DATASET && H5Ldelete(f->fid, path, H5P_DEFAULT) < 0)
        return h5_fail_lib("h5.write_strings", f->path, path, "cannot replace the dataset");
    hsize_t dims[1] = {(hsize_t)n};
    hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate_simple(1, dims, NULL), lcpl = h5_lcpl(), did = -1;
    hid_t dcpl = strings_dcpl(n);
    if (type >= 0 && H5Tset_size(type, H5T_VARIABLE) >= 0 && H5Tset_cset(type, H5T_CSET_UTF8) >= 0 &&
        space >= 0 && lcpl >= 0 && dcpl >= 0)
        did = H5Dcreate2(f->fid, path, type, space, lcpl, dcpl, H5P_DEFAULT);
    if (did < 0) s = h5_fail_lib("h5.write_strings", f->path, path, "cannot create the dataset");
    else if (n > 0 && H5Dwrite(did, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
        s = h5_fail_lib("h5.write_strings", f->path, path, "cannot write the strings");
    s = h5_close(s, did, "h5.write_strings", f, path);
    s = h5_close(s, dcpl, "h5.write_strings", f, path);
    s = h5_close(s, lcpl, "h5.write_strings", f, path);
    s = h5_close(s, space, "h5.write_strings", f, path);
    return h5_close(s, type, "h5.write_strings", f, path);
}

/* Copies of the n strings in buf (variable: char *[n]; fixed: n * size
 * bytes, padded) appended to out. */
static usg_status copy_out(usg_h5_names *out, void *buf, size_t n, bool var, size_t size)
{
    for (size_t i = 0; i < n; i++) {
        const char *src = var ? ((char **)buf)[i] : (const char *)buf + i * size;
        size_t len = var ? (src ? strlen(src) : 0) : strnlen(src, size);
        while (!var && len > 0 && src[len - 1] == ' ') len--;
        if (!h5_names_addn(out, src ? src : "", len)) {
            usg_h5_names_free(out);
            return usg_fail(USG_NOMEM, "h5.read_strings: out of memory");
        }
    }
    return USG_OK;
}

usg_status usg_h5_read_strings(usg_h5 *f, const char *path, usg_h5_names *out)
{
    hid_t did = -1, ftype = -1, space = -1, mtype = -1;
    out->n = 0;
    out->v = NULL;
    usg_status s = h5_check("h5.read_strings", f, path);
    if (s == USG_OK) s = h5_open_dataset("h5.read_strings", f, path, &did);
    if (s != USG_OK) return s;
    if ((ftype = H5Dget_type(did)) < 0 || (space = H5Dget_space(did)) < 0)
        s = h5_fail_lib("h5.read_strings", f->path, path, "cannot read type and dataspace");
    hsize_t dims[1] = {0};
    if (s == USG_OK && H5Tget_class(ftype) != H5T_STRING)
        s = h5_fail(USG_TYPE, "h5.read_strings", f->path, path, "expected strings, got %s",
                    h5_class_name(H5Tget_class(ftype)));
    if (s == USG_OK && (H5Sget_simple_extent_type(space) != H5S_SIMPLE || H5Sget_simple_extent_ndims(space) != 1))
        s = h5_fail(USG_SHAPE, "h5.read_strings", f->path, path, "expected a 1-D dataset of strings");
    if (s == USG_OK) H5Sget_simple_extent_dims(space, dims, NULL);
    bool var = s == USG_OK && H5Tis_variable_str(ftype) > 0;
    size_t size = var ? sizeof(char *) : (s == USG_OK ? H5Tget_size(ftype) : 0);
    if (s == USG_OK && (dims[0] > ((hsize_t)1 << 31) || (size && dims[0] > USG_MAX_BYTES / size)))
        s = h5_fail(USG_NOMEM, "h5.read_strings", f->path, path, "%llu strings is too many",
                    (unsigned long long)dims[0]);
    void *buf = NULL;
    if (s == USG_OK && !(buf = calloc(dims[0] ? dims[0] : 1, size ? size : 1)))
        s = h5_fail(USG_NOMEM, "h5.read_strings", f->path, path, "out of memory");
    if (s == USG_OK) {
        mtype = H5Tcopy(H5T_C_S1);
        if (mtype < 0 || H5Tset_size(mtype, var ? H5T_VARIABLE : size) < 0 ||
            H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0 ||
            (dims[0] > 0 && H5Dread(did, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0))
            s = h5_fail_lib("h5.read_strings", f->path, path, "cannot read the strings");
        else {
            s = copy_out(out, buf, (size_t)dims[0], var, size);
            if (var && dims[0] > 0 && H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, buf) < 0 &&
                s == USG_OK)
                s = h5_fail_lib("h5.read_strings", f->path, path, "cannot free the strings");
        }
    }
    free(buf);
    s = h5_close(s, mtype, "h5.read_strings", f, path);
    s = h5_close(s, space, "h5.read_strings", f, path);
    s = h5_close(s, ftype, "h5.read_strings", f, path);
    s = h5_close(s, did, "h5.read_strings", f, path);
    if (s != USG_OK) usg_h5_names_free(out);
    return s;
}
