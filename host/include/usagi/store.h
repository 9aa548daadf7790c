/*
 * usagi/store.h -- the store of libusagi_store: tensors, groups and
 * attributes in plain HDF5 files that h5py and h5dump read as they are.
 *
 * A layer of its own between the core and the Lua binding: C over libhdf5,
 * tensors from usagi/core.h, no Lua. The core never links HDF5.
 *
 * Files. usg_h5_open(&f, path, mode): "r" reads an existing file, "w"
 * creates or truncates, "a" reads and writes, creating the file when it is
 * missing (an existing file that is not HDF5 is refused, never clobbered).
 * usg_h5_close closes every object of the file, so it can be reopened or
 * renamed right after.
 *
 * Paths inside a file are HDF5 paths: "/a/b" (a leading '/' is optional;
 * "/" is the root group, the file itself for attributes).
 *
 * Types. f32 <-> IEEE F32LE, f64 <-> F64LE, i32 <-> I32LE; 0-dim tensors
 * are scalar dataspaces; sizes of 0 are fine. Reading converts what a
 * tensor can hold exactly: int8/16 and uint8/16 of either byte order and
 * enums (h5py's bool) to i32; int64, uint32 and uint64 to i32 when every
 * value fits; float16 and other float sizes to f32. Any other class
 * (strings, compounds, ...) is an error naming it. Reading validates class,
 * rank, dims and size before it allocates anything.
 *
 * Errors: every function returns usg_status, and usg_errmsg() names the
 * function, the file and the object: "h5.read: 'x.h5' '/a/b': expected rank
 * <= 8, got 12". HDF5's own error printing is silenced; its innermost
 * message is appended where it helps. A truncated, corrupt or hostile file
 * is an error, never a crash.
 *
 * Threads: libhdf5 (Debian's serial build) is not thread-safe; use the
 * store from one thread at a time.
 */
#ifndef USAGI_STORE_H
#define USAGI_STORE_H

#include "usagi/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An open file. */
typedef struct usg_h5 usg_h5;

/* What a path names. */
typedef enum usg_h5_kind {
    USG_H5_NONE = 0,     /* nothing (or a prefix of the path is not a group) */
    USG_H5_GROUP,
    USG_H5_DATASET,
    USG_H5_DATATYPE      /* a committed datatype: neither of the above */
} usg_h5_kind;

/* A sorted list of names; free with usg_h5_names_free. */
typedef struct usg_h5_names {
    size_t n;
    char **v;
} usg_h5_names;
USG_API void usg_h5_names_free(usg_h5_names *names);   /* leaves it empty */

/* ==== Files ============================================================= */

/* mode is "r", "w" or "a". On failure *out is NULL and the message says
 * why: a missing file, a directory, permission, not an HDF5 file, or what
 * HDF5 found wrong (a truncated file, a bad superblock). */
USG_API usg_status usg_h5_open(usg_h5 **out, const char *path, const char *mode);
/* Close every object and the file, and free f (NULL is fine). f is gone
 * even when the close reports an error. */
USG_API usg_status usg_h5_close(usg_h5 *f);
/* Write everything HDF5 holds in memory to the file (H5Fflush, global),
 * the chunks of datasets kept open for appends included; with `sync`, also
 * fsync the file descriptor. After it returns, a process killed before
 * the next write leaves a file that opens with everything flushed. */
USG_API usg_status usg_h5_flush(usg_h5 *f, bool sync);
/* The path and mode given to usg_h5_open. */
USG_API const char *usg_h5_path(const usg_h5 *f);
USG_API const char *usg_h5_mode(const usg_h5 *f);
/* Whether path is a file with the HDF5 signature; false for anything else
 * (missing, a directory, text). Never fails. */
USG_API bool usg_h5_is_hdf5(const char *path);
/* Read the whole file at path -- every group, dataset and attribute,
 * through the functions below -- in a forked child, so that a crash or a
 * hang inside libhdf5 on a damaged file cannot take this process. USG_OK
 * when everything read; else the message names the file and says what
 * happened: the store's own error (HDF5's message inside), "reading it
 * crashed libhdf5 (signal 11)", or "reading it did not finish in N s"
 * (the child is killed after timeout_ms). Datasets of types a tensor
 * cannot hold (compounds, ...) are not counted as damage. A file this
 * process has open for writing is refused (USG_ARG): the child would
 * share it, pending writes included. Safe to call
 * with worker threads running; the child runs only the store and leaves
 * with _exit. */
USG_API usg_status usg_h5_verify(const char *path, int timeout_ms);

/* ==== Groups and links ================================================== */

/* What is at path (USG_H5_NONE when nothing). */
USG_API usg_status usg_h5_kind_of(usg_h5 *f, const char *path, usg_h5_kind *kind);
USG_API usg_status usg_h5_exists(usg_h5 *f, const char *path, bool *exists);
/* The names of the children of group path, sorted by strcmp. */
USG_API usg_status usg_h5_list(usg_h5 *f, const char *path, usg_h5_names *out);
/* Create group path and any missing parents; fine when it exists. */
USG_API usg_status usg_h5_group(usg_h5 *f, const char *path);
/* Unlink path (a dataset or a whole group); an error when it is missing.
 * HDF5 does not give the space back to the file. */
USG_API usg_status usg_h5_remove(usg_h5 *f, const char *path);

/* ==== Datasets ========================================================== */

/* Write t (any view) as dataset path, creating missing groups. An existing
 * dataset of the same type and shape is written in place; one of another
 * type or shape is replaced; a group there is an error. */
USG_API usg_status usg_h5_write(usg_h5 *f, const char *path, usg_tensor *t);
/* Read dataset path into a new contiguous tensor (see Types above). */
USG_API usg_status usg_h5_read(usg_h5 *f, const char *path, usg_tensor **out);
/* The dims of dataset path (shape holds USG_MAX_DIMS). */
USG_API usg_status usg_h5_shape(usg_h5 *f, const char *path, int *ndim, int64_t *shape);
/* The dtype name of dataset path: "f32", "f64", "i32" for the types a
 * tensor has, else what the file holds: "i8", "u8", "i16", "u16", "u32",
 * "i64", "u64", "f16", "bool", "enum", "string", "compound", ... */
USG_API usg_status usg_h5_dtype(usg_h5 *f, const char *path, char *buf, size_t n);

/* A 1-D dataset of n variable-length UTF-8 strings (h5py's list of str),
 * replacing what is at path. */
USG_API usg_status usg_h5_write_strings(usg_h5 *f, const char *path, const char *const *v, size_t n);
/* Read a 1-D dataset of strings (variable or fixed length) into out, in
 * the file's order (not sorted); free with usg_h5_names_free. */
USG_API usg_status usg_h5_read_strings(usg_h5 *f, const char *path, usg_h5_names *out);

/* Append to an extendable (chunked, first dim unlimited) dataset, made by
 * the first call: a tensor of the dataset's rank - 1 is one row, one of the
 * dataset's rank is t->shape[0] rows. A missing dataset is made from the
 * first value: a 0-dim tensor gives a 1-D dataset, a 1-D tensor of n a
 * (k, n) one, a 2-D tensor (m, n) a (k, n) one with m rows. Later values
 * must have the dataset's dtype and row shape. *len (may be NULL) gets the
 * new length (dim 0). The dataset stays open between appends (its chunk in
 * memory) until flush, close, or a write or remove that touches it. */
USG_API usg_status usg_h5_append(usg_h5 *f, const char *path, usg_tensor *t, int64_t *len);
/* Append one number: a missing dataset is made 1-D f64; an existing 1-D
 * one of f32, f64 or i32 takes it converted (i32 only an integer in range). */
USG_API usg_status usg_h5_append_number(usg_h5 *f, const char *path, double v, int64_t *len);

/* ==== Attributes ======================================================== */

/* An attribute value. Types as written:
 *   INT     int64 scalar            FLOAT  float64 scalar
 *   STRING  variable-length UTF-8 (h5py reads str)
 *   BOOL    enum int8 {FALSE = 0, TRUE = 1}, as h5py writes numpy bool
 *   TENSOR  an array of the tensor's dtype and shape (at most
 *           USG_H5_ATTR_MAX_BYTES of data)
 *   STRINGS a 1-D array of variable-length UTF-8 strings
 * Reading gives: any integer scalar -> INT (a uint64 past INT64_MAX ->
 * FLOAT), any float scalar -> FLOAT, the bool enum -> BOOL, other enum
 * scalars -> INT, a string scalar (fixed or variable) -> STRING, a 1-D
 * string array -> STRINGS, numeric arrays -> TENSOR (types as for
 * datasets). A value that usg_h5_attr_get fills is owned by the caller and
 * freed with usg_h5_value_clear. */
typedef enum usg_h5_vtype {
    USG_H5_VNONE = 0, USG_H5_VINT, USG_H5_VFLOAT, USG_H5_VSTRING, USG_H5_VBOOL,
    USG_H5_VTENSOR, USG_H5_VSTRINGS
} usg_h5_vtype;

typedef struct usg_h5_value {
    usg_h5_vtype type;
    int64_t i;           /* VINT */
    double d;            /* VFLOAT */
    bool b;              /* VBOOL */
    char *s;             /* VSTRING, NUL-terminated (no NUL inside) */
    usg_tensor *t;       /* VTENSOR, one reference */
    usg_h5_names strs;   /* VSTRINGS, in order (not sorted) */
} usg_h5_value;

#define USG_H5_ATTR_MAX_BYTES 60000   /* HDF5 keeps attributes in a 64 KiB header */

USG_API void usg_h5_value_clear(usg_h5_value *v);   /* frees, leaves VNONE */

/* Set attribute `name` of the object at path ("/" is the file), replacing
 * any attribute of that name. The value stays the caller's. */
USG_API usg_status usg_h5_attr_set(usg_h5 *f, const char *path, const char *name,
                                   const usg_h5_value *v);
/* Get it into *out; a missing attribute gives out->type == USG_H5_VNONE
 * (not an error; a missing object is). */
USG_API usg_status usg_h5_attr_get(usg_h5 *f, const char *path, const char *name,
                                   usg_h5_value *out);
/* Delete it; fine when it is missing. */
USG_API usg_status usg_h5_attr_delete(usg_h5 *f, const char *path, const char *name);
/* The attribute names of the object at path, sorted by strcmp. */
USG_API usg_status usg_h5_attr_names(usg_h5 *f, const char *path, usg_h5_names *out);

/* ---- whole files, outside HDF5 (file.c) ----
 * Here because the store brings zlib in already. Errors are USG_IO with
 * "fn: 'path': <reason>" (fn NULL: the C function's name) and errno left
 * as the failing system call set it (EILSEQ for a corrupt gzip stream);
 * USG_NOMEM when the contents do not fit in memory. */

/* *data <- the file's bytes, decompressed when it is gzip (whatever its
 * name; other files are read as they are), followed by a NUL that *len
 * does not count; free with usg_free. On failure *data is NULL, *len 0. */
USG_API usg_status usg_file_read(const char *path, char **data, size_t *len, const char *fn);
/* *crc <- the CRC-32 of the file's bytes (zlib's, as in gzip and PNG). */
USG_API usg_status usg_file_crc32(const char *path, uint32_t *crc, const char *fn);

#ifdef __cplusplus
}
#endif
#endif
