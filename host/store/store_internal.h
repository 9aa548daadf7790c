/*
 * store_internal.h -- what the store's own sources share: the file handle,
 * messages that name function, file and object, path walking, and reading
 * numeric data of any HDF5 type into a tensor. Not installed.
 */
#ifndef USAGI_STORE_INTERNAL_H
#define USAGI_STORE_INTERNAL_H

#include <hdf5.h>

#include "usagi/store.h"

/* The oldest HDF5 format of a new file's superblock (H5Pset_libver_bounds;
 * 1.8: version 2, checksummed) and of the objects usagi creates
 * (H5Fset_libver_bounds; 1.10: checksummed chunk indexes). See open_fid. */
#define USG_H5_LIBVER_LOW H5F_LIBVER_V18
#define USG_H5_LIBVER_OBJECTS H5F_LIBVER_V110

/* Datasets kept open between appends (h5_append.c), so that the chunk
 * being filled stays in HDF5's cache instead of being read and written
 * back at every step; flush and close write it. Keyed by the canonical
 * path ("/a/b"), most recently used first. */
#define H5_APPEND_CACHE 64
typedef struct h5_open_ds {
    char *key;
    hid_t did;
} h5_open_ds;

struct usg_h5 {
    hid_t fid;
    char *path;          /* as given to usg_h5_open */
    char mode[2];        /* "r", "w" or "a" */
    int nopen;
    h5_open_ds open[H5_APPEND_CACHE];
};

/* ==== Messages (h5_file.c) ============================================== */

/* Fail with "fn: 'file' 'obj': <fmt>" (obj NULL: "fn: 'file': ..."). */
usg_status h5_fail(usg_status s, const char *fn, const char *file, const char *obj,
                   const char *fmt, ...) USG_PRINTF(5, 6);
/* As h5_fail with USG_HDF5, appending HDF5's innermost message from the
 * error stack: "... cannot create dataset (HDF5: name already exists)". */
usg_status h5_fail_lib(const char *fn, const char *file, const char *obj, const char *what);
/* Close id (a dataset, group, attribute, dataspace, datatype or property
 * list; -1 is skipped) and return s, or, when s is USG_OK and the close
 * fails, an error saying what the system said ("cannot close the dataset
 * (HDF5: No space left on device)"). A close is where HDF5 writes what it
 * held back, so a full disk often shows only here. */
usg_status h5_close(usg_status s, hid_t id, const char *fn, const usg_h5 *f, const char *obj);
/* Silence HDF5's printing and refuse external links, once per process. */
void h5_init(void);

/* The common prologue: f open (not NULL), path a non-empty string. */
usg_status h5_check(const char *fn, const usg_h5 *f, const char *path);
/* The same and f writable. */
usg_status h5_check_w(const char *fn, const usg_h5 *f, const char *path);

/* ==== Paths (h5_file.c) ================================================= */

/* What is at path, following each component: NONE when one is missing or
 * a prefix is not a group. Fails only when HDF5 does. */
usg_status h5_kind(const char *fn, const usg_h5 *f, const char *path, usg_h5_kind *kind);
/* Open the dataset at path (an error naming what is there instead). */
usg_status h5_open_dataset(const char *fn, const usg_h5 *f, const char *path, hid_t *did);
/* Open the object (group, dataset, ...) at path for its attributes. */
usg_status h5_open_object(const char *fn, const usg_h5 *f, const char *path, hid_t *oid);
/* A link creation list that makes missing groups; H5Pclose it. */
hid_t h5_lcpl(void);
/* Append a copy of name (false when out of memory); sort by strcmp. */
bool h5_names_add(usg_h5_names *names, const char *name);
bool h5_names_addn(usg_h5_names *names, const char *name, size_t len);
void h5_names_sort(usg_h5_names *names);

/* ==== Appends (h5_append.c) ============================================= */

/* Close the datasets kept open for appends: the one at path (any spelling
 * of it), or all of them (path NULL). Called before anything that may
 * unlink or replace a dataset, and at close. All are closed even when
 * one fails. Returns s, or when s is USG_OK the first failure (its chunk
 * did not reach the disk), named as fn's. */
usg_status h5_append_forget(usg_status s, usg_h5 *f, const char *fn, const char *path);

/* ==== Types (h5_data.c) ================================================= */

/* HDF5 file type and native memory type of a tensor dtype. */
hid_t h5_file_type(usg_dtype dt);
hid_t h5_mem_type(usg_dtype dt);
/* The dtype name of an HDF5 type ("f32", "u8", "string", ...). */
void h5_type_name(hid_t type, char *buf, size_t n);
/* The class name of an HDF5 type ("string", "compound", ...). */
const char *h5_class_name(H5T_class_t c);
/* Whether type is h5py's bool: an enum {FALSE = 0, TRUE = 1}. */
bool h5_is_bool_enum(hid_t type);

/* Read the numeric contents of a dataset or attribute `obj` (is_attr)
 * with file type `ftype` and dataspace `space` into a new tensor. */
usg_status h5_read_numeric(const char *fn, const usg_h5 *f, const char *obj_path,
                           hid_t obj, bool is_attr, hid_t ftype, hid_t space,
                           usg_tensor **out);
/* Rank and dims of a dataspace, validated (simple or scalar, rank <= 8). */
usg_status h5_space_dims(const char *fn, const usg_h5 *f, const char *obj_path,
                         hid_t space, int *ndim, int64_t *dims);

#endif
