/*
 * h5_verify.c -- a check of a whole file that survives libhdf5's own
 * crashes: a forked child opens the file read-only and reads every group,
 * dataset and attribute through the store's own functions, and the parent
 * waits for its answer with a time limit.
 *
 * HDF5 1.10 segfaults or spins for minutes on some damaged files (in
 * H5HG_read, H5A__close, H5F__accum_read; h5dump crashes on the same
 * files), so a file usagi did not just write is best checked this way
 * before the process that holds a training run opens it.
 *
 * The child runs no Lua and calls nothing but the store (and malloc): it
 * may be forked from a process with OpenBLAS or usagi worker threads
 * running, and only the forking thread exists in it. It leaves with
 * _exit, so neither the parent's stdio buffers nor its open HDF5 files are
 * flushed twice.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"

#if H5_VERSION_GE(1, 12, 0)
typedef H5O_token_t h5_oaddr;
#define h5_object_addr(f, p, a)                                                         \
    (H5Oget_info_by_name3((f), (p), &(oinfo), H5O_INFO_BASIC, H5P_DEFAULT) < 0 ? -1 \
     : (memcpy((a), &oinfo.token, sizeof *(a)), 0))
typedef H5O_info2_t h5_oinfo;
#else
typedef haddr_t h5_oaddr;
#define h5_object_addr(f, p, a)                                                         \
    (H5Oget_info_by_name2((f), (p), &(oinfo), H5O_INFO_BASIC, H5P_DEFAULT) < 0 ? -1 \
     : (*(a) = oinfo.addr, 0))
typedef H5O_info_t h5_oinfo;
#endif

/* A crafted file may link a group into itself or hold millions of links:
 * each object is read once, and the walk stops at these bounds. */
#define MAX_DEPTH 64
#define MAX_OBJECTS 1000000

typedef struct walk {
    usg_h5 *f;
    h5_oaddr *seen;
    size_t nseen, cap;
} walk;

/* Whether the object at path was read already (and note it if not). */
static usg_status seen_before(walk *w, const char *path, bool *seen)
{
    h5_oinfo oinfo;
    h5_oaddr a;
    *seen = false;
    if (h5_object_addr(w->f->fid, path, &a) < 0)
        return h5_fail_lib("h5.verify", w->f->path, path, "cannot read the object's header");
    for (size_t i = 0; i < w->nseen; i++)
        if (memcmp(&w->seen[i], &a, sizeof a) == 0) { *seen = true; return USG_OK; }
    if (w->nseen == MAX_OBJECTS)
        return h5_fail(USG_SHAPE, "h5.verify", w->f->path, path, "more than %d objects",
                       MAX_OBJECTS);
    if (w->nseen == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        h5_oaddr *v = realloc(w->seen, cap * sizeof *v);
        if (!v) return h5_fail(USG_NOMEM, "h5.verify", w->f->path, path, "out of memory");
        w->seen = v;
        w->cap = cap;
    }
    w->seen[w->nseen++] = a;
    return USG_OK;
}

static usg_status read_attrs(usg_h5 *f, const char *path)
{
    usg_h5_names names = {0};
    usg_h5_value v;
    usg_status s = usg_h5_attr_names(f, path, &names);
    for (size_t i = 0; s == USG_OK && i < names.n; i++) {
        s = usg_h5_attr_get(f, path, names.v[i], &v);
        usg_h5_value_clear(&v);
    }
    usg_h5_names_free(&names);
    return s;
}

/* A dataset of strings reads as strings, any other as a tensor. Types a
 * tensor cannot hold (compounds, ...) are not damage: the store refuses
 * them with USG_TYPE whether the file is sound or not, so they pass. */
static usg_status read_dataset(usg_h5 *f, const char *path)
{
    char dt[32];
    usg_status s = usg_h5_dtype(f, path, dt, sizeof dt);
    if (s != USG_OK) return s;
    if (strcmp(dt, "string") == 0) {
        usg_h5_names names = {0};
        s = usg_h5_read_strings(f, path, &names);
        usg_h5_names_free(&names);
        return s;
    }
    usg_tensor *t = NULL;
    s = usg_h5_read(f, path, &t);
    usg_tensor_release(t);
    return s == USG_TYPE ? USG_OK : s;
}

static usg_status walk_group(walk *w, const char *path, int depth)
{
    usg_h5_names names = {0};
    if (depth > MAX_DEPTH)
        return h5_fail(USG_SHAPE, "h5.verify", w->f->path, path, "groups nest deeper than %d",
                       MAX_DEPTH);
    usg_status s = read_attrs(w->f, path);
    if (s == USG_OK) s = usg_h5_list(w->f, path, &names);
    for (size_t i = 0; s == USG_OK && i < names.n; i++) {
        size_t n = strlen(path) + strlen(names.v[i]) + 2;
        char *child = malloc(n);
        if (!child) { s = h5_fail(USG_NOMEM, "h5.verify", w->f->path, path, "out of memory"); break; }
        snprintf(child, n, "%s%s%s", path, strcmp(path, "/") ? "/" : "", names.v[i]);
        usg_h5_kind k;
        bool seen = false;
        s = usg_h5_kind_of(w->f, child, &k);
        if (s == USG_OK && k != USG_H5_NONE) s = seen_before(w, child, &seen);
        if (s == USG_OK && !seen && k == USG_H5_GROUP) s = walk_group(w, child, depth + 1);
        else if (s == USG_OK && !seen && k == USG_H5_DATASET) {
            s = read_dataset(w->f, child);
            if (s == USG_OK) s = read_attrs(w->f, child);
        }
        free(child);
    }
    usg_h5_names_free(&names);
    return s;
}

/* The child's whole work: the file read end to end, then closed. */
static usg_status verify_here(const char *path)
{
    usg_h5 *f = NULL;
    usg_status s = usg_h5_open(&f, path, "r");
    if (s != USG_OK) return s;
    walk w = {.f = f};
    s = walk_group(&w, "/", 0);
    free(w.seen);
    usg_status c = usg_h5_close(f);
    return s != USG_OK ? s : c;
}

/* Write all of buf, retrying short writes; the child has nothing else to do
 * when it fails. */
static void write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, buf, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return;
        buf += k;
        n -= (size_t)k;
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Read the child's answer (a status byte and a message) until it closes
 * the pipe or the time is up; *timed_out says which. */
static size_t read_answer(int fd, char *buf, size_t cap, int timeout_ms, bool *timed_out)
{
    size_t n = 0;
    double end = now_ms() + timeout_ms;
    *timed_out = false;
    for (;;) {
        double left = end - now_ms();
        if (left <= 0) { *timed_out = true; return n; }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, left > 1e9 ? 1000000000 : (int)left + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return n;
        if (r == 0) continue;   /* the loop sees the time is up */
        char tmp[512];
        ssize_t k = read(fd, tmp, sizeof tmp);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return n;   /* end of file: the child is gone */
        size_t take = (size_t)k < cap - n ? (size_t)k : cap - n;
        memcpy(buf + n, tmp, take);
        n += take;
    }
}

/* Whether this process has path open for writing through HDF5. The child
 * would share that open file (HDF5 opens a file once per process) and
 * could write the parent's pending metadata into it while reading. */
static bool open_for_writing(const char *path)
{
    struct stat want, st;
    if (stat(path, &want) != 0) return false;
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE);
    hid_t *ids = n > 0 ? malloc((size_t)n * sizeof *ids) : NULL;
    if (ids) n = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_FILE, (size_t)n, ids);
    bool found = false;
    for (ssize_t i = 0; ids && i < n && !found; i++) {
        unsigned intent = 0;
        char name[4096];
        found = H5Fget_intent(ids[i], &intent) >= 0 && (intent & H5F_ACC_RDWR) &&
                H5Fget_name(ids[i], name, sizeof name) > 0 && stat(name, &st) == 0 &&
                st.st_dev == want.st_dev && st.st_ino == want.st_ino;
    }
    free(ids);
    H5Eclear2(H5E_DEFAULT);
    return found;
}

usg_status usg_h5_verify(const char *path, int timeout_ms)
{
    if (!path || !*path) return usg_fail(USG_ARG, "h5.verify: path must be a non-empty string");
    if (timeout_ms <= 0)
        return h5_fail(USG_ARG, "h5.verify", path, NULL, "timeout must be positive, got %d ms",
                       timeout_ms);
    h5_init();   /* before the fork, so the child inherits a silenced HDF5 */
    if (open_for_writing(path))
        return h5_fail(USG_ARG, "h5.verify", path, NULL,
                       "is open for writing in this process; close it first");
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return h5_fail(USG_IO, "h5.verify", path, NULL, "pipe: %s", strerror(errno));
    fflush(NULL);   /* nothing of the parent's is pending when the child starts */
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return h5_fail(USG_IO, "h5.verify", path, NULL, "fork: %s", strerror(e));
    }
    if (pid == 0) {
        /* A crash must end the child, whatever handler the parent set
         * (a test harness, a debugger's helper): the parent reads it from
         * the wait status. */
        int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (int i = 0; i < 5; i++) signal(sigs[i], SIG_DFL);
        close(fds[0]);
        usg_status s = verify_here(path);
        char answer[600];
        answer[0] = (char)s;
        size_t n = 1;
        if (s != USG_OK) n += (size_t)snprintf(answer + 1, sizeof answer - 1, "%s", usg_errmsg());
        write_all(fds[1], answer, n < sizeof answer ? n : sizeof answer - 1);
        _exit(0);
    }
    close(fds[1]);
    char answer[600];
    bool timed_out;
    size_t n = read_answer(fds[0], answer, sizeof answer - 1, timeout_ms, &timed_out);
    close(fds[0]);
    if (timed_out) kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    answer[n] = 0;
    if (timed_out)
        return h5_fail(USG_IO, "h5.verify", path, NULL, "reading it did not finish in %g s",
                       timeout_ms / 1e3);
    if (n >= 1 && answer[0] == USG_OK) return USG_OK;
    if (n >= 1) return usg_fail((usg_status)answer[0], "%s", answer + 1);
    if (WIFSIGNALED(st))
        return h5_fail(USG_IO, "h5.verify", path, NULL, "reading it crashed libhdf5 (signal %d)",
                       WTERMSIG(st));
    return h5_fail(USG_IO, "h5.verify", path, NULL,
                   "reading it stopped without an answer (exit status %d)",
                   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}
