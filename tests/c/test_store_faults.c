/*
 * test_store_faults.c -- cmocka tests of the store under faults: a disk
 * that fills on each write path (write, append, attr, write_strings,
 * close, flush), a byte flipped inside a dataset's data or header, files
 * in the format older usagi wrote, and usg_h5_verify (a sound file, a
 * damaged one, a timeout, worker threads running in the caller).
 *
 * The full disk is a tmpfs of 256 KiB mounted on a fresh directory when
 * this process may mount (root); elsewhere each case runs under a file
 * size limit (RLIMIT_FSIZE, SIGXFSZ ignored), where writes fail with
 * EFBIG ("File too large") instead of ENOSPC. The test prints which ran.
 * Each case runs in a forked child, so that a failed close, which leaves
 * HDF5 with a half-closed file, is also followed by the child's normal
 * exit: it must neither crash nor hang there.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
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

/* ==== Scratch directory ================================================= */

static char fulldir[600];
static bool mounted;

static int setup(void **state)
{
    if (scratch_make("usagi_faults") != 0) return -1;
    snprintf(fulldir, sizeof fulldir, "%s/full", tmpdir);
    if (mkdir(fulldir, 0700) != 0) return -1;
    mounted = mount("tmpfs", fulldir, "tmpfs", 0, "size=256k") == 0;
    fprintf(stderr, "# full disk: %s\n", mounted ? "a tmpfs of 256 KiB"
                                                  : "RLIMIT_FSIZE of 256 KiB (mount not allowed)");
    /* HDF5 starts through the store, which turns off the library's own
     * exit handler (it would crash on a file whose close failed) and
     * silences its printing; a raw H5 call first would start it with both. */
    usg_h5_is_hdf5(tmpdir);
    return 0;
}

static int teardown(void **state)
{
    if (mounted && umount(fulldir) != 0) return -1;
    return scratch_remove();
}

/* ==== Helpers =========================================================== */

static usg_tensor *ramp(int64_t n)
{
    usg_tensor *t = NULL;
    assert_int_equal(usg_tensor_empty(&t, USG_F32, 1, (int64_t[]){n}), USG_OK);
    for (int64_t i = 0; i < n; i++) ((float *)usg_tensor_data(t))[i] = (float)(i + 1);
    return t;
}

static void spit(const char *path, const unsigned char *buf, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    fclose(fp);
}

/* ==== A full disk ======================================================= */

/* One way of filling the disk: calls that together write far more than
 * 256 KiB through one write path. Returns the first failing status (its
 * message in usg_errmsg()), or USG_OK when none failed -- the bug. */
typedef usg_status (*filler)(usg_h5 *f);

static usg_status fill_write(usg_h5 *f)
{
    usg_tensor *t = ramp(200000);   /* 800 KB: chunked */
    usg_status s = usg_h5_write(f, "/params/w", t);
    usg_tensor_release(t);
    return s;
}

static usg_status fill_append(usg_h5 *f)
{
    usg_tensor *t = ramp(1024);
    usg_status s = USG_OK;
    for (int i = 0; s == USG_OK && i < 200; i++) s = usg_h5_append(f, "/metrics/rows", t, NULL);
    usg_tensor_release(t);
    return s;
}

static usg_status fill_attr(usg_h5 *f)
{
    usg_tensor *t = ramp(12000);   /* 48 KB each */
    usg_status s = usg_h5_group(f, "/config");
    for (int i = 0; s == USG_OK && i < 16; i++) {
        char name[16];
        snprintf(name, sizeof name, "a%d", i);
        usg_h5_value v = {.type = USG_H5_VTENSOR, .t = t};
        s = usg_h5_attr_set(f, i % 2 ? "/config" : "/", name, &v);
    }
    usg_tensor_release(t);
    return s;
}

static usg_status fill_strings(usg_h5 *f)
{
    enum { N = 20000 };
    const char **v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++) v[i] = "a string of some forty characters, each";
    usg_status s = usg_h5_write_strings(f, "/vocab", v, N);
    free(v);
    return s;
}

/* Small datasets stay in HDF5's metadata cache: only close writes them. */
static usg_status fill_many_small(usg_h5 *f)
{
    usg_tensor *t = ramp(2048);   /* 8 KB each, compact */
    usg_status s = USG_OK;
    for (int i = 0; s == USG_OK && i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "/small/d%d", i);
        s = usg_h5_write(f, name, t);
    }
    usg_tensor_release(t);
    return s;
}

/* The case that was silent: 16 KB of data, a close, and zeros on disk. */
static usg_status fill_small(usg_h5 *f)
{
    usg_tensor *t = ramp(4096);
    usg_status s = usg_h5_write(f, "/params/w", t);
    usg_tensor_release(t);
    return s;
}

/* Take all but `leave` bytes of the tmpfs with a filler file. */
static void leave_free(size_t leave)
{
    struct statvfs v;
    char path[700];
    snprintf(path, sizeof path, "%s/filler", fulldir);
    assert_int_equal(statvfs(fulldir, &v), 0);
    size_t n = (size_t)v.f_bavail * v.f_bsize - leave;
    char *zeros = calloc(1, n);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(zeros, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
    free(zeros);
}

static usg_status fill_then_flush(usg_h5 *f)
{
    usg_status s = fill_many_small(f);
    return s != USG_OK ? s : usg_h5_flush(f, true);
}

/* In a child: fill, then close; exit 0 when an error came that says what
 * the system said and names the file, 2 when everything claimed success,
 * 3 when the message is wrong. The child then exits normally (atexit
 * handlers included): a crash there is a signal the parent sees. */
static void fill_case(const char *name, filler fill, size_t room)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s.h5", fulldir, name);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* a crash must kill the child, not land in cmocka's handler */
        int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (int i = 0; i < 5; i++) signal(sigs[i], SIG_DFL);
        if (mounted && room) leave_free(room);
        if (!mounted) {
            rlim_t lim = room ? room : 256 * 1024;
            struct rlimit rl = {lim, lim};
            signal(SIGXFSZ, SIG_IGN);
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        usg_h5 *f = NULL;
        if (usg_h5_open(&f, path, "w") != USG_OK) _exit(4);
        usg_status s = fill(f);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", usg_errmsg());
        usg_status c = usg_h5_close(f);
        if (s == USG_OK) snprintf(msg, sizeof msg, "%s", usg_errmsg());
        fprintf(stderr, "# %s: %s\n", name, s == USG_OK && c == USG_OK ? "no error" : msg);
        const char *sys = mounted ? "No space left on device" : "File too large";
        int code = s == USG_OK && c == USG_OK ? 2 : strstr(msg, sys) && strstr(msg, path) ? 0 : 3;
        exit(code);   /* not _exit: the exit handlers run after a failed close */
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    unlink(path);
    char filler[700];
    snprintf(filler, sizeof filler, "%s/filler", fulldir);
    unlink(filler);
    if (WIFSIGNALED(st)) fail_msg("%s: the child died of signal %d", name, WTERMSIG(st));
    if (WEXITSTATUS(st) != 0) fail_msg("%s: exit %d (2: silent, 3: bad message, 4: no open)",
                                       name, WEXITSTATUS(st));
}

static void test_disk_full(void **state)
{
    fill_case("write", fill_write, 0);
    fill_case("append", fill_append, 0);
    fill_case("attr", fill_attr, 0);
    fill_case("write_strings", fill_strings, 0);
    fill_case("close", fill_many_small, 0);
    fill_case("flush", fill_then_flush, 0);
    fill_case("almost_full", fill_small, 8192);   /* 8 KiB left for 16 KB of data */
}

/* ==== Checksums ========================================================= */

/* A byte flipped in a chunk of a large dataset fails the Fletcher-32
 * check; one flipped in a small (compact) dataset fails the checksum of
 * its object header. Neither reads back wrong numbers. */
static void test_flipped_byte(void **state)
{
    const char *path = tmp("flip.h5"), *bad = tmp("flip_bad.h5");
    usg_h5 *f = NULL;
    usg_tensor *big = ramp(100000), *small = ramp(10), *t = NULL;
    float *sv = usg_tensor_data(small);
    for (int i = 0; i < 10; i++) sv[i] = -sv[i];   /* -1, -2, ...: not among big's */
    assert_int_equal(usg_h5_open(&f, path, "w"), USG_OK);
    assert_int_equal(usg_h5_write(f, "/big", big), USG_OK);
    assert_int_equal(usg_h5_write(f, "/small", small), USG_OK);
    assert_int_equal(usg_h5_close(f), USG_OK);
    /* where the chunk of /big starts, from HDF5 itself */
    hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), did = H5Dopen2(fid, "/big", H5P_DEFAULT);
    haddr_t addr = 0;
    hsize_t size = 0;
    hid_t sp = H5Dget_space(did);
    assert_true(H5Dget_chunk_info(did, sp, 0, NULL, NULL, &addr, &size) >= 0);
    H5Sclose(sp);
    H5Dclose(did);
    H5Fclose(fid);
    size_t n;
    unsigned char *buf = slurp(path, &n);
    assert_true(addr + 1000 < n);
    buf[addr + 1000] ^= 0x40;
    spit(bad, buf, n);
    buf[addr + 1000] ^= 0x40;
    assert_int_equal(usg_h5_open(&f, bad, "r"), USG_OK);
    expect_err(usg_h5_read(f, "/big", &t), USG_HDF5, "Fletcher32");
    assert_null(t);
    assert_non_null(strstr(usg_errmsg(), bad));
    assert_int_equal(usg_h5_close(f), USG_OK);
    assert_int_not_equal(usg_h5_verify(bad, 300000), USG_OK);
    assert_non_null(strstr(usg_errmsg(), "Fletcher32"));
    /* the small one: its floats -1, -2, ... are in its object header */
    const unsigned char one_two[8] = {0, 0, 0x80, 0xbf, 0, 0, 0, 0xc0};
    unsigned char *at = memmem(buf, n, one_two, sizeof one_two);
    assert_non_null(at);
    at[5] ^= 0x01;
    spit(bad, buf, n);
    assert_int_equal(usg_h5_open(&f, bad, "r"), USG_OK);
    expect_err(usg_h5_read(f, "/small", &t), USG_HDF5, "checksum");
    assert_int_equal(usg_h5_close(f), USG_OK);
    free(buf);
    usg_tensor_release(big);
    usg_tensor_release(small);
}

/* Files as usagi wrote them before checksums (HDF5's defaults: superblock
 * 0, contiguous data) still read, and open with 'a' for writing. */
static void test_old_format(void **state)
{
    const char *path = tmp("old.h5");
    float v[300];
    for (int i = 0; i < 300; i++) v[i] = (float)i;
    hsize_t dims[2] = {100, 3};
    hid_t fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t did = H5Dcreate2(fid, "/w", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Dwrite(did, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(did);
    H5Sclose(sp);
    H5Fclose(fid);
    usg_h5 *f = NULL;
    usg_tensor *t = NULL;
    assert_int_equal(usg_h5_open(&f, path, "a"), USG_OK);
    assert_int_equal(usg_h5_read(f, "/w", &t), USG_OK);
    assert_float_equal(usg_tensor_get_flat(t, 299), 299, 0);
    assert_int_equal(usg_h5_write(f, "/w", t), USG_OK);   /* in place */
    assert_int_equal(usg_h5_append_number(f, "/loss", 0.5, NULL), USG_OK);
    assert_int_equal(usg_h5_close(f), USG_OK);
    usg_tensor_release(t);
    assert_int_equal(usg_h5_verify(path, 300000), USG_OK);
}

/* ==== Verify ============================================================ */

/* A thread that stays alive while verify forks, as a training run's workers
 * do. It naps rather than spins: on a loaded 2-core machine a spinning
 * thread took the core verify's child needed. The test forks only once
 * the thread has started: under AddressSanitizer a thread still starting
 * holds the sanitizer's allocator lock, and a child forked at that moment
 * waits for it forever (glibc's own malloc is safe across fork). The flags
 * are static, so a failed assertion (which longjmps out of the test)
 * leaves the thread reading live variables. */
static atomic_bool spin_started, spin_stop;

static void *spin(void *arg)
{
    (void)arg;
    struct timespec nap = {0, 1000000};
    atomic_store(&spin_started, true);
    while (!atomic_load(&spin_stop)) nanosleep(&nap, NULL);
    return NULL;
}

static void test_verify(void **state)
{
    const char *path = tmp("v.h5"), *cut = tmp("v_cut.h5");
    usg_h5 *f = NULL;
    usg_tensor *t = ramp(4000000);   /* 16 MB: reading it takes more than 1 ms */
    assert_int_equal(usg_h5_open(&f, path, "w"), USG_OK);
    assert_int_equal(usg_h5_write(f, "/p/w", t), USG_OK);
    assert_int_equal(usg_h5_append_number(f, "/m/loss", 1.5, NULL), USG_OK);
    const char *strs[] = {"a", "b"};
    assert_int_equal(usg_h5_write_strings(f, "/vocab", strs, 2), USG_OK);
    usg_h5_value v = {.type = USG_H5_VSTRING, .s = "x"};
    assert_int_equal(usg_h5_attr_set(f, "/p", "name", &v), USG_OK);
    assert_int_equal(usg_h5_close(f), USG_OK);
    usg_tensor_release(t);

    /* with a thread running in this process, as in a training run */
    atomic_store(&spin_stop, false);
    atomic_store(&spin_started, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, spin, NULL), 0);
    struct timespec nap = {0, 1000000};
    while (!atomic_load(&spin_started)) nanosleep(&nap, NULL);
    assert_int_equal(usg_h5_verify(path, 300000), USG_OK);   /* generous: CI machines are shared */
    expect_err(usg_h5_verify(path, 1), USG_IO, "did not finish in 0.001 s");
    assert_non_null(strstr(usg_errmsg(), path));
    atomic_store(&spin_stop, true);
    pthread_join(th, NULL);

    size_t n;
    unsigned char *buf = slurp(path, &n);
    spit(cut, buf, n / 2);
    free(buf);
    expect_err(usg_h5_verify(cut, 300000), USG_HDF5, "truncated or corrupt");
    assert_non_null(strstr(usg_errmsg(), cut));
    expect_err(usg_h5_verify(tmp("missing.h5"), 300000), USG_IO, "no such file");
    /* the child would share this process's open file and its pending writes */
    assert_int_equal(usg_h5_open(&f, path, "a"), USG_OK);
    expect_err(usg_h5_verify(path, 300000), USG_ARG, "open for writing in this process");
    assert_int_equal(usg_h5_close(f), USG_OK);
    assert_int_equal(usg_h5_open(&f, path, "r"), USG_OK);
    assert_int_equal(usg_h5_verify(path, 300000), USG_OK);   /* a reader is fine */
    assert_int_equal(usg_h5_close(f), USG_OK);
    expect_err(usg_h5_verify("", 1000), USG_ARG, "h5.verify: path");
    expect_err(usg_h5_verify(path, 0), USG_ARG, "timeout must be positive");
}

/* A truncated file says so, not that another process holds it. */
static void test_truncated_message(void **state)
{
    const char *path = tmp("t.h5"), *cut = tmp("t_cut.h5");
    usg_h5 *f = NULL;
    usg_tensor *t = ramp(1000);
    assert_int_equal(usg_h5_open(&f, path, "w"), USG_OK);
    assert_int_equal(usg_h5_write(f, "/w", t), USG_OK);
    assert_int_equal(usg_h5_close(f), USG_OK);
    usg_tensor_release(t);
    size_t n;
    unsigned char *buf = slurp(path, &n);
    spit(cut, buf, 1000);
    free(buf);
    expect_err(usg_h5_open(&f, cut, "r"), USG_HDF5, "the file is truncated or corrupt");
    assert_null(strstr(usg_errmsg(), "another process"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_flipped_byte),
        cmocka_unit_test(test_old_format),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_truncated_message),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
