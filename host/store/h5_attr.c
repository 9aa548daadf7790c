/*
 * h5_attr.c -- attributes of files, groups and datasets: integers, floats,
 * strings, booleans, small tensors and lists of strings, written the way
 * h5py writes them so that Python reads back the same kinds of values.
 *
 * Not for datasets. Numeric arrays go through h5_read_numeric (h5_data.c),
 * so an attribute is checked like a dataset before anything is allocated.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#if H5_VERSION_GE(1, 12, 0)
#define h5_vlen_reclaim(type, space, buf) H5Treclaim(type, space, H5P_DEFAULT, buf)
#else
#define h5_vlen_reclaim(type, space, buf) H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf)
#endif

#define MAX_STRINGS ((hsize_t)1 << 24)   /* a list attribute longer than this is crafted */

void usg_h5_value_clear(usg_h5_value *v)
{
    if (!v) return;
    if (v->type == USG_H5_VSTRING) free(v->s);
    if (v->type == USG_H5_VTENSOR) usg_tensor_release(v->t);
    if (v->type == USG_H5_VSTRINGS) usg_h5_names_free(&v->strs);
    memset(v, 0, sizeof *v);
}

/* ==== Types ============================================================= */

/* Variable-length UTF-8, NUL-terminated: what h5py writes for a str. */
static hid_t vlen_utf8(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 ||
                   H5Tset_strpad(t, H5T_STR_NULLTERM) < 0)) {
        if (H5Tclose(t) < 0) H5Eclear2(H5E_DEFAULT);   /* -1 says it failed */
        return -1;
    }
    return t;
}

/* enum int8 {FALSE = 0, TRUE = 1}: what h5py writes for a numpy bool. */
static hid_t bool_enum(void)
{
    hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
    int8_t no = 0, yes = 1;
    if (t >= 0 && (H5Tenum_insert(t, "FALSE", &no) < 0 || H5Tenum_insert(t, "TRUE", &yes) < 0)) {
        if (H5Tclose(t) < 0) H5Eclear2(H5E_DEFAULT);   /* -1 says it failed */
        return -1;
    }
    return t;
}

/* ==== Setting =========================================================== */

/* File type, dataspace and a pointer to the data of v (tensor data made
 * contiguous into *c). Nothing is written yet, so a bad value changes
 * nothing in the file. */
typedef struct attr_plan {
    hid_t type, mem, space;
    bool type_owned;
    const void *data;
    int8_t b;
    usg_tensor *c;
} attr_plan;

static usg_status plan_attr(const usg_h5 *f, const char *path, const char *name,
                            const usg_h5_value *v, attr_plan *p)
{
    const char *fn = "h5.attr";
    hsize_t dims[USG_MAX_DIMS];
    usg_status s = USG_OK;
    *p = (attr_plan){.type = -1, .mem = -1, .space = -1};
    switch (v->type) {
    case USG_H5_VINT: p->type = H5T_STD_I64LE; p->mem = H5T_NATIVE_INT64; p->data = &v->i; break;
    case USG_H5_VFLOAT: p->type = H5T_IEEE_F64LE; p->mem = H5T_NATIVE_DOUBLE; p->data = &v->d; break;
    case USG_H5_VBOOL:
        p->b = v->b;
        p->data = &p->b;
        p->type = p->mem = bool_enum();
        p->type_owned = true;
        break;
    case USG_H5_VSTRING:
        if (!v->s) return h5_fail(USG_ARG, fn, f->path, path, "attribute '%s': string is NULL", name);
        p->data = &v->s;
        p->type = p->mem = vlen_utf8();
        p->type_owned = true;
        break;
    case USG_H5_VSTRINGS:
        for (size_t i = 0; i < v->strs.n; i++)
            if (!v->strs.v[i])
                return h5_fail(USG_ARG, fn, f->path, path, "attribute '%s': string %zu is NULL",
                               name, i + 1);
        p->data = v->strs.n ? (const void *)v->strs.v : (const void *)&p->b;   /* never NULL */
        p->type = p->mem = vlen_utf8();
        p->type_owned = true;
        dims[0] = v->strs.n;
        p->space = H5Screate_simple(1, dims, NULL);
        break;
    case USG_H5_VTENSOR: {
        if (!v->t) return h5_fail(USG_ARG, fn, f->path, path, "attribute '%s': tensor is NULL", name);
        uint64_t bytes = (uint64_t)usg_tensor_numel(v->t) * usg_dtype_size(v->t->dtype);
        if (bytes > USG_H5_ATTR_MAX_BYTES)
            return h5_fail(USG_SHAPE, fn, f->path, path, "attribute '%s': a tensor of %llu bytes "
                           "is too big for an attribute (at most %d); write a dataset", name,
                           (unsigned long long)bytes, USG_H5_ATTR_MAX_BYTES);
        if ((s = usg_contiguous(&p->c, v->t)) != USG_OK)
            return h5_fail(s, fn, f->path, path, "attribute '%s': %s", name, usg_errmsg());
        p->type = h5_file_type(v->t->dtype);
        p->mem = h5_mem_type(v->t->dtype);
        p->data = bytes ? usg_tensor_data(p->c) : (const void *)&p->b;
        for (int i = 0; i < v->t->ndim; i++) dims[i] = (hsize_t)v->t->shape[i];
        if (v->t->ndim) p->space = H5Screate_simple(v->t->ndim, dims, NULL);
        break;
    }
    default:
        return h5_fail(USG_ARG, fn, f->path, path, "attribute '%s': no value (type %d)", name,
                       (int)v->type);
    }
    bool simple = v->type == USG_H5_VSTRINGS || (v->type == USG_H5_VTENSOR && v->t->ndim);
    if (!simple) p->space = H5Screate(H5S_SCALAR);
    if (p->type < 0 || p->space < 0)
        return h5_fail_lib(fn, f->path, path, "cannot make the attribute's type");
    return USG_OK;
}

static usg_status plan_free(usg_status s, attr_plan *p, const usg_h5 *f, const char *path)
{
    if (p->type_owned) s = h5_close(s, p->type, "h5.attr", f, path);
    s = h5_close(s, p->space, "h5.attr", f, path);
    usg_tensor_release(p->c);
    return s;
}

usg_status usg_h5_attr_set(usg_h5 *f, const char *path, const char *name, const usg_h5_value *v)
{
    hid_t oid = -1, aid = -1;
    attr_plan p = {.type = -1, .space = -1};
    usg_status s = h5_check_w("h5.attr", f, path);
    if (s != USG_OK) return s;
    if (!name || !*name)
        return h5_fail(USG_ARG, "h5.attr", f->path, path, "attribute name must be non-empty");
    if (!v) return h5_fail(USG_ARG, "h5.attr", f->path, path, "attribute '%s': value is NULL", name);
    if ((s = plan_attr(f, path, name, v, &p)) != USG_OK) goto done;
    if ((s = h5_open_object("h5.attr", f, path, &oid)) != USG_OK) goto done;
    htri_t ex = H5Aexists(oid, name);
    if (ex < 0 || (ex > 0 && H5Adelete(oid, name) < 0) ||
        (aid = H5Acreate2(oid, name, p.type, p.space, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(aid, p.mem, p.data) < 0) {
        char what[300];
        snprintf(what, sizeof what, "cannot write attribute '%s'", name);
        s = h5_fail_lib("h5.attr", f->path, path, what);
    }
done:
    s = h5_close(s, aid, "h5.attr", f, path);
    s = h5_close(s, oid, "h5.attr", f, path);
    return plan_free(s, &p, f, path);
}

usg_status usg_h5_attr_delete(usg_h5 *f, const char *path, const char *name)
{
    hid_t oid = -1;
    usg_status s = h5_check_w("h5.attr", f, path);
    if (s != USG_OK) return s;
    if (!name || !*name)
        return h5_fail(USG_ARG, "h5.attr", f->path, path, "attribute name must be non-empty");
    if ((s = h5_open_object("h5.attr", f, path, &oid)) != USG_OK) return s;
    htri_t ex = H5Aexists(oid, name);
    if (ex < 0 || (ex > 0 && H5Adelete(oid, name) < 0))
        s = h5_fail_lib("h5.attr", f->path, path, "cannot delete the attribute");
    return h5_close(s, oid, "h5.attr", f, path);
}

/* ==== Getting =========================================================== */

/* Strings of a fixed size: padded with NULs or spaces, per the type. */
static usg_status read_fixed_strings(const char *fn, const usg_h5 *f, const char *path,
                                     hid_t aid, hid_t ftype, hsize_t n, usg_h5_names *out)
{
    size_t size = H5Tget_size(ftype);
    bool spaces = H5Tget_strpad(ftype) == H5T_STR_SPACEPAD;
    if (size == 0 || size > USG_H5_ATTR_MAX_BYTES * 2 || n * size > USG_H5_ATTR_MAX_BYTES * 2)
        return h5_fail(USG_SHAPE, fn, f->path, path, "string attribute of %llu x %zu bytes refused",
                       (unsigned long long)n, size);
    char *buf = malloc(n * size + 1);   /* + 1: never malloc(0) */
    hid_t mem = H5Tcopy(ftype);
    usg_status s = USG_OK;
    if (!buf || mem < 0) s = h5_fail(USG_NOMEM, fn, f->path, path, "out of memory");
    else if (H5Aread(aid, mem, buf) < 0) s = h5_fail_lib(fn, f->path, path, "cannot read a string");
    for (hsize_t i = 0; s == USG_OK && i < n; i++) {
        const char *e = buf + i * size;
        size_t len = strnlen(e, size);
        while (spaces && len > 0 && e[len - 1] == ' ') len--;
        if (!h5_names_addn(out, e, len)) s = h5_fail(USG_NOMEM, fn, f->path, path, "out of memory");
    }
    s = h5_close(s, mem, fn, f, path);
    free(buf);
    return s;
}

static usg_status read_vlen_strings(const char *fn, const usg_h5 *f, const char *path,
                                    hid_t aid, hid_t space, hsize_t n, usg_h5_names *out)
{
    char **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    hid_t mem = vlen_utf8();
    usg_status s = USG_OK;
    if (!ptrs || mem < 0) s = h5_fail(USG_NOMEM, fn, f->path, path, "out of memory");
    else if (H5Aread(aid, mem, ptrs) < 0)
        s = h5_fail_lib(fn, f->path, path, "cannot read a string");
    else {
        for (hsize_t i = 0; s == USG_OK && i < n; i++)
            if (!h5_names_add(out, ptrs[i] ? ptrs[i] : ""))
                s = h5_fail(USG_NOMEM, fn, f->path, path, "out of memory");
        if (h5_vlen_reclaim(mem, space, ptrs) < 0 && s == USG_OK)
            s = h5_fail_lib(fn, f->path, path, "cannot free the strings");
    }
    s = h5_close(s, mem, fn, f, path);
    free(ptrs);
    return s;
}

/* A scalar string -> VSTRING, a 1-D array -> VSTRINGS. */
static usg_status get_strings(const char *fn, const usg_h5 *f, const char *path, hid_t aid,
                              hid_t ftype, hid_t space, usg_h5_value *out)
{
    int ndim;
    int64_t dims[USG_MAX_DIMS];
    usg_status s = h5_space_dims(fn, f, path, space, &ndim, dims);
    if (s != USG_OK) return s;
    if (ndim > 1)
        return h5_fail(USG_SHAPE, fn, f->path, path, "string attributes of rank %d are not "
                       "supported (0 or 1)", ndim);
    hsize_t n = ndim ? (hsize_t)dims[0] : 1;
    if (n > MAX_STRINGS)
        return h5_fail(USG_SHAPE, fn, f->path, path, "a list of %llu strings is refused",
                       (unsigned long long)n);
    usg_h5_names names = {0};
    htri_t var = H5Tis_variable_str(ftype);
    if (var < 0) return h5_fail_lib(fn, f->path, path, "bad string type");
    s = var ? read_vlen_strings(fn, f, path, aid, space, n, &names)
            : read_fixed_strings(fn, f, path, aid, ftype, n, &names);
    if (s != USG_OK) {
        usg_h5_names_free(&names);
        return s;
    }
    if (ndim == 1) {
        out->type = USG_H5_VSTRINGS;
        out->strs = names;
        return USG_OK;
    }
    out->type = USG_H5_VSTRING;
    out->s = names.v[0];
    free(names.v);
    return USG_OK;
}

/* A scalar integer, float or enum -> a number or a boolean. */
static usg_status get_scalar(const char *fn, const usg_h5 *f, const char *path, hid_t aid,
                             hid_t ftype, hid_t space, usg_h5_value *out)
{
    H5T_class_t c = H5Tget_class(ftype);
    if (c == H5T_ENUM) {   /* read the base integer through the dataset path */
        usg_tensor *t;
        usg_status s = h5_read_numeric(fn, f, path, aid, true, ftype, space, &t);
        if (s != USG_OK) return s;
        int64_t v = (int64_t)usg_tensor_get_flat(t, 0);
        usg_tensor_release(t);
        out->type = h5_is_bool_enum(ftype) ? USG_H5_VBOOL : USG_H5_VINT;
        out->b = v != 0;
        out->i = v;
        return USG_OK;
    }
    herr_t e;
    if (c == H5T_FLOAT) {
        out->type = USG_H5_VFLOAT;
        e = H5Aread(aid, H5T_NATIVE_DOUBLE, &out->d);
    } else if (H5Tget_size(ftype) > 8) {
        return h5_fail(USG_TYPE, fn, f->path, path, "%zu-bit integers are not supported",
                       H5Tget_size(ftype) * 8);
    } else if (H5Tget_sign(ftype) == H5T_SGN_NONE && H5Tget_size(ftype) == 8) {
        uint64_t u = 0;
        e = H5Aread(aid, H5T_NATIVE_UINT64, &u);
        if (u > INT64_MAX) { out->type = USG_H5_VFLOAT; out->d = (double)u; }
        else { out->type = USG_H5_VINT; out->i = (int64_t)u; }
    } else {
        out->type = USG_H5_VINT;
        e = H5Aread(aid, H5T_NATIVE_INT64, &out->i);
    }
    if (e < 0) {
        memset(out, 0, sizeof *out);
        return h5_fail_lib(fn, f->path, path, "cannot read the attribute");
    }
    return USG_OK;
}

static usg_status get_value(const char *fn, const usg_h5 *f, const char *path, hid_t aid,
                            usg_h5_value *out)
{
    hid_t ftype = H5Aget_type(aid), space = H5Aget_space(aid);
    usg_status s = USG_OK;
    if (ftype < 0 || space < 0) {
        s = h5_fail_lib(fn, f->path, path, "cannot read the attribute's type");
        goto done;
    }
    H5T_class_t c = H5Tget_class(ftype);
    bool scalar = H5Sget_simple_extent_type(space) == H5S_SCALAR;
    if (c == H5T_STRING) {
        s = get_strings(fn, f, path, aid, ftype, space, out);
    } else if (c != H5T_INTEGER && c != H5T_FLOAT && c != H5T_ENUM) {
        s = h5_fail(USG_TYPE, fn, f->path, path, "attributes of type %s are not supported",
                    h5_class_name(c));
    } else if (scalar) {
        s = get_scalar(fn, f, path, aid, ftype, space, out);
    } else if ((s = h5_read_numeric(fn, f, path, aid, true, ftype, space, &out->t)) == USG_OK) {
        out->type = USG_H5_VTENSOR;
    }
done:
    s = h5_close(s, space, fn, f, path);
    return h5_close(s, ftype, fn, f, path);
}

/* The object path and attribute name as one "object" of the messages:
 * "h5.attr: 'x.h5' '/a' attribute 'lr': ..." reads as the place it is. */
static void attr_place(char *buf, size_t n, const char *path, const char *name)
{
    snprintf(buf, n, "%s' attribute '%s", path, name);
}

usg_status usg_h5_attr_get(usg_h5 *f, const char *path, const char *name, usg_h5_value *out)
{
    hid_t oid = -1, aid = -1;
    memset(out, 0, sizeof *out);
    usg_status s = h5_check("h5.attr", f, path);
    if (s != USG_OK) return s;
    if (!name || !*name)
        return h5_fail(USG_ARG, "h5.attr", f->path, path, "attribute name must be non-empty");
    if ((s = h5_open_object("h5.attr", f, path, &oid)) != USG_OK) return s;
    htri_t ex = H5Aexists(oid, name);
    if (ex < 0) s = h5_fail_lib("h5.attr", f->path, path, "cannot look up the attribute");
    else if (ex > 0 && (aid = H5Aopen(oid, name, H5P_DEFAULT)) < 0)
        s = h5_fail_lib("h5.attr", f->path, path, "cannot open the attribute");
    if (s == USG_OK && aid >= 0) {
        char place[600];
        attr_place(place, sizeof place, path, name);
        s = get_value("h5.attr", f, place, aid, out);
    }
    s = h5_close(s, aid, "h5.attr", f, path);
    s = h5_close(s, oid, "h5.attr", f, path);
    if (s != USG_OK) usg_h5_value_clear(out);
    return s;
}

/* ==== Names ============================================================= */

static herr_t add_attr(hid_t o, const char *name, const H5A_info_t *info, void *data)
{
    return h5_names_add(data, name) ? 0 : -1;
}

usg_status usg_h5_attr_names(usg_h5 *f, const char *path, usg_h5_names *out)
{
    hid_t oid = -1;
    out->n = 0;
    out->v = NULL;
    usg_status s = h5_check("h5.attrs", f, path);
    if (s == USG_OK) s = h5_open_object("h5.attrs", f, path, &oid);
    if (s != USG_OK) return s;
    if (H5Aiterate2(oid, H5_INDEX_NAME, H5_ITER_INC, NULL, add_attr, out) < 0) {
        s = h5_fail_lib("h5.attrs", f->path, path, "cannot list the attributes");
        usg_h5_names_free(out);
    }
    s = h5_close(s, oid, "h5.attrs", f, path);
    if (s != USG_OK) usg_h5_names_free(out);
    h5_names_sort(out);
    return s;
}
