/*
 * kernel_io.c -- the module usagi.kernel_io, which the usagi executable
 * preloads for `usagi kernel` (scripts/usagi/kernel.lua): ZeroMQ sockets
 * that send and receive multipart messages, the heartbeat echo on a thread
 * of its own, HMAC-SHA256 of message frames (over the SHA-256 of fetch.c),
 * and the watch that lets a running cell be interrupted by SIGINT or by a
 * message on the control socket. The Jupyter protocol itself (JSON,
 * headers, replies) is Lua's; this file only moves bytes and keys.
 *
 * Like usagi.fetch it belongs to the executable alone: libzmq is linked by
 * the CLI, never by the core, the store or the binding.
 */
#include <lua.h>
#include <lauxlib.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "fetch.h"           /* usg_sha256_* */

#define CTX_MT "usagi.kernel_io.Context"
#define SOCK_MT "usagi.kernel_io.Socket"

/* A frame larger than this is dropped with its whole message: the
 * protocol's messages are small JSON, and a huge frame is an attack or a
 * mistake, not a cell. */
#define MAX_FRAME ((size_t)16 << 20)

/* ==== HMAC-SHA256 (RFC 2104) =========================================== */

/* out = HMAC-SHA256(key, parts[0] .. parts[n-1]) as 64 hex digits. */
static void hmac_hex(const unsigned char *key, size_t klen, const char *const *parts,
                     const size_t *lens, int n, char out[65])
{
    unsigned char k[64] = {0}, pad[64], inner[32], d[32];
    usg_sha256 c;
    if (klen > 64) {                     /* a long key is hashed first */
        usg_sha256_init(&c);
        usg_sha256_update(&c, key, klen);
        usg_sha256_final(&c, k);
    } else {
        memcpy(k, key, klen);
    }
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    usg_sha256_init(&c);
    usg_sha256_update(&c, pad, 64);
    for (int i = 0; i < n; i++) usg_sha256_update(&c, parts[i], lens[i]);
    usg_sha256_final(&c, inner);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    usg_sha256_init(&c);
    usg_sha256_update(&c, pad, 64);
    usg_sha256_update(&c, inner, 32);
    usg_sha256_final(&c, d);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* kernel_io.hmac(key, s1, s2, ...) -> hex: the signature of the frames */
static int l_hmac(lua_State *L)
{
    size_t klen;
    const char *key = luaL_checklstring(L, 1, &klen);
    int n = lua_gettop(L) - 1;
    if (n > 16) return luaL_error(L, "hmac: at most 16 parts, got %d", n);
    const char *parts[16];
    size_t lens[16];
    for (int i = 0; i < n; i++) parts[i] = luaL_checklstring(L, i + 2, &lens[i]);
    char hex[65];
    hmac_hex((const unsigned char *)key, klen, parts, lens, n, hex);
    lua_pushstring(L, hex);
    return 1;
}

/* kernel_io.equal(a, b) -> whether the strings are equal, in a time that
 * does not depend on where they first differ (signatures are compared so). */
static int l_equal(lua_State *L)
{
    size_t na, nb;
    const char *a = luaL_checklstring(L, 1, &na), *b = luaL_checklstring(L, 2, &nb);
    unsigned char diff = na != nb;
    for (size_t i = 0; i < na && i < nb; i++) diff |= (unsigned char)(a[i] ^ b[i]);
    lua_pushboolean(L, diff == 0);
    return 1;
}

/* ==== Context and heartbeat ============================================ */

typedef struct {
    void *ctx;
    void *hb;                /* the heartbeat socket, owned by the thread once started */
    pthread_t thread;
    int thread_started;
} kctx;

/* The heartbeat: a REP socket that echoes each ping, on its own thread so
 * that a long cell never looks like a dead kernel. zmq_proxy returns when
 * the context shuts down. */
static void *heartbeat(void *arg)
{
    kctx *k = arg;
    zmq_proxy(k->hb, k->hb, NULL);
    zmq_close(k->hb);
    return NULL;
}

static void ctx_close(kctx *k)
{
    if (!k->ctx) return;
    zmq_ctx_shutdown(k->ctx);            /* every blocking call returns ETERM */
    if (k->thread_started) pthread_join(k->thread, NULL);
    else if (k->hb) zmq_close(k->hb);
    zmq_ctx_term(k->ctx);                /* waits for the sockets still open (linger 0) */
    k->ctx = NULL;
}

static int l_ctx_gc(lua_State *L)
{
    ctx_close(luaL_checkudata(L, 1, CTX_MT));
    return 0;
}

/* kernel_io.context() -> a ZeroMQ context (closed by ctx:close() or GC) */
static int l_context(lua_State *L)
{
    kctx *k = lua_newuserdatauv(L, sizeof *k, 0);
    memset(k, 0, sizeof *k);
    luaL_setmetatable(L, CTX_MT);
    k->ctx = zmq_ctx_new();
    if (!k->ctx) return luaL_error(L, "kernel_io.context: %s", zmq_strerror(errno));
    return 1;
}

static kctx *check_ctx(lua_State *L, int i)
{
    kctx *k = luaL_checkudata(L, i, CTX_MT);
    if (!k->ctx) luaL_argerror(L, i, "context is closed");
    return k;
}

/* ctx:heartbeat(endpoint) -> the endpoint bound: starts the echo thread */
static int l_ctx_heartbeat(lua_State *L)
{
    kctx *k = check_ctx(L, 1);
    const char *ep = luaL_checkstring(L, 2);
    if (k->hb) return luaL_error(L, "heartbeat: already started");
    void *s = zmq_socket(k->ctx, ZMQ_REP);
    int linger = 0;
    if (!s) return luaL_error(L, "heartbeat: %s", zmq_strerror(errno));
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(s, ep) != 0) {
        int e = errno;
        zmq_close(s);
        return luaL_error(L, "heartbeat: cannot bind %s: %s", ep, zmq_strerror(e));
    }
    k->hb = s;
    if (pthread_create(&k->thread, NULL, heartbeat, k) != 0)
        return luaL_error(L, "heartbeat: cannot start its thread");
    k->thread_started = 1;
    lua_pushstring(L, ep);
    return 1;
}

static int l_ctx_close(lua_State *L)
{
    ctx_close(luaL_checkudata(L, 1, CTX_MT));
    return 0;
}

/* ==== Sockets =========================================================== */

typedef struct {
    void *s;
} ksock;

static const char *const kinds[] = {"router", "pub", NULL};
static const int kind_types[] = {ZMQ_ROUTER, ZMQ_PUB};

/* ctx:socket('router'|'pub', endpoint) -> socket, bound; the socket keeps
 * its context alive (user value 1). */
static int l_ctx_socket(lua_State *L)
{
    kctx *k = check_ctx(L, 1);
    int kind = kind_types[luaL_checkoption(L, 2, NULL, kinds)];
    const char *ep = luaL_checkstring(L, 3);
    ksock *w = lua_newuserdatauv(L, sizeof *w, 1);       /* [.., sock] */
    w->s = NULL;
    luaL_setmetatable(L, SOCK_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    w->s = zmq_socket(k->ctx, kind);
    if (!w->s) return luaL_error(L, "socket: %s", zmq_strerror(errno));
    int linger = 0;
    int64_t maxsize = (int64_t)MAX_FRAME;
    zmq_setsockopt(w->s, ZMQ_LINGER, &linger, sizeof linger);
    /* A peer that sends a larger message is disconnected by libzmq before
     * the bytes are ever held here. */
    zmq_setsockopt(w->s, ZMQ_MAXMSGSIZE, &maxsize, sizeof maxsize);
    if (zmq_bind(w->s, ep) != 0)
        return luaL_error(L, "socket: cannot bind %s: %s", ep, zmq_strerror(errno));
    return 1;
}

static ksock *check_sock(lua_State *L, int i)
{
    ksock *w = luaL_checkudata(L, i, SOCK_MT);
    if (!w->s) luaL_argerror(L, i, "socket is closed");
    return w;
}

static int l_sock_close(lua_State *L)
{
    ksock *w = luaL_checkudata(L, 1, SOCK_MT);
    if (w->s) zmq_close(w->s);
    w->s = NULL;
    return 0;
}

/* sock:endpoint() -> the endpoint it is bound to (the port when it was 0) */
static int l_sock_endpoint(lua_State *L)
{
    ksock *w = check_sock(L, 1);
    char buf[256];
    size_t n = sizeof buf;
    if (zmq_getsockopt(w->s, ZMQ_LAST_ENDPOINT, buf, &n) != 0) return 0;
    lua_pushstring(L, buf);
    return 1;
}

/* sock:send({frame, ...}) -> true | nil, message. A PUB socket with no
 * subscriber drops the message, as ZeroMQ does. */
static int l_sock_send(lua_State *L)
{
    ksock *w = check_sock(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        lua_rawgeti(L, 2, i);
        const char *p = lua_tolstring(L, -1, &len);
        if (!p) return luaL_error(L, "send: frame %d must be a string, got %s", (int)i,
                                  luaL_typename(L, -1));
        int rc;
        do rc = zmq_send(w->s, p, len, i < n ? ZMQ_SNDMORE : 0);
        while (rc < 0 && errno == EINTR);
        lua_pop(L, 1);
        if (rc < 0) {
            luaL_pushfail(L);
            lua_pushstring(L, zmq_strerror(errno));
            return 2;
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* sock:recv() -> {frame, ...} | nil, message: one whole message, without
 * waiting (call it when poll says the socket is readable). */
static int l_sock_recv(lua_State *L)
{
    ksock *w = check_sock(L, 1);
    lua_newtable(L);                                      /* [.., frames] */
    int more = 1, i = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        int rc;
        do rc = zmq_msg_recv(&m, w->s, i == 0 ? ZMQ_DONTWAIT : 0);
        while (rc < 0 && errno == EINTR);
        if (rc < 0) {
            int e = errno;
            zmq_msg_close(&m);
            luaL_pushfail(L);
            lua_pushstring(L, e == EAGAIN ? "no message" : zmq_strerror(e));
            return 2;
        }
        lua_pushlstring(L, zmq_msg_data(&m), zmq_msg_size(&m));
        lua_rawseti(L, -2, ++i);
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    return 1;
}

/* kernel_io.poll({sock, ...}, timeout_ms) -> {readable index, ...}
 * An interrupted wait (a signal) returns an empty list. */
static int l_poll(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    long timeout = (long)luaL_checkinteger(L, 2);
    int n = (int)luaL_len(L, 1);
    if (n < 1 || n > 8) return luaL_argerror(L, 1, "1 to 8 sockets expected");
    zmq_pollitem_t items[8];
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        items[i] = (zmq_pollitem_t){.socket = check_sock(L, -1)->s, .events = ZMQ_POLLIN};
        lua_pop(L, 1);
    }
    int rc = zmq_poll(items, n, timeout);
    lua_newtable(L);
    if (rc < 0) {
        if (errno == EINTR) return 1;
        return luaL_error(L, "poll: %s", zmq_strerror(errno));
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (items[i].revents & ZMQ_POLLIN) {
            lua_pushinteger(L, i + 1);
            lua_rawseti(L, -2, ++k);
        }
    return 1;
}

/* ==== Interrupts ======================================================== */

/* A running cell stops when SIGINT comes (the kernelspec's interrupt mode
 * is "signal") or when the control socket has a message that the Lua
 * handler says is an interrupt; the handler also hears of the parent's
 * death, so the kernel never outlives the notebook server.
 *
 * A hook that ran all the time would cost dearly: with any hook set,
 * Lua 5.4 takes its slow path on every instruction (a loop of additions
 * ran 2.5 times slower). So no hook is set while nothing happens, as in
 * lua.c: the SIGINT handler sets one, and so does a watcher thread that
 * sleeps in poll(2) on the control socket's ZMQ_FD (a plain file
 * descriptor; the thread makes no ZeroMQ call, so the socket stays the
 * main thread's) and checks the parent every 200 ms. The hook runs on the
 * main thread at the next instruction, clears itself, reads control,
 * and raises "interrupted" if it must; the cell's globals are kept. */
static volatile sig_atomic_t got_sigint;
static lua_State *volatile watch_L;  /* the state running a cell, or NULL */
static void *watch_sock;             /* the control socket while a cell runs */
static int watch_ref = LUA_NOREF;    /* its handler: true means interrupt */
static pid_t watch_parent;           /* the parent when the cell started */
static pthread_t watch_thread;
static int watch_stop[2] = {-1, -1}; /* a pipe: a byte ends the thread */
static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cv = PTHREAD_COND_INITIALIZER;
static int watch_pending;            /* the thread set the hook; the main thread has not looked */

static void watch_hook(lua_State *L, lua_Debug *ar);

static void set_hook(lua_State *L)
{
    /* lua_sethook may be called asynchronously (lua.c does it from its
     * signal handler); count 1 stops at the next instruction */
    lua_sethook(L, watch_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static void on_sigint(int sig)
{
    (void)sig;
    got_sigint = 1;
    lua_State *L = watch_L;
    if (L) set_hook(L);
}

static void watch_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    int stop = 0;
    pthread_mutex_lock(&watch_mu);
    int pending = watch_pending;
    pthread_mutex_unlock(&watch_mu);
    if (pending && watch_ref != LUA_NOREF) {
        /* every message waiting on control, and the parent's death: the
         * handler says whether the cell must stop */
        zmq_pollitem_t it = {.socket = watch_sock, .events = ZMQ_POLLIN};
        int first = 1;
        while (!stop && (zmq_poll(&it, 1, 0) > 0 || (first && getppid() != watch_parent))) {
            first = 0;
            lua_rawgeti(L, LUA_REGISTRYINDEX, watch_ref);
            /* the handler's own errors are its business: they do not stop the cell */
            if (lua_pcall(L, 0, 1, 0) == LUA_OK) stop = lua_toboolean(L, -1);
            lua_pop(L, 1);
        }
        pthread_mutex_lock(&watch_mu);
        watch_pending = 0;
        pthread_cond_signal(&watch_cv);
        pthread_mutex_unlock(&watch_mu);
    }
    if (got_sigint) {
        got_sigint = 0;
        stop = 1;
    }
    if (stop) luaL_error(L, "interrupted");
}

/* The watcher: wakes when control may have a message or every 200 ms to
 * look at the parent; then sets the hook and waits until the main thread
 * has looked, so that it never signals twice for one event. */
static void *watcher(void *arg)
{
    int zfd = *(int *)arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = zfd, .events = POLLIN}, {.fd = watch_stop[0], .events = POLLIN}};
        int rc = poll(p, 2, 200);
        if (rc < 0 && errno != EINTR) break;
        if (p[1].revents) break;
        if ((rc > 0 && p[0].revents) || getppid() != watch_parent) {
            pthread_mutex_lock(&watch_mu);
            watch_pending = 1;
            set_hook(watch_L);
            while (watch_pending) {
                struct timespec t;
                clock_gettime(CLOCK_REALTIME, &t);
                t.tv_nsec += 100 * 1000 * 1000;
                if (t.tv_nsec >= 1000000000) { t.tv_sec++; t.tv_nsec -= 1000000000; }
                pthread_cond_timedwait(&watch_cv, &watch_mu, &t);
                /* the stop pipe is read below: a cell that ended before
                 * its hook ran leaves watch_pending set */
                struct pollfd q = {.fd = watch_stop[0], .events = POLLIN};
                if (poll(&q, 1, 0) > 0) { pthread_mutex_unlock(&watch_mu); return NULL; }
            }
            pthread_mutex_unlock(&watch_mu);
        }
    }
    return NULL;
}

static void watch_end(void)
{
    if (watch_stop[1] >= 0) {
        char c = 0;
        while (write(watch_stop[1], &c, 1) < 0 && errno == EINTR) {}
        pthread_join(watch_thread, NULL);
        close(watch_stop[0]);
        close(watch_stop[1]);
        watch_stop[0] = watch_stop[1] = -1;
    }
    lua_State *L = watch_L;
    watch_L = NULL;
    if (L) lua_sethook(L, NULL, 0, 0);
    watch_pending = 0;
    watch_sock = NULL;
}

/* Starts the watch of the cell about to run on L: the handler (a Lua
 * function at index h) runs when control has a message or the parent is
 * gone, and returns true to stop the cell. */
static void watch_start(lua_State *L, ksock *w, int h)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lua_State *main = lua_tothread(L, -1);
    lua_pop(L, 1);
    static int zfd;
    size_t len = sizeof zfd;
    if (zmq_getsockopt(w->s, ZMQ_FD, &zfd, &len) != 0)
        luaL_error(L, "run: %s", zmq_strerror(errno));
    if (pipe(watch_stop) != 0) luaL_error(L, "run: cannot make a pipe: %s", strerror(errno));
    lua_pushvalue(L, h);
    watch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    watch_sock = w->s;
    watch_parent = getppid();
    watch_L = main;
    /* a message that came before the watch started has already consumed
     * the descriptor's wake-up: look once now */
    zmq_pollitem_t it = {.socket = w->s, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, 0) > 0 || got_sigint) {
        watch_pending = 1;
        set_hook(main);
    }
    if (pthread_create(&watch_thread, NULL, watcher, &zfd) != 0) {
        close(watch_stop[0]);
        close(watch_stop[1]);
        watch_stop[0] = watch_stop[1] = -1;
        watch_end();
        luaL_unref(L, LUA_REGISTRYINDEX, watch_ref);
        watch_ref = LUA_NOREF;
        luaL_error(L, "run: cannot start the watcher thread");
    }
}

/* kernel_io.run(control, handler, f, msgh) -> as xpcall(f, msgh): runs a
 * cell under the watch. The watch starts and ends here, in C, so that no
 * Lua instruction of the kernel's own runs while an interrupt can fire:
 * only the cell (and its message handler) can be stopped. */
static int l_run(lua_State *L)
{
    ksock *w = check_sock(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    luaL_checktype(L, 4, LUA_TFUNCTION);
    lua_settop(L, 4);
    lua_pushvalue(L, 3);                                  /* [sock, handler, f, msgh, f] */
    watch_start(L, w, 2);
    int status = lua_pcall(L, 0, LUA_MULTRET, 4);         /* [sock, handler, f, msgh, results...] */
    watch_end();
    luaL_unref(L, LUA_REGISTRYINDEX, watch_ref);
    watch_ref = LUA_NOREF;
    lua_pushboolean(L, status == LUA_OK);
    lua_replace(L, 4);                                    /* [sock, handler, f, ok, results...] */
    return lua_gettop(L) - 3;
}

/* kernel_io.catch_sigint() makes SIGINT set the flag the watch reads
 * (instead of ending the process); kernel_io.sigint() -> whether one came
 * since the last call, and clears it. */
static int l_catch_sigint(lua_State *L)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    return 0;
}

static int l_sigint(lua_State *L)
{
    lua_pushboolean(L, got_sigint);
    got_sigint = 0;
    return 1;
}

/* kernel_io.getppid() -> the parent's pid (1, or a reaper's, once it died) */
static int l_getppid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getppid());
    return 1;
}

int luaopen_usagi_kernel_io(lua_State *L)
{
    static const luaL_Reg ctx_m[] = {
        {"socket", l_ctx_socket}, {"heartbeat", l_ctx_heartbeat}, {"close", l_ctx_close},
        {NULL, NULL}};
    static const luaL_Reg sock_m[] = {
        {"send", l_sock_send}, {"recv", l_sock_recv}, {"close", l_sock_close},
        {"endpoint", l_sock_endpoint}, {NULL, NULL}};
    static const luaL_Reg fns[] = {
        {"context", l_context}, {"poll", l_poll}, {"hmac", l_hmac}, {"equal", l_equal},
        {"run", l_run}, {"catch_sigint", l_catch_sigint}, {"sigint", l_sigint},
        {"getppid", l_getppid}, {NULL, NULL}};
    luaL_newmetatable(L, CTX_MT);                         /* [mt] */
    luaL_newlib(L, ctx_m);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_ctx_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, SOCK_MT);
    luaL_newlib(L, sock_m);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_sock_close);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    return 1;
}
