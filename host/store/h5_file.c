/*
 * h5_file.c -- files, messages and paths of the store: opening and closing
 * HDF5 files, turning HDF5's error stack into usagi messages, and walking
 * paths to say what is there (exists, kind, list, group, remove).
 *
 * Not for datasets (h5_data.c, h5_append.c) or attributes (h5_attr.c).
 *
 * Files are opened with H5F_CLOSE_STRONG, so closing the file closes every
 * object still open in it and the file can be renamed or reopened at once
 * (checkpoints are written to a temp file and renamed).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"

#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t h5_linfo;
#define h5_literate H5Literate2
#define h5_lget_info H5Lget_info2
#define h5_is_hdf5(p) H5Fis_accessible(p, H5P_DEFAULT)
#else
typedef H5L_info_t h5_linfo;
#define h5_literate H5Literate
#define h5_lget_info H5Lget_info
#define h5_is_hdf5(p) H5Fis_hdf5(p)
#endif

/* ==== Messages ========================================================== */

usg_status h5_fail(usg_status s, const char *fn, const char *file, const char *obj,
                   const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (obj) return usg_fail(s, "%s: '%s' '%s': %s", fn, file, obj, what);
    return usg_fail(s, "%s: '%s': %s", fn, file, what);
}

/* The first entry of an upward walk is the innermost: where HDF5 first saw
 * the problem ("truncated file: eof = ...", "name already exists").
 * data is a char[DESC_SIZE]. */
#define DESC_SIZE 1024
static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data)
{
    if (n == 0 && e->desc) snprintf(data, DESC_SIZE, "%s", e->desc);
    return 0;
}

/* A failed system call is described by HDF5 as "file write failed: time =
 * ..., filename = ..., errno = 28, error message = 'No space left on
 * device', ..."; the system's own message is the part worth reading. */
static void system_message(char *desc)
{
    static const char key[] = "error message = '";
    char *m = strstr(desc, key);
    if (!m) return;
    m += sizeof key - 1;
    char *end = strchr(m, '\'');
    if (end) *end = 0;
    memmove(desc, m, strlen(m) + 1);
}

usg_status h5_fail_lib(const char *fn, const char *file, const char *obj, const char *what)
{
    char desc[DESC_SIZE] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, desc);
    H5Eclear2(H5E_DEFAULT);
    system_message(desc);
    if (desc[0]) return h5_fail(USG_HDF5, fn, file, obj, "%s (HDF5: %.300s)", what, desc);
    return h5_fail(USG_HDF5, fn, file, obj, "%s", what);
}

usg_status h5_close(usg_status s, hid_t id, const char *fn, const usg_h5 *f, const char *obj)
{
    if (id < 0) return s;
    const char *what = "the object";
    herr_t e;
    switch (H5Iget_type(id)) {
    case H5I_DATASET: what = "the dataset"; e = H5Dclose(id); break;
    case H5I_GROUP: what = "the group"; e = H5Gclose(id); break;
    case H5I_ATTR: what = "the attribute"; e = H5Aclose(id); break;
    case H5I_DATASPACE: what = "a dataspace"; e = H5Sclose(id); break;
    case H5I_DATATYPE: what = "a datatype"; e = H5Tclose(id); break;
    case H5I_GENPROP_LST: what = "a property list"; e = H5Pclose(id); break;
    default: e = H5Oclose(id); break;
    }
    if (e >= 0) return s;
    if (s != USG_OK) {   /* the first error is the one to tell */
        H5Eclear2(H5E_DEFAULT);
        return s;
    }
    char msg[64];
    snprintf(msg, sizeof msg, "cannot close %s", what);
    return h5_fail_lib(fn, f ? f->path : "?", obj, msg);
}

/* A file whose H5Fclose failed (a full disk, a write past the size limit)
 * stays half-closed in HDF5's tables, and H5close at exit then crashes on
 * it (HDF5 1.10). So the library's own exit handler is off; ours closes
 * the files still open, except those, and shuts HDF5 down only when no
 * close has failed. */
#define MAX_FAILED 16
static hid_t failed_fids[MAX_FAILED];
static int nfailed;

static void h5_at_exit(void)
{
    if (nfailed == 0) {
        H5close();
        return;
    }
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE);
    hid_t *ids = n > 0 ? malloc((size_t)n * sizeof *ids) : NULL;
    if (ids) n = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_FILE, (size_t)n, ids);
    for (ssize_t i = 0; ids && i < n; i++) {
        bool failed = false;
        for (int j = 0; j < nfailed; j++) failed |= ids[i] == failed_fids[j];
        if (!failed) H5Fclose(ids[i]);
    }
    free(ids);
}

/* Silencing is process-wide in a serial HDF5. External links are refused
 * (unregistered): a file must not send usagi to open other files, fifos or
 * devices it names. */
void h5_init(void)
{
    static bool done;
    if (done) return;
    done = true;
    H5dont_atexit();
    H5open();
    atexit(h5_at_exit);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5Lunregister(H5L_TYPE_EXTERNAL);
}

usg_status h5_check(const char *fn, const usg_h5 *f, const char *path)
{
    if (!f) return usg_fail(USG_ARG, "%s: file is closed", fn);
    if (!path || !*path)
        return h5_fail(USG_ARG, fn, f->path, NULL, "path must be a non-empty string");
    return USG_OK;
}

usg_status h5_check_w(const char *fn, const usg_h5 *f, const char *path)
{
    usg_status s = h5_check(fn, f, path);
    if (s == USG_OK && f->mode[0] == 'r')
        return h5_fail(USG_IO, fn, f->path, path, "file is open read-only (mode 'r')");
    return s;
}

/* ==== Opening and closing =============================================== */

/* Why path cannot be opened as asked, from the file system's side, before
 * HDF5 is asked (its messages for these cases are long and vague). The
 * probes open and close the file; "w" may create it empty, which H5Fcreate
 * then truncates anyway. */
static usg_status check_fs(const char *path, char mode, bool *exists)
{
    struct stat st;
    *exists = stat(path, &st) == 0;
    if (!*exists && (mode == 'r' || errno != ENOENT))
        return h5_fail(USG_IO, "h5.open", path, NULL, "%s",
                       errno == ENOENT ? "no such file" : strerror(errno));
    if (*exists && S_ISDIR(st.st_mode))
        return h5_fail(USG_IO, "h5.open", path, NULL, "is a directory");
    if (*exists && !S_ISREG(st.st_mode))
        return h5_fail(USG_IO, "h5.open", path, NULL, "not a regular file");
    int flags = mode == 'r' ? O_RDONLY : !*exists || mode == 'w' ? O_WRONLY | O_CREAT : O_RDWR;
    int fd = open(path, flags | O_CLOEXEC, 0666);
    if (fd < 0)
        return h5_fail(USG_IO, "h5.open", path, NULL, "cannot %s: %s",
                       mode == 'r' ? "read" : *exists ? "write" : "create", strerror(errno));
    close(fd);
    if (*exists && mode != 'w' && h5_is_hdf5(path) <= 0)
        return h5_fail(USG_IO, "h5.open", path, NULL,
                       st.st_size == 0 ? "not an HDF5 file (empty)" : "not an HDF5 file");
    return USG_OK;
}

/* What an open's HDF5 message means for the user. A lock held by another
 * writer says "unable to lock file" (the word "lock" alone also matches
 * "sblock", the superblock, which a truncated file names); a file cut
 * short or damaged says so in several ways, all of them about its end or
 * its superblock. */
static const char *hint(const char *desc)
{
    if (strstr(desc, "unable to lock") || strstr(desc, "temporarily unavailable"))
        return "; another process has it open";
    if (strstr(desc, "truncated") || strstr(desc, "eof") || strstr(desc, "EOF") ||
        strstr(desc, "superblock") || strstr(desc, "sblock") || strstr(desc, "checksum") ||
        strstr(desc, "signature"))
        return "; the file is truncated or corrupt";
    return "";
}

/* Files usagi creates have a version 2 superblock (the 1.8 format) with a
 * checksum. Objects made by usagi in any file it writes use the 1.10
 * formats: version 2 object headers and chunk indexes (extensible and
 * fixed arrays) with checksums, where the 1.8 format's B-tree has none and
 * a damaged key there reads as zeros. The superblock stays version 2: a
 * version 3 one marks the file "open for write" while a writer holds it,
 * so readers (usagi show on a live run) and any opener after a crash
 * would be refused until h5clear. h5py and h5dump of HDF5 1.10 read these
 * files. */
static hid_t open_fid(const char *path, char mode, bool exists)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fid = -1;
    if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) goto done;
    if ((mode == 'w' || !exists) &&
        H5Pset_libver_bounds(fapl, USG_H5_LIBVER_LOW, H5F_LIBVER_LATEST) < 0)
        goto done;
    /* A reader takes no lock, so a run's results.h5 can be read (usagi
     * show, plot) while the run writes it: the reader sees the file as of
     * the writer's last flush, and a read that meets a flush half done is
     * an error, not a crash (every read is checked). Writers still lock,
     * so two processes never write one file. */
    if (mode == 'r' && H5Pset_file_locking(fapl, 0, 1) < 0) goto done;
    if (mode == 'r') fid = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    else if (mode == 'a' && exists) fid = H5Fopen(path, H5F_ACC_RDWR, fapl);
    else fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fid >= 0 && mode != 'r' && H5Fset_libver_bounds(fid, USG_H5_LIBVER_OBJECTS,
                                                         H5F_LIBVER_LATEST) < 0) {
        if (mode == 'w' || !exists) {   /* a file of our own must get them */
            if (H5Fclose(fid) < 0) H5Eclear2(H5E_DEFAULT);
            fid = -1;
        } else {
            H5Eclear2(H5E_DEFAULT);   /* another tool's file keeps its formats */
        }
    }
done:
    if (fid < 0) {   /* keep the error stack for the message: close quietly after */
        char desc[DESC_SIZE] = "";
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, desc);
        system_message(desc);
        if (fapl >= 0 && H5Pclose(fapl) < 0) H5Eclear2(H5E_DEFAULT);   /* the open's error counts */
        h5_fail(USG_HDF5, "h5.open", path, NULL, "cannot %s%s%s%s%s",
                mode == 'r' ? "open for reading" : exists && mode == 'a' ? "open for writing"
                                                                           : "create",
                desc[0] ? " (HDF5: " : "", desc, desc[0] ? ")" : "",
                hint(desc));
        return -1;
    }
    if (H5Pclose(fapl) < 0) {
        h5_fail_lib("h5.open", path, NULL, "cannot close a property list");
        if (H5Fclose(fid) < 0) H5Eclear2(H5E_DEFAULT);
        return -1;
    }
    return fid;
}

usg_status usg_h5_open(usg_h5 **out, const char *path, const char *mode)
{
    *out = NULL;
    h5_init();
    if (!path || !*path) return usg_fail(USG_ARG, "h5.open: path must be a non-empty string");
    if (!mode || !mode[0] || mode[1] || !strchr("rwa", mode[0]))
        return h5_fail(USG_ARG, "h5.open", path, NULL, "mode must be 'r', 'w' or 'a', got '%s'",
                       mode ? mode : "(null)");
    bool exists;
    usg_status s = check_fs(path, mode[0], &exists);
    if (s != USG_OK) return s;
    usg_h5 *f = malloc(sizeof *f);
    char *p = strdup(path);
    if (!f || !p) {
        free(f);
        free(p);
        return h5_fail(USG_NOMEM, "h5.open", path, NULL, "out of memory");
    }
    f->fid = open_fid(path, mode[0], exists);
    if (f->fid < 0) {
        if (!exists) unlink(path);   /* the probe's empty file */
        free(f);
        free(p);
        return USG_HDF5;
    }
    f->path = p;
    f->mode[0] = mode[0];
    f->mode[1] = 0;
    f->nopen = 0;
    *out = f;
    return USG_OK;
}

usg_status usg_h5_close(usg_h5 *f)
{
    if (!f) return USG_OK;
    usg_status s = h5_append_forget(USG_OK, f, "h5.close", NULL);
    if (H5Fclose(f->fid) < 0) {
        if (s == USG_OK) s = h5_fail_lib("h5.close", f->path, NULL, "cannot close");
        else H5Eclear2(H5E_DEFAULT);
        if (nfailed < MAX_FAILED) failed_fids[nfailed++] = f->fid;
    }
    free(f->path);
    free(f);
    return s;
}

usg_status usg_h5_flush(usg_h5 *f, bool sync)
{
    if (!f) return usg_fail(USG_ARG, "h5.flush: file is closed");
    if (f->mode[0] == 'r') return USG_OK;   /* nothing to write */
    if (H5Fflush(f->fid, H5F_SCOPE_GLOBAL) < 0)
        return h5_fail_lib("h5.flush", f->path, NULL, "cannot flush");
    if (!sync) return USG_OK;
    void *handle = NULL;
    hid_t fapl = H5Fget_access_plist(f->fid);
    herr_t e = fapl < 0 ? -1 : H5Fget_vfd_handle(f->fid, fapl, &handle);
    if (e < 0 || !handle) {
        usg_status s = h5_fail_lib("h5.flush", f->path, NULL, "no file descriptor to sync");
        return h5_close(s, fapl, "h5.flush", f, NULL);
    }
    usg_status s = h5_close(USG_OK, fapl, "h5.flush", f, NULL);
    if (s != USG_OK) return s;
    if (fsync(*(int *)handle) != 0)   /* the sec2 driver's handle is an int fd */
        return h5_fail(USG_IO, "h5.flush", f->path, NULL, "fsync: %s", strerror(errno));
    return USG_OK;
}

const char *usg_h5_path(const usg_h5 *f) { return f ? f->path : NULL; }
const char *usg_h5_mode(const usg_h5 *f) { return f ? f->mode : NULL; }

bool usg_h5_is_hdf5(const char *path)
{
    struct stat st;
    h5_init();
    if (!path || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    bool yes = h5_is_hdf5(path) > 0;
    H5Eclear2(H5E_DEFAULT);
    return yes;
}

/* ==== Paths ============================================================= */

static usg_h5_kind kind_of_id(hid_t o)
{
    switch (H5Iget_type(o)) {
    case H5I_GROUP: return USG_H5_GROUP;
    case H5I_DATASET: return USG_H5_DATASET;
    case H5I_DATATYPE: return USG_H5_DATATYPE;
    default: return USG_H5_NONE;
    }
}

/* One component at a time: H5Lexists fails (rather than saying no) when a
 * parent is missing, and a dangling soft link exists as a link but names no
 * object. */
usg_status h5_kind(const char *fn, const usg_h5 *f, const char *path, usg_h5_kind *kind)
{
    size_t n = strlen(path), len = 0;
    char *buf = malloc(n + 2);
    if (!buf) return h5_fail(USG_NOMEM, fn, f->path, path, "out of memory");
    usg_h5_kind k = USG_H5_GROUP;   /* the root */
    usg_status s = USG_OK;
    buf[len++] = '/';
    for (const char *p = path; *p;) {
        while (*p == '/') p++;
        if (!*p) break;
        size_t cl = strcspn(p, "/");
        if (k != USG_H5_GROUP) { k = USG_H5_NONE; break; }   /* a dataset's "child" */
        if (buf[len - 1] != '/') buf[len++] = '/';
        memcpy(buf + len, p, cl);
        len += cl;
        buf[len] = 0;
        p += cl;
        htri_t ex = H5Lexists(f->fid, buf, H5P_DEFAULT);
        h5_linfo li;
        if (ex > 0 && h5_lget_info(f->fid, buf, &li, H5P_DEFAULT) >= 0 &&
            li.type != H5L_TYPE_HARD && li.type != H5L_TYPE_SOFT) {
            s = h5_fail(USG_ARG, fn, f->path, path, "'%s' is an external link, which usagi "
                        "does not follow", buf);
            break;
        }
        if (ex > 0) ex = H5Oexists_by_name(f->fid, buf, H5P_DEFAULT);
        if (ex < 0) { s = h5_fail_lib(fn, f->path, path, "cannot look up the path"); break; }
        if (ex == 0) { k = USG_H5_NONE; break; }
        hid_t o = H5Oopen(f->fid, buf, H5P_DEFAULT);
        if (o < 0) { s = h5_fail_lib(fn, f->path, path, "cannot open the object"); break; }
        k = kind_of_id(o);
        if (H5Oclose(o) < 0) { s = h5_fail_lib(fn, f->path, path, "cannot close the object"); break; }
    }
    free(buf);
    *kind = s == USG_OK ? k : USG_H5_NONE;
    return s;
}

static const char *kind_name(usg_h5_kind k)
{
    return k == USG_H5_GROUP ? "a group" : k == USG_H5_DATASET ? "a dataset" : "a datatype";
}

usg_status h5_open_dataset(const char *fn, const usg_h5 *f, const char *path, hid_t *did)
{
    usg_h5_kind k;
    usg_status s = h5_kind(fn, f, path, &k);
    if (s != USG_OK) return s;
    if (k == USG_H5_NONE) return h5_fail(USG_ARG, fn, f->path, path, "no such dataset");
    if (k != USG_H5_DATASET)
        return h5_fail(USG_TYPE, fn, f->path, path, "is %s, not a dataset", kind_name(k));
    *did = H5Dopen2(f->fid, path, H5P_DEFAULT);
    return *did < 0 ? h5_fail_lib(fn, f->path, path, "cannot open the dataset") : USG_OK;
}

usg_status h5_open_object(const char *fn, const usg_h5 *f, const char *path, hid_t *oid)
{
    usg_h5_kind k;
    usg_status s = h5_kind(fn, f, path, &k);
    if (s != USG_OK) return s;
    if (k == USG_H5_NONE) return h5_fail(USG_ARG, fn, f->path, path, "no such object");
    *oid = H5Oopen(f->fid, path, H5P_DEFAULT);
    return *oid < 0 ? h5_fail_lib(fn, f->path, path, "cannot open the object") : USG_OK;
}

hid_t h5_lcpl(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl >= 0 && (H5Pset_create_intermediate_group(lcpl, 1) < 0 ||
                      H5Pset_char_encoding(lcpl, H5T_CSET_UTF8) < 0)) {
        if (H5Pclose(lcpl) < 0) H5Eclear2(H5E_DEFAULT);   /* -1 says it failed */
        return -1;
    }
    return lcpl;
}

usg_status usg_h5_kind_of(usg_h5 *f, const char *path, usg_h5_kind *kind)
{
    *kind = USG_H5_NONE;
    usg_status s = h5_check("h5.kind", f, path);
    return s != USG_OK ? s : h5_kind("h5.kind", f, path, kind);
}

usg_status usg_h5_exists(usg_h5 *f, const char *path, bool *exists)
{
    usg_h5_kind k = USG_H5_NONE;
    *exists = false;
    usg_status s = h5_check("h5.exists", f, path);
    if (s == USG_OK) s = h5_kind("h5.exists", f, path, &k);
    *exists = k != USG_H5_NONE;
    return s;
}

/* ==== Names ============================================================= */

void usg_h5_names_free(usg_h5_names *names)
{
    if (!names) return;
    for (size_t i = 0; i < names->n; i++) free(names->v[i]);
    free(names->v);
    names->v = NULL;
    names->n = 0;
}

bool h5_names_addn(usg_h5_names *names, const char *name, size_t len)
{
    char *c = malloc(len + 1);
    char **v = c ? realloc(names->v, (names->n + 1) * sizeof *v) : NULL;
    if (!v) { free(c); return false; }
    memcpy(c, name, len);
    c[len] = 0;
    v[names->n++] = c;
    names->v = v;
    return true;
}

bool h5_names_add(usg_h5_names *names, const char *name)
{
    return h5_names_addn(names, name, strlen(name));
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void h5_names_sort(usg_h5_names *names)
{
    if (names->n > 1) qsort(names->v, names->n, sizeof *names->v, cmp_names);
}

static herr_t add_link(hid_t g, const char *name, const h5_linfo *info, void *data)
{
    return h5_names_add(data, name) ? 0 : -1;
}

usg_status usg_h5_list(usg_h5 *f, const char *path, usg_h5_names *out)
{
    out->n = 0;
    out->v = NULL;
    usg_h5_kind k;
    usg_status s = h5_check("h5.list", f, path);
    if (s == USG_OK) s = h5_kind("h5.list", f, path, &k);
    if (s != USG_OK) return s;
    if (k != USG_H5_GROUP)
        return h5_fail(USG_ARG, "h5.list", f->path, path, k == USG_H5_NONE ? "no such group"
                       : "is %s, not a group", kind_name(k));
    hid_t g = H5Gopen2(f->fid, path, H5P_DEFAULT);
    if (g < 0) return h5_fail_lib("h5.list", f->path, path, "cannot open the group");
    if (h5_literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, add_link, out) < 0) {
        s = h5_fail_lib("h5.list", f->path, path, "cannot list the group");
        usg_h5_names_free(out);
    }
    s = h5_close(s, g, "h5.list", f, path);
    if (s != USG_OK) usg_h5_names_free(out);
    h5_names_sort(out);
    return s;
}

usg_status usg_h5_group(usg_h5 *f, const char *path)
{
    usg_h5_kind k;
    usg_status s = h5_check_w("h5.group", f, path);
    if (s == USG_OK) s = h5_kind("h5.group", f, path, &k);
    if (s != USG_OK || k == USG_H5_GROUP) return s;
    if (k != USG_H5_NONE)
        return h5_fail(USG_ARG, "h5.group", f->path, path, "is %s, not a group", kind_name(k));
    hid_t lcpl = h5_lcpl();
    hid_t g = lcpl < 0 ? -1 : H5Gcreate2(f->fid, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) s = h5_fail_lib("h5.group", f->path, path, "cannot create the group");
    s = h5_close(s, lcpl, "h5.group", f, path);
    return h5_close(s, g, "h5.group", f, path);
}

usg_status usg_h5_remove(usg_h5 *f, const char *path)
{
    usg_h5_kind k;
    usg_status s = h5_check_w("h5.remove", f, path);
    if (s == USG_OK && path[strspn(path, "/")] == 0)
        return h5_fail(USG_ARG, "h5.remove", f->path, path, "cannot remove the root group");
    if (s == USG_OK) s = h5_kind("h5.remove", f, path, &k);
    if (s != USG_OK) return s;
    if (k == USG_H5_NONE) return h5_fail(USG_ARG, "h5.remove", f->path, path, "no such object");
    s = h5_append_forget(USG_OK, f, "h5.remove", NULL);   /* a group takes its datasets with it */
    if (s != USG_OK) return s;
    if (H5Ldelete(f->fid, path, H5P_DEFAULT) < 0)
        return h5_fail_lib("h5.remove", f->path, path, "cannot unlink");
    return USG_OK;
}
