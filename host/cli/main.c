/*
 * main.c -- the usagi executable: a Lua 5.4 interpreter with the usagi
 * module preloaded and the project's Lua library and plugins on the paths.
 *
 * It behaves like lua5.4 for `usagi script.lua args...`, -e, -l, -i, -v, -W,
 * `-` (stdin) and `--`, so that tools such as busted run inside it and see
 * the real plugins. With no script it opens the REPL: the reading of
 * lines is here and in lineedit.c (libedit), what is printed, completed
 * and explained is usagi.repl's (scripts/usagi/repl.lua). No math here.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "usagi/lua.h"
#include "lineedit.h"

int luaopen_usagi_fetch(lua_State *L);   /* fetch_lua.c */
int luaopen_usagi_kernel_io(lua_State *L);   /* kernel_io.c */

static const char *progname = "usagi";

static const char usage_text[] =
    "usage: %s [options] [script [args]]\n"
    "Available options are:\n"
    "  -e stat   execute string 'stat'\n"
    "  -i        enter interactive mode after executing 'script'\n"
    "  -l mod    require library 'mod' into global 'mod'\n"
    "  -l g=mod  require library 'mod' into global 'g'\n"
    "  -v        show version information\n"
    "  -E        ignore environment variables (LUA_PATH, LUA_CPATH)\n"
    "  -W        turn warnings on\n"
    "  -h        show this help\n"
    "  --        stop handling options\n"
    "  -         stop handling options and execute stdin\n"
    "With no script, usagi opens the REPL: Tab completes, help() explains,\n"
    ":help lists its commands, Ctrl-C stops a computation, Ctrl-D leaves.\n"
    "The global 'usagi' is the tensor library; see the README for a tour.\n"
    "\n"
    "Commands (`usagi COMMAND --help` for each):\n"
    "  usagi run SCRIPT.lua [options]   a reproducible run in runs/<experiment>/<run-id>/\n"
    "  usagi sweep SCRIPT.lua --grid key=a,b... [-j N]   one run per combination\n"
    "  usagi show RUN_DIR               config, provenance and metrics of a run\n"
    "  usagi compare RUN_DIR...         differing config and final metrics\n"
    "  usagi plot RUN_DIR... -o FILE.svg|.png   metric curves\n"
    "  usagi data list|get|verify|path [NAME...]   the data sets the experiments use\n"
    "  usagi infer RUN_DIR [INPUT...]   the run's trained model answers each input\n"
    "  usagi kernel install [--user|--prefix P]   usagi as a Jupyter kernel\n";

/* The commands usagi.cli handles; a script of the same name runs as
 * `usagi ./run`. */
static const char *const commands[] = {"run", "sweep", "show", "compare", "plot", "data", "infer",
                                         "kernel", NULL};
static int exit_code = EXIT_SUCCESS;

/* ==== Messages and tracebacks ========================================== */

static void l_message(const char *msg)
{
    if (progname) fprintf(stderr, "%s: ", progname);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
}

static int report(lua_State *L, int status)
{
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        l_message(msg ? msg : "(error object is not a string)");
        lua_pop(L, 1);
    }
    return status;
}

static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Ctrl-C during a call: the error "interrupted!" at the next Lua step. */
static lua_State *global_L;

static void laction(int sig)
{
    signal(sig, SIG_DFL);
    usg_lua_interrupt(global_L, "interrupted!", true);
}

/* In the REPL, a Ctrl-C between the Enter that ends a line and the start
 * of the call that runs it is kept here, and the call starts interrupted:
 * a Ctrl-C typed right after Enter is never lost. */
static volatile sig_atomic_t pending_sigint;

static void lpending(int sig)
{
    (void)sig;
    pending_sigint = 1;
}

static void set_sigint(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;               /* printing results is not cut short */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

static int docall(lua_State *L, int narg, int nres)
{
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    global_L = L;
    signal(SIGINT, laction);
    int status = lua_pcall(L, narg, nres, base);
    signal(SIGINT, SIG_DFL);
    lua_remove(L, base);
    return status;
}

/* ==== Paths ============================================================= */

/* Put the project's Lua library and plugins first on package.path/cpath:
 * from the source and build trees when this binary is the one in the build
 * tree, else from the install tree next to the binary. */
static void setup_paths(lua_State *L)
{
    char exe[PATH_MAX], buf[4 * PATH_MAX + 256];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    const char *dir = dirname(exe);
    const char *lpath, *cpath;
    char lbuf[2 * PATH_MAX + 64], cbuf[2 * PATH_MAX + 64];
    if (strcmp(dir, USAGI_BUILD_DIR) == 0) {
        snprintf(lbuf, sizeof lbuf, "%s/scripts/?.lua;%s/scripts/?/init.lua;",
                 USAGI_SOURCE_DIR, USAGI_SOURCE_DIR);
        snprintf(cbuf, sizeof cbuf, "%s/modules/?.so;", USAGI_BUILD_DIR);
    } else {
        snprintf(lbuf, sizeof lbuf, "%s/../" USAGI_LUA_DATADIR "/?.lua;%s/../"
                 USAGI_LUA_DATADIR "/?/init.lua;", dir, dir);
        snprintf(cbuf, sizeof cbuf, "%s/../" USAGI_LUA_LIBDIR "/?.so;", dir);
    }
    lpath = lbuf; cpath = cbuf;
    lua_getglobal(L, "package");                        /* [package] */
    lua_getfield(L, -1, "path");                        /* [package, path] */
    snprintf(buf, sizeof buf, "%s%s", lpath, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "cpath");
    snprintf(buf, sizeof buf, "%s%s", cpath, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);                                      /* [] */
    /* usagi.fetch (downloads, for `usagi data`) lives in the executable. */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);  /* [preload] */
    lua_pushcfunction(L, luaopen_usagi_fetch);
    lua_setfield(L, -2, "usagi.fetch");
    /* usagi.kernel_io (ZeroMQ, for `usagi kernel`) too. */
    lua_pushcfunction(L, luaopen_usagi_kernel_io);
    lua_setfield(L, -2, "usagi.kernel_io");
    lua_pop(L, 1);                                      /* [] */
}

/* ==== Running chunks ==================================================== */

static int dochunk(lua_State *L, int status)
{
    if (status == LUA_OK) status = docall(L, 0, 0);
    return report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name)
{
    return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l mod or -l g=mod */
static int dolibrary(lua_State *L, char *spec)
{
    char *eq = strchr(spec, '=');
    const char *mod = spec, *glb = spec;
    if (eq) { *eq = '\0'; mod = eq + 1; }
    lua_getglobal(L, "require");
    lua_pushstring(L, mod);
    int status = docall(L, 1, 1);
    if (status == LUA_OK) lua_setglobal(L, glb);
    return report(L, status);
}

static int pushargs(lua_State *L)
{
    if (lua_getglobal(L, "arg") != LUA_TTABLE)
        luaL_error(L, "'arg' is not a table");
    int n = (int)luaL_len(L, -1);
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -n - 1);
    return n;
}

static int handle_script(lua_State *L, char **argv)
{
    const char *fname = argv[0];
    if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL;
    int status = luaL_loadfile(L, fname);
    if (status == LUA_OK) {
        int n = pushargs(L);
        status = docall(L, n, LUA_MULTRET);
    }
    return report(L, status);
}

/* arg table: script at 0, its arguments at 1.., interpreter options < 0. */
static void createargtable(lua_State *L, char **argv, int argc, int script)
{
    if (script == argc) script = 0;
    lua_createtable(L, argc - script - 1, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

/* ==== The prompt ======================================================== */

/* A syntax error that ends at <eof> means the chunk is incomplete. */
static int incomplete(lua_State *L, int status)
{
    if (status == LUA_ERRSYNTAX) {
        size_t lmsg;
        const char *msg = lua_tolstring(L, -1, &lmsg);
        const char *eof = "<eof>";
        size_t le = strlen(eof);
        if (lmsg >= le && strcmp(msg + lmsg - le, eof) == 0) {
            lua_pop(L, 1);
            return 1;
        }
    }
    return 0;
}

/* The REPL's Lua side (scripts/usagi/repl.lua: printing, completion,
 * help, tracebacks, :commands), kept in the registry; LUA_NOREF when it
 * failed to load, and the prompt falls back to print and plain errors. */
static int repl_ref = LUA_NOREF;
static int use_edit;                 /* stdin is a terminal: libedit */

/* [] -> [R.name] (nil when the REPL module or the field is missing) */
static int push_repl_fn(lua_State *L, const char *name)
{
    if (repl_ref == LUA_NOREF) { lua_pushnil(L); return 0; }
    lua_rawgeti(L, LUA_REGISTRYINDEX, repl_ref);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    return lua_isfunction(L, -1);
}

/* A line without its newline (malloc'd); NULL at end of input, or with
 * *interrupted = 1 when Ctrl-C gave it up. */
static char *read_line(const char *prompt, int *interrupted)
{
    *interrupted = 0;
    pending_sigint = 0;                  /* one left from printing the last results */
    if (use_edit) return le_read(prompt, interrupted);
    fputs(prompt, stdout);
    fflush(stdout);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    pending_sigint = 0;                  /* no Enter to tell before from after: dropped */
    if (n < 0) { free(line); return NULL; }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    return line;
}

enum { LINE_EOF = -1, LINE_INTERRUPTED = -2, LINE_COMMAND = -3 };

/* Read a chunk: try `return <line>` first so expressions print without
 * '='; else read more lines while the chunk is incomplete. Leaves [f] (or
 * [msg] on a syntax error), or [line] for a ':' command. */
static int loadline(lua_State *L)
{
    int intr;
    char *line = read_line("> ", &intr);
    if (!line) return intr ? LINE_INTERRUPTED : LINE_EOF;
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    int blank = *p == '\0', command = *p == ':';
    lua_pushstring(L, line);                              /* [line] */
    free(line);
    if (blank) { lua_pop(L, 1); return LINE_INTERRUPTED; }   /* nothing to run */
    if (command) {
        if (use_edit) le_add_history(lua_tostring(L, 1));
        return LINE_COMMAND;
    }
    const char *ret = lua_pushfstring(L, "return %s;", lua_tostring(L, 1));
    int status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    if (status == LUA_OK) {
        lua_remove(L, -2);                                /* [line, f] */
    } else {
        lua_pop(L, 2);                                    /* [line] */
        for (;;) {
            size_t len;
            const char *chunk = lua_tolstring(L, 1, &len);
            status = luaL_loadbuffer(L, chunk, len, "=stdin");
            if (!incomplete(L, status)) break;
            char *more = NULL;
            if (pending_sigint) intr = 1;                 /* after the Enter of this line */
            else more = read_line(".. ", &intr);
            if (!more) {                                  /* Ctrl-C or Ctrl-D drops the chunk */
                lua_settop(L, 0);
                return intr ? LINE_INTERRUPTED : LINE_EOF;
            }
            lua_pushliteral(L, "\n");
            lua_pushstring(L, more);
            free(more);
            lua_concat(L, 3);                             /* [chunk..'\n'..more] */
        }
    }
    if (use_edit) le_add_history(lua_tostring(L, 1));
    lua_remove(L, 1);                                     /* [f or msg] */
    return status;
}

/* A call from the prompt: R.msghandler gives the short traceback that
 * points into the user's code (the plain one when usagi.repl is missing). */
static int docall_repl(lua_State *L, int narg, int nres)
{
    if (!push_repl_fn(L, "msghandler")) { lua_pop(L, 1); lua_pushcfunction(L, msghandler); }
    int base = lua_gettop(L) - narg - 1;                  /* [.., f, args.., h] */
    lua_insert(L, base);                                  /* [.., h, f, args..] */
    global_L = L;
    signal(SIGINT, laction);
    if (pending_sigint) {                    /* typed after Enter: stop at the first step */
        pending_sigint = 0;
        laction(SIGINT);
    }
    int status = lua_pcall(L, narg, nres, base);
    set_sigint(lpending);                    /* between calls, see doREPL */
    pending_sigint = 0;
    lua_sethook(L, NULL, 0, 0);              /* a Ctrl-C that came as the call ended */
    lua_remove(L, base);
    return status;
}

static void print_results(lua_State *L)
{
    int n = lua_gettop(L);
    if (n == 0) return;
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    if (!push_repl_fn(L, "print")) { lua_pop(L, 1); lua_getglobal(L, "print"); }
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
        l_message(lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1)));
}

/* The lineedit's completer: R.complete(text) -> start (1-based), {words}. */
static char **complete_cb(void *ud, const char *text, size_t *start, int *n)
{
    lua_State *L = ud;
    int top = lua_gettop(L);
    char **out = NULL;
    *n = 0;
    if (push_repl_fn(L, "complete")) {
        lua_pushstring(L, text);
        if (lua_pcall(L, 1, 2, 0) == LUA_OK && lua_istable(L, -1)) {
            lua_Integer s = lua_tointeger(L, -2), k = (lua_Integer)luaL_len(L, -1);
            if (s >= 1 && k > 0 && (out = calloc((size_t)k, sizeof *out)) != NULL) {
                *start = (size_t)(s - 1);
                for (lua_Integer i = 1; i <= k; i++) {
                    lua_rawgeti(L, -1, i);
                    const char *w = lua_tostring(L, -1);
                    if (w && (out[*n] = strdup(w)) != NULL) (*n)++;
                    lua_pop(L, 1);
                }
            }
        }
    }
    lua_settop(L, top);
    return out;
}

/* require 'usagi.repl' and R.start(); a failure leaves the plain prompt. */
static void open_repl(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "usagi.repl");
    if (docall(L, 1, 1) != LUA_OK) {
        fprintf(stderr, "usagi: the REPL's Lua side did not load (%s); a plain prompt follows\n",
                lua_tostring(L, -1));
        lua_pop(L, 1);
        return;
    }
    repl_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (push_repl_fn(L, "start")) report(L, docall(L, 0, 0));
    else lua_pop(L, 1);
}

static void doREPL(lua_State *L)
{
    const char *oldprog = progname;
    progname = NULL;
    int status;
    lua_settop(L, 0);
    open_repl(L);
    use_edit = isatty(STDIN_FILENO) && le_open("usagi", complete_cb, L);
    /* A Ctrl-C between the reading of a line and the start of its call
     * interrupts that call as it starts; one while results print is
     * dropped when the next line is read. Neither ends the session. The
     * line editor and each call install their own handlers. */
    set_sigint(lpending);
    while ((status = loadline(L)) != LINE_EOF) {
        if (status == LINE_INTERRUPTED) { lua_settop(L, 0); continue; }
        if (status == LINE_COMMAND) {                     /* [line] */
            if (push_repl_fn(L, "command")) {
                lua_insert(L, 1);                         /* [R.command, line] */
                status = docall_repl(L, 1, LUA_MULTRET);
            } else {
                lua_pop(L, 1);
                lua_pushliteral(L, ":commands need the REPL's Lua side (usagi.repl)");
                status = LUA_ERRRUN;
            }
        } else if (status == LUA_OK) {
            status = docall_repl(L, 0, LUA_MULTRET);
        }
        if (status == LUA_OK) print_results(L);
        else report(L, status);
        lua_settop(L, 0);
    }
    if (use_edit) le_close();
    use_edit = 0;
    signal(SIGINT, SIG_DFL);
    fputs("\n", stdout);
    progname = oldprog;
}

/* ==== Options =========================================================== */

enum { HAS_ERROR = 1, HAS_I = 2, HAS_V = 4, HAS_E = 8, HAS_BIG_E = 16 };

/* Scan options; *first is the index of the script (or argc). */
static int collectargs(char **argv, int *first)
{
    int args = 0;
    for (int i = 1; argv[i] != NULL; i++) {
        *first = i;
        if (argv[i][0] != '-') return args;
        switch (argv[i][1]) {
        case '-':
            if (argv[i][2] != '\0') return HAS_ERROR;
            *first = i + 1;
            return args;
        case '\0':
            return args;
        case 'E': if (argv[i][2]) return HAS_ERROR; args |= HAS_BIG_E; break;
        case 'W': if (argv[i][2]) return HAS_ERROR; break;
        case 'i': args |= HAS_I;     /* -i implies -v */
            /* fall through */
        case 'v': if (argv[i][2]) return HAS_ERROR; args |= HAS_V; break;
        case 'e': args |= HAS_E;
            /* fall through */
        case 'l':
            if (argv[i][2] == '\0') {
                i++;
                if (argv[i] == NULL || argv[i][0] == '-') return HAS_ERROR;
            }
            break;
        default: return HAS_ERROR;
        }
    }
    for (*first = 1; argv[*first]; (*first)++) {}
    return args;                                   /* no script: *first = argc */
}

static int runargs(lua_State *L, char **argv, int n)
{
    for (int i = 1; i < n; i++) {
        int option = argv[i][1];
        if (option == 'W') { lua_warning(L, "@on", 0); continue; }
        if (option != 'e' && option != 'l') continue;
        char *extra = argv[i] + 2;
        if (*extra == '\0') extra = argv[++i];
        int status = option == 'e' ? dostring(L, extra, "=(command line)")
                                   : dolibrary(L, extra);
        if (status != LUA_OK) return 0;
    }
    return 1;
}

static void print_version(void)
{
    printf("usagi %s (%s, Copyright (C) 1994-2022 Lua.org, PUC-Rio)\n", USG_VERSION, LUA_RELEASE);
    fflush(stdout);
}

static int is_command(const char *a)
{
    for (int i = 0; a && commands[i]; i++)
        if (strcmp(a, commands[i]) == 0) return 1;
    return 0;
}

/* `usagi COMMAND args...`: require('usagi.cli').main(COMMAND, {args...})
 * returns the exit code. */
static int docommand(lua_State *L, int argc, char **argv)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "usagi.cli");
    int status = docall(L, 1, 1);
    if (status != LUA_OK) return report(L, status);
    lua_getfield(L, -1, "main");
    lua_pushstring(L, argv[1]);
    lua_createtable(L, argc - 2, 0);
    for (int i = 2; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    status = docall(L, 2, 1);
    if (status != LUA_OK) return report(L, status);
    exit_code = (int)luaL_optinteger(L, -1, 1);
    return LUA_OK;
}

/* Everything runs inside a protected call so that errors are reported. */
static int pmain(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    int script = 0;
    if (argv[1] && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf(usage_text, progname);
        lua_pushboolean(L, 1);
        return 1;
    }
    if (is_command(argv[1])) {
        luaL_openlibs(L);
        setup_paths(L);
        luaL_requiref(L, "usagi", luaopen_usagi, 1);
        lua_pop(L, 1);
        createargtable(L, argv, argc, 1);
        lua_gc(L, LUA_GCGEN, 0, 0);
        lua_pushboolean(L, docommand(L, argc, argv) == LUA_OK);
        return 1;
    }
    int args = collectargs(argv, &script);
    if (args == HAS_ERROR) {
        fprintf(stderr, usage_text, progname);
        lua_pushboolean(L, 0);
        return 1;
    }
    if (args & HAS_V) print_version();
    if (args & HAS_BIG_E) {
        lua_pushboolean(L, 1);
        lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
    }
    luaL_openlibs(L);
    setup_paths(L);
    luaL_requiref(L, "usagi", luaopen_usagi, 1);          /* global 'usagi' too */
    lua_pop(L, 1);
    createargtable(L, argv, argc, script);
    lua_gc(L, LUA_GCGEN, 0, 0);
    if (!runargs(L, argv, script)) return 0;
    if (script < argc && handle_script(L, argv + script) != LUA_OK) return 0;
    if (args & HAS_I) doREPL(L);
    else if (script == argc && !(args & (HAS_E | HAS_V))) {
        if (isatty(0)) { print_version(); doREPL(L); }
        else dochunk(L, luaL_loadfile(L, NULL));
    }
    lua_pushboolean(L, 1);
    return 1;
}

int main(int argc, char **argv)
{
    if (argv[0] && argv[0][0]) progname = argv[0];
    /* Tensors come and go in megabytes: keep freed memory in the heap
     * rather than giving it back to the system and faulting fresh pages in
     * on the next op (7-10 us a page on these VMs). */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        l_message("cannot create state: not enough memory");
        return EXIT_FAILURE;
    }
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int result = lua_toboolean(L, -1);
    report(L, status);
    lua_close(L);
    if (!(result && status == LUA_OK)) return EXIT_FAILURE;
    return exit_code;
}
