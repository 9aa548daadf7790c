/*
 * sys_lua.c -- usagi.sys: the few operating-system calls that runs,
 * checkpoints and sweeps need and standard Lua lacks: directories,
 * durable renames, wall-clock time, the host name, a lock that dies
 * with its process, starting and waiting for child processes, reading
 * a data file whole, gzip-compressed or not, a file's CRC-32, and signals
 * that stop a run at the end of a step rather than in the middle of one.
 *
 * It is glue, not a portability layer: POSIX only, each function a thin
 * wrapper whose errors name the function, the path and the system's reason.
 * The policy (what to write where, when to sync) lives in
 * scripts/usagi/run.lua and run_checkpoint.lua.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "binding.h"
#include "usagi/store.h"

extern char **environ;

static int fail(lua_State *L, const char *fn, const char *path)
{
    return luaL_error(L, "%s: '%s': %s", fn, path, strerror(errno));
}

/* mkdir(path [, exclusive]) -> true, or false when exclusive and path
 * exists: make the directory and its parents. Exclusive, the last component
 * is made by one mkdir(2) that fails if it exists, so of two processes
 * racing for the same name exactly one gets true (a run's directory is
 * never shared). */
static int l_mkdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int exclusive = lua_toboolean(L, 2);
    char buf[PATH_MAX];
    size_t n = strlen(path);
    luaL_argcheck(L, n > 0 && n < sizeof buf, 1, "path must be a non-empty string shorter than PATH_MAX");
    memcpy(buf, path, n + 1);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';   /* "a/b/" names a/b */
    for (char *p = buf + 1; ; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0) {
            if (errno != EEXIST) return fail(L, "sys.mkdir", buf);
            if (c == '\0' && exclusive) {
                lua_pushboolean(L, 0);
                return 1;
            }
        }
        *p = c;
        if (c == '\0') break;
    }
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return fail(L, "sys.mkdir", path);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_kind(lua_State *L)
{
    struct stat st;
    if (stat(luaL_checkstring(L, 1), &st) != 0) return 0;
    lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* listdir(path) -> sorted array of names (without . and ..) */
static int l_listdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d) return fail(L, "sys.listdir", path);
    lua_newtable(L);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(d);
    /* sort through a C array: the order must not depend on readdir's */
    const char **names = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *names, 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -2, i + 1);
        names[i] = lua_tostring(L, -1);
        lua_pop(L, 1);                      /* still anchored by the table */
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static void dir_of(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash) { snprintf(out, n, "."); return; }
    size_t len = (size_t)(slash - path);
    if (len == 0) len = 1;                  /* "/x" -> "/" */
    snprintf(out, n, "%.*s", (int)len, path);
}

/* replace(tmp, dst): make tmp durable, then atomically put it at dst, then
 * make the rename durable. After a crash at any moment dst is either the
 * old file or the complete new one. */
static int l_replace(lua_State *L)
{
    const char *tmp = luaL_checkstring(L, 1), *dst = luaL_checkstring(L, 2);
    char dir[PATH_MAX];
    if (fsync_path(tmp, 0) != 0) return fail(L, "sys.replace", tmp);
    if (rename(tmp, dst) != 0) return fail(L, "sys.replace", dst);
    dir_of(dst, dir, sizeof dir);
    if (fsync_path(dir, 1) != 0) return fail(L, "sys.replace", dir);
    return 0;
}

/* link(src, dst): dst becomes a second name of src, replacing dst
 * atomically (through a temporary name beside it). */
static int l_link(lua_State *L)
{
    const char *src = luaL_checkstring(L, 1), *dst = luaL_checkstring(L, 2);
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.link-tmp", dst) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return fail(L, "sys.link", dst);
    }
    unlink(tmp);
    if (link(src, tmp) != 0) return fail(L, "sys.link", src);
    if (rename(tmp, dst) != 0) { unlink(tmp); return fail(L, "sys.link", dst); }
    return 0;
}

/* remove(path): a file, or an empty directory; fine if missing. */
static int l_remove(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (remove(path) != 0 && errno != ENOENT) return fail(L, "sys.remove", path);
    return 0;
}

/* time() -> seconds since the epoch, with fractions; monotonic() -> seconds
 * from an arbitrary start, for durations. */
static int l_time(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
    return 1;
}

static int l_monotonic(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
    return 1;
}

static int l_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s < 1e6, 1, "seconds must be in [0, 1e6)");
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    return 0;
}

static int l_hostname(lua_State *L)
{
    char buf[256];
    if (gethostname(buf, sizeof buf) != 0) return fail(L, "sys.hostname", "");
    buf[sizeof buf - 1] = '\0';
    lua_pushstring(L, buf);
    return 1;
}

/* exe() -> the path of the running executable (to start more of it) */
static int l_exe(lua_State *L)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0) return fail(L, "sys.exe", "/proc/self/exe");
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

static int l_getpid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

static int l_isatty(lua_State *L)
{
    lua_Integer fd = luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, 1, "file descriptor must be >= 0");
    lua_pushboolean(L, isatty((int)fd));
    return 1;
}

/* spawn(argv [, {stdout = path, stderr = path}]) -> pid. argv[1] is the
 * program, found on PATH. Output goes where ours goes unless redirected
 * (appending to the file). */
static int l_spawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 1 && n < 4096, 1, "argv must be an array of 1 to 4095 strings");
    const char **argv = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *argv, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            return luaL_error(L, "sys.spawn: argv[%d] must be a string, got %s", (int)i,
                              luaL_typename(L, -1));
        argv[i - 1] = lua_tostring(L, -1);
        lua_pop(L, 1);                                  /* anchored by the table */
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    static const char *const streams[] = {"stdout", "stderr"};
    for (int s = 0; s < 2 && lua_istable(L, 2); s++) {
        if (lua_getfield(L, 2, streams[s]) == LUA_TSTRING)
            posix_spawn_file_actions_addopen(&fa, s + 1, lua_tostring(L, -1),
                                             O_WRONLY | O_CREAT | O_APPEND, 0666);
        lua_pop(L, 1);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        errno = rc;
        return fail(L, "sys.spawn", argv[0]);
    }
    lua_pushinteger(L, pid);
    return 1;
}

/* wait([pid [, 'nohang']]) -> pid, how, code: how is 'exit' (code = exit
 * status) or 'signal' (code = the signal number). Without pid, any child;
 * nil when there are no children left. With 'nohang', false while the
 * child still runs: a test can watch a child's progress and still know
 * when it ended. */
static int l_wait(lua_State *L)
{
    pid_t want = (pid_t)luaL_optinteger(L, 1, -1);
    static const char *const modes[] = {"block", "nohang", NULL};
    int flags = luaL_checkoption(L, 2, "block", modes) == 1 ? WNOHANG : 0;
    int st;
    pid_t pid;
    while ((pid = waitpid(want, &st, flags)) < 0 && errno == EINTR) {}
    if (pid == 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (pid < 0) {
        if (errno == ECHILD) return 0;
        return fail(L, "sys.wait", "child");
    }
    lua_pushinteger(L, pid);
    if (WIFEXITED(st)) {
        lua_pushliteral(L, "exit");
        lua_pushinteger(L, WEXITSTATUS(st));
    } else {
        lua_pushliteral(L, "signal");
        lua_pushinteger(L, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
    return 3;
}

/* kill(pid, signal) with signal a number or 'KILL', 'TERM', 'INT' */
static int l_kill(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 1, "pid must be a positive process id");
    static const char *const names[] = {"KILL", "TERM", "INT", NULL};
    static const int sigs[] = {SIGKILL, SIGTERM, SIGINT};
    int sig = lua_type(L, 2) == LUA_TNUMBER ? (int)luaL_checkinteger(L, 2)
                                            : sigs[luaL_checkoption(L, 2, "TERM", names)];
    lua_pushboolean(L, kill((pid_t)pid, sig) == 0);
    return 1;
}

/* read(path) -> the file's bytes as a string; a gzip file (.gz or not)
 * comes back decompressed, so data sets can stay compressed on disk. The
 * work is the store's (usg_file_read), which links zlib. */
static int push_bytes(lua_State *L)
{
    lua_pushlstring(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
    return 1;
}

static int l_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char *data;
    size_t len;
    if (usg_file_read(path, &data, &len, "sys.read") != USG_OK)
        return luaL_error(L, "%s", usg_errmsg());
    /* the copy into a Lua string may fail (out of memory): protected, so
     * that data is freed before the error goes on */
    lua_pushcfunction(L, push_bytes);
    lua_pushlightuserdata(L, data);
    lua_pushinteger(L, (lua_Integer)len);
    int rc = lua_pcall(L, 2, 1, 0);
    usg_free(data);
    return rc == LUA_OK ? 1 : lua_error(L);
}

/* crc32(path) -> the CRC-32 of the file's bytes (zlib's, as in gzip and
 * PNG), for a run's manifest of its checkpoints: a checkpoint whose bytes
 * changed since it was written is known before libhdf5 reads it. */
static int l_crc32(lua_State *L)
{
    uint32_t crc;
    if (usg_file_crc32(luaL_checkstring(L, 1), &crc, "sys.crc32") != USG_OK)
        return luaL_error(L, "%s", usg_errmsg());
    lua_pushinteger(L, (lua_Integer)crc);
    return 1;
}

/* ==== Stopping a run at a step's end ==================================== */

/* trap([at_once]): SIGINT, SIGTERM and SIGHUP no longer stop the process;
 * the first one is remembered for signalled() to report, so a run can stop
 * at the end of a step, checkpoint, and say it was interrupted. A second
 * signal while the first is pending stops the running Lua code at once (the
 * hook lua.c uses for Ctrl-C), for a step that does not end. With at_once
 * the first signal stops the code at once too: a run's set-up (reading
 * data, building the model) has no step end to wait for and nothing to
 * checkpoint. trap(false) leaves at_once (and traps nothing when nothing
 * is trapped), as a run does when its first step ends. untrap() puts back the handlers trap() found. The
 * stop is the error "interrupted by SIG<name>". */
static const int trapped[] = {SIGINT, SIGTERM, SIGHUP};
#define NTRAPPED (sizeof trapped / sizeof trapped[0])
static struct sigaction before[NTRAPPED];
static volatile sig_atomic_t pending;
static volatile sig_atomic_t at_once;
static int traps_set;
static lua_State *trap_L;

static const char *signal_name(int sig)
{
    return sig == SIGINT ? "INT" : sig == SIGTERM ? "TERM" : "HUP";
}

/* What usg_lua_interrupt raises: set before the hook, read by it. */
static const char *volatile interrupt_msg;
static volatile sig_atomic_t interrupt_where;

static void raise_interrupt(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    if (interrupt_where) luaL_error(L, "%s", interrupt_msg);
    lua_pushstring(L, interrupt_msg);
    lua_error(L);
}

void usg_lua_interrupt(lua_State *L, const char *msg, bool where)
{
    interrupt_msg = msg;
    interrupt_where = where;
    lua_sethook(L, raise_interrupt, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* The stop names the first signal, which the run reports. */
static void on_signal(int sig)
{
    bool second = pending != 0;
    if (!second) pending = sig;
    if ((second || at_once) && trap_L) {
        static const char *const stop[] = {"interrupted by SIGINT", "interrupted by SIGTERM",
                                           "interrupted by SIGHUP"};
        int k = pending == SIGTERM ? 1 : pending == SIGHUP ? 2 : 0;
        /* no position: the message is the same wherever the code was */
        usg_lua_interrupt(trap_L, stop[k], false);
    }
}

static int l_trap(lua_State *L)
{
    if (lua_isboolean(L, 1) && !lua_toboolean(L, 1)) {   /* trap(false): leave at_once, only */
        at_once = 0;
        return 0;
    }
    if (traps_set) {
        if (lua_toboolean(L, 1)) at_once = 1;
        return 0;
    }
    at_once = lua_toboolean(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    trap_L = lua_tothread(L, -1);   /* the main thread runs a run's steps */
    lua_pop(L, 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NTRAPPED; i++) sigaction(trapped[i], &sa, &before[i]);
    pending = 0;
    traps_set = 1;
    return 0;
}

static int l_untrap(lua_State *L)
{
    (void)L;
    if (!traps_set) return 0;
    for (size_t i = 0; i < NTRAPPED; i++) sigaction(trapped[i], &before[i], NULL);
    traps_set = 0;
    pending = 0;
    at_once = 0;
    return 0;
}

/* signalled() -> 'INT', 'TERM' or 'HUP' after trap() when such a signal
 * came, else nil. */
static int l_signalled(lua_State *L)
{
    int sig = pending;
    if (!sig) return 0;
    lua_pushstring(L, signal_name(sig));
    return 1;
}

/* lock(path) -> lock, or nil, 'busy': an exclusive flock(2) on path (a
 * file or a directory), held until lock:unlock(), the lock's collection or
 * the process's end -- SIGKILL included, which is why a run holds one on
 * its directory: a second process cannot write the run while it lives,
 * and a killed run leaves no stale lock behind. */
#define LOCK_MT "usagi.sys.Lock"

static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int *fd = lua_newuserdatauv(L, sizeof *fd, 0);
    *fd = -1;
    luaL_setmetatable(L, LOCK_MT);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) return fail(L, "sys.lock", path);
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        errno = e;
        if (e != EWOULDBLOCK) return fail(L, "sys.lock", path);
        lua_pushnil(L);
        lua_pushliteral(L, "busy");
        return 2;
    }
    return 1;
}

static int l_unlock(lua_State *L)
{
    int *fd = luaL_checkudata(L, 1, LOCK_MT);
    if (*fd >= 0) close(*fd);   /* closing the descriptor releases the flock */
    *fd = -1;
    return 0;
}

int usg_lua_open_sys(lua_State *L)
{
    if (luaL_newmetatable(L, LOCK_MT)) {
        static const luaL_Reg methods[] = {
            {"unlock", l_unlock}, {"__gc", l_unlock}, {"__close", l_unlock}, {NULL, NULL}};
        luaL_setfuncs(L, methods, 0);
        lua_pushvalue(L, -1);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        {"mkdir", l_mkdir}, {"kind", l_kind}, {"listdir", l_listdir}, {"replace", l_replace},
        {"link", l_link}, {"remove", l_remove}, {"time", l_time}, {"monotonic", l_monotonic},
        {"sleep", l_sleep}, {"hostname", l_hostname}, {"getpid", l_getpid}, {"exe", l_exe},
        {"isatty", l_isatty}, {"spawn", l_spawn}, {"wait", l_wait}, {"kill", l_kill},
        {"lock", l_lock}, {"read", l_read}, {"crc32", l_crc32}, {"trap", l_trap},
        {"untrap", l_untrap}, {"signalled", l_signalled}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "sys");
    return 0;
}
