/*
 * plugin_lua.c -- loading plugins: the checks before a plugin's code runs,
 * the ABI check, the registry behind usagi.plugins(), running a plugin's
 * embedded Lua face, and reading the per-layer weight lists that the
 * recurrent plugins' ops take.
 *
 * `require 'usagi.<family>'` finds usagi/<family>.so on package.cpath
 * through a searcher this file puts before Lua's own C searcher. It checks
 * the file's ELF headers before dlopen (a truncated file would otherwise
 * kill the process inside dlopen), then reads the ABI the plugin was
 * built for from its exported usg_plugin_abi before calling
 * luaopen_usagi_<family>. That opener calls usg_lua_plugin_open, which
 * checks the ABI once more and registers the plugin. Other C modules get
 * the file check and are then loaded by Lua's own searcher; the REPL's
 * :reload goes through usagi.load_plugin, with the same checks.
 */
#define _GNU_SOURCE                 /* dladdr, dlinfo */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binding.h"

#define PLUGINS_KEY "usagi.plugins"

/* [] -> [plugins] (the registry's list, created on first use) */
static void push_plugins(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, PLUGINS_KEY) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, PLUGINS_KEY);
}

int usg_lua_plugin_open(lua_State *L, const char *name, const char *version, int abi,
                        const luaL_Reg *fns, const char *face, size_t face_size)
{
    if (abi != USG_ABI_VERSION)
        return luaL_error(L, "usagi.%s: plugin built for usagi ABI %d, but this usagi "
                          "(%s) has ABI %d; rebuild the plugin against it", name, abi,
                          USG_VERSION, USG_ABI_VERSION);
    luaL_requiref(L, "usagi", luaopen_usagi, 0);       /* the host module, for the face */
    lua_pop(L, 1);
    push_plugins(L);                                  /* [plugins] */
    lua_createtable(L, 0, 3);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, version);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, abi);
    lua_setfield(L, -2, "abi");
    lua_pushlstring(L, face ? face : "", face_size);  /* its source: help() reads the docs there */
    lua_setfield(L, -2, "face");
    lua_setfield(L, -2, name);                        /* plugins[name] = {...} */
    lua_pop(L, 1);                                    /* [] */
    lua_newtable(L);                                  /* [M] */
    if (fns) luaL_setfuncs(L, fns, 0);
    lua_pushstring(L, version);
    lua_setfield(L, -2, "version");
    if (face_size == 0) return 1;
    char chunk[128];
    snprintf(chunk, sizeof chunk, "=usagi.%s (Lua face)", name);
    if (luaL_loadbuffer(L, face, face_size, chunk) != LUA_OK) return lua_error(L);
    lua_pushvalue(L, -2);                             /* [M, face, M] */
    lua_call(L, 1, 1);                                /* [M, ret] */
    if (lua_isnil(L, -1)) lua_pop(L, 1);
    return 1;
}

/* usagi.plugins() -> a list of {name, version, abi, face}, sorted by name
 * (face: the source of the plugin's Lua face, where help() finds docs) */
static int l_plugins(lua_State *L)
{
    push_plugins(L);                                  /* [plugins] */
    lua_newtable(L);                                  /* [plugins, list] */
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, -3)) {                         /* [plugins, list, k, v] */
        lua_rawseti(L, -3, ++n);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, -3);
    luaL_loadstring(L, "local a, b = ... return a.name < b.name");
    lua_call(L, 2, 0);
    lua_pop(L, 1);
    return 1;
}

static int l_abi_version(lua_State *L)
{
    lua_pushinteger(L, USG_ABI_VERSION);
    return 1;
}

/* The parts of usagi written in Lua (scripts/usagi/) load on first use:
 * usagi.nn is require 'usagi.nn', usagi.experiment is
 * require('usagi.experiment').experiment, and so on. So do the plugins:
 * usagi.word2vec is require 'usagi.word2vec' (their nn classes load the
 * same way through nn's own metatable, scripts/usagi/nn.lua). The keys are
 * also listed in the metatable's __lazy, for the REPL's completion. */
static const struct { const char *key, *module, *field; } lazy[] = {
    {"nn", "usagi.nn", NULL},
    {"optim", "usagi.optim", NULL},
    {"gradcheck", "usagi.gradcheck", NULL},
    {"experiment", "usagi.experiment", "experiment"},
    {"save", "usagi.store", "save"},
    {"load", "usagi.store", "load"},
    {"plot", "usagi.plot", NULL},
    {"data", "usagi.data", NULL},
    {"runs", "usagi.runs", NULL},
    {"help", "usagi.doc", "help"},
    {"rnn", "usagi.rnn", NULL},
    {"lstm", "usagi.lstm", NULL},
    {"gru", "usagi.gru", NULL},
    {"birnn", "usagi.birnn", NULL},
    {"attention", "usagi.attention", NULL},
    {"seq2seq", "usagi.seq2seq", NULL},
    {"vae", "usagi.vae", NULL},
    {"word2vec", "usagi.word2vec", NULL},
    {"dist", "usagi.dist", NULL},
};

static int l_lazy_index(lua_State *L)                /* [usagi, key] */
{
    luaL_checktype(L, 1, LUA_TTABLE);                /* the cache below rawsets into it */
    lua_settop(L, 2);
    const char *key = lua_tostring(L, 2);
    for (size_t i = 0; key && i < sizeof lazy / sizeof *lazy; i++) {
        if (strcmp(key, lazy[i].key) != 0) continue;
        lua_getglobal(L, "require");
        lua_pushstring(L, lazy[i].module);
        lua_call(L, 1, 1);                           /* [usagi, key, mod] */
        if (lazy[i].field) lua_getfield(L, -1, lazy[i].field);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, -2);
        lua_rawset(L, 1);                            /* cache: usagi[key] = value */
        return 1;
    }
    return 0;
}

/* ==== The file, before dlopen ============================================
 * dlopen maps a file's segments without checking that the file holds them,
 * and the first touch of a page past its end is SIGBUS: a truncated copy
 * (a full disk, an interrupted copy or build) kills the process, and with
 * it a REPL session and all its variables. So the headers are read first:
 * an ELF shared object of this process's class, byte order and machine,
 * whose program headers, loadable segments and section headers all lie
 * within the file. */

static const char self_anchor;       /* an address inside libusagi_lua */

/* The ELF machine this process runs (from the header of the library this
 * file is in, as mapped); -1 when it cannot be found. */
static int host_machine(void)
{
    Dl_info di;
    if (!dladdr(&self_anchor, &di) || !di.dli_fbase) return -1;
    const ElfW(Ehdr) *self = di.dli_fbase;
    return memcmp(self->e_ident, ELFMAG, SELFMAG) == 0 ? self->e_machine : -1;
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    return pread(fd, buf, n, (off_t)off) == (ssize_t)n;
}

/* off + count * size, saturated (a hostile header may overflow it). */
static uint64_t reach(uint64_t off, uint64_t count, uint64_t size)
{
    if (size && count > (UINT64_MAX - off) / size) return UINT64_MAX;
    return off + count * size;
}

#define ULL(x) ((unsigned long long)(x))

/* The reason a file is refused, into why; returns 1 (refused). */
static int refuse(char *why, size_t n, const char *fmt, ...) USG_PRINTF(3, 4);
static int refuse(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return 1;
}

/* 0 when the headers of the file at fd (size bytes) promise nothing the
 * file does not hold; else 1 with the reason in why. */
static int elf_check_fd(int fd, uint64_t size, char *why, size_t n)
{
    ElfW(Ehdr) eh;
    if (size == 0) return refuse(why, n, "empty file (0 bytes), not a shared library");
    if (size < sizeof eh)
        return refuse(why, n, "truncated: the file is %llu bytes, shorter than an ELF header "
                      "(%zu bytes)", ULL(size), sizeof eh);
    if (!pread_all(fd, &eh, sizeof eh, 0))
        return refuse(why, n, "cannot read it: %s", strerror(errno));
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return refuse(why, n, "not a shared library (no ELF header)");
    int bits = sizeof(void *) * 8, their_bits = eh.e_ident[EI_CLASS] == ELFCLASS64 ? 64 : 32;
    if (their_bits != bits)
        return refuse(why, n, "built for %d-bit code, this usagi is %d-bit", their_bits, bits);
    int little = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
    if (eh.e_ident[EI_DATA] != (little ? ELFDATA2LSB : ELFDATA2MSB))
        return refuse(why, n, "built for %s-endian code, this usagi is %s-endian",
                      little ? "big" : "little", little ? "little" : "big");
    if (eh.e_type != ET_DYN)
        return refuse(why, n, "not a shared library (ELF type %d, expected %d)", eh.e_type,
                      ET_DYN);
    int machine = host_machine();
    if (machine >= 0 && eh.e_machine != machine)
        return refuse(why, n, "built for another machine (ELF machine %d), this usagi runs on "
                      "ELF machine %d", eh.e_machine, machine);
    if (eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_phnum == 0)
        return refuse(why, n, "corrupt: %d program headers of %d bytes (expected %zu bytes "
                      "each)", eh.e_phnum, eh.e_phentsize, sizeof(ElfW(Phdr)));
    uint64_t end = reach(eh.e_phoff, eh.e_phnum, sizeof(ElfW(Phdr)));
    if (end > size)
        return refuse(why, n, "truncated: the file is %llu bytes but its program headers reach "
                      "%llu", ULL(size), ULL(end));
    ElfW(Phdr) *ph = malloc(eh.e_phnum * sizeof *ph);       /* at most 65535 of them */
    if (!ph) return refuse(why, n, "out of memory reading its program headers");
    int bad = !pread_all(fd, ph, eh.e_phnum * sizeof *ph, eh.e_phoff);
    end = 0;
    for (int i = 0; !bad && i < eh.e_phnum; i++) {
        uint64_t e = reach(ph[i].p_offset, 1, ph[i].p_filesz);
        if ((ph[i].p_type == PT_LOAD || ph[i].p_type == PT_DYNAMIC) && e > end) end = e;
    }
    free(ph);
    if (bad) return refuse(why, n, "cannot read its program headers: %s", strerror(errno));
    if (end > size)
        return refuse(why, n, "truncated: the file is %llu bytes but its segments reach %llu",
                      ULL(size), ULL(end));
    if (eh.e_shoff == 0) return 0;                  /* no section headers (stripped): fine */
    uint64_t count = eh.e_shnum;
    if (eh.e_shentsize != sizeof(ElfW(Shdr)))
        return refuse(why, n, "corrupt: section headers of %d bytes (expected %zu)",
                      eh.e_shentsize, sizeof(ElfW(Shdr)));
    if (count == 0) {                               /* 65280 or more: the count is in the first */
        ElfW(Shdr) first;
        if (reach(eh.e_shoff, 1, sizeof first) > size || !pread_all(fd, &first, sizeof first,
                                                                     eh.e_shoff))
            count = 1;
        else
            count = first.sh_size;
    }
    end = reach(eh.e_shoff, count, sizeof(ElfW(Shdr)));
    if (end > size)
        return refuse(why, n, "truncated: the file is %llu bytes but its section headers "
                      "reach %llu", ULL(size), ULL(end));
    return 0;
}

/* 0 when the file at path may be given to dlopen; else 1 with why. */
static int elf_check(const char *path, char *why, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return refuse(why, n, "cannot open it: %s", strerror(errno));
    struct stat st;
    int bad;
    if (fstat(fd, &st) != 0) bad = refuse(why, n, "cannot stat it: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode)) bad = refuse(why, n, "not a regular file");
    else bad = elf_check_fd(fd, (uint64_t)st.st_size, why, n);
    close(fd);
    return bad;
}

/* ==== Opening a plugin ===================================================
 * The ABI check cannot be left to the plugin's opener: one that never calls
 * USG_PLUGIN_OPEN would load unchecked. Every plugin exports the int
 * usg_plugin_abi (usagi_add_plugin defines it, see USG_PLUGIN_ABI in
 * usagi/lua.h), and the loader reads it before the opener runs. It must be
 * the plugin's own: dlsym on a handle also searches the libraries the
 * plugin links, so the symbol's address is checked to lie in the plugin. */

/* The opener's name, as Lua's own C searcher makes it first: luaopen_ and
 * the module name up to any '-' (a.b-v2: luaopen_a_b), '.' made '_'. */
static const char *push_opener_name(lua_State *L, const char *modname)
{
    const char *mark = strchr(modname, '-');
    lua_pushlstring(L, modname, mark ? (size_t)(mark - modname) : strlen(modname));
    luaL_gsub(L, lua_tostring(L, -1), ".", "_");
    lua_pushfstring(L, "luaopen_%s", lua_tostring(L, -1));
    lua_replace(L, -3);
    lua_pop(L, 1);
    return lua_tostring(L, -1);
}

/* The address p lies in the object loaded as handle h. */
static int owned_by(void *h, const void *p)
{
    struct link_map *lm;
    Dl_info di;
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !dladdr(p, &di) || !di.dli_fname) return 0;
    return strcmp(di.dli_fname, lm->l_name) == 0;
}

/* Check the file at path, open it and find its opener; for a usagi plugin
 * (check_abi) also read and check usg_plugin_abi. [] -> [opener] and 1,
 * or [message] and 0 (nothing is left loaded then). A plugin opened stays
 * loaded until the process exits: its functions may live on in tensors,
 * autograd nodes and classes. */
static int open_plugin(lua_State *L, const char *path, const char *modname, int check_abi)
{
    char why[320];
    if (elf_check(path, why, sizeof why)) { lua_pushstring(L, why); return 0; }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { lua_pushstring(L, dlerror()); return 0; }
    const char *sym = push_opener_name(L, modname);       /* [sym] */
    void *opener = dlsym(h, sym);
    if (!opener || !owned_by(h, opener)) {
        lua_pushfstring(L, "undefined symbol: %s (not a Lua module of that name)", sym);
        goto refuse;
    }
    if (check_abi) {
        const int *abi = dlsym(h, USG_PLUGIN_ABI_SYMBOL);
        if (!abi || !owned_by(h, abi)) {
            lua_pushliteral(L, "no " USG_PLUGIN_ABI_SYMBOL " symbol, so the ABI it was built "
                            "for cannot be checked; build the plugin with usagi_add_plugin "
                            "(CMake: find_package(usagi)) or put USG_PLUGIN_ABI; in one of its "
                            "C files (usagi/lua.h)");
            goto refuse;
        }
        if (*abi != USG_ABI_VERSION) {
            lua_pushfstring(L, "plugin built for usagi ABI %d, but this usagi (%s) has ABI %d; "
                            "rebuild the plugin against it", *abi, USG_VERSION, USG_ABI_VERSION);
            goto refuse;
        }
    }
    lua_pop(L, 1);                                        /* [] */
    lua_pushcfunction(L, (lua_CFunction)opener);          /* dlsym's contract on POSIX */
    return 1;
refuse:                                                   /* [sym, msg] */
    lua_remove(L, -2);
    dlclose(h);
    return 0;
}

/* Plugins are the C modules named usagi.<family>. */
static int is_plugin_name(const char *modname)
{
    return strncmp(modname, "usagi.", 6) == 0;
}

/* [] -> [path] when package.searchpath finds name on package.cpath, else
 * [] and NULL. package is at index pkg. */
static const char *push_cpath_file(lua_State *L, int pkg, const char *name)
{
    lua_getfield(L, pkg, "searchpath");
    lua_pushstring(L, name);
    lua_getfield(L, pkg, "cpath");
    if (!lua_isfunction(L, -3) || !lua_isstring(L, -1)) { lua_pop(L, 3); return NULL; }
    lua_call(L, 2, 1);
    if (lua_isstring(L, -1)) return lua_tostring(L, -1);
    lua_pop(L, 1);
    return NULL;
}

/* The searcher put before Lua's C searcher (upvalue 1: the package table).
 * For a usagi plugin it loads and returns the opener itself, checked; for
 * any other C module on package.cpath (and the file of a name's root, which
 * Lua's all-in-one searcher would open) it checks the file and returns
 * nothing, leaving the loading to Lua's searchers. */
static int l_search_checked(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    int pkg = lua_upvalueindex(1);
    const char *path = push_cpath_file(L, pkg, name);        /* [name, path] */
    char why[320];
    if (path && is_plugin_name(name)) {
        if (!open_plugin(L, path, name, 1))
            return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, path,
                              lua_tostring(L, -1));
        lua_insert(L, -2);                                   /* [name, opener, path] */
        return 2;
    }
    if (!path && strchr(name, '.')) {                        /* the root, as in a.b -> a.so */
        lua_pushlstring(L, name, (size_t)(strchr(name, '.') - name));
        path = push_cpath_file(L, pkg, lua_tostring(L, -1));
    }
    if (path && elf_check(path, why, sizeof why))
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, path, why);
    return 0;
}

/* package.searchers gets l_search_checked before its C searcher (the third
 * of Lua's four), once per state. */
static void add_searcher(lua_State *L)
{
    int top = lua_gettop(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);          /* [loaded] */
    if (lua_getfield(L, -1, "package") != LUA_TTABLE ||
        lua_getfield(L, -1, "searchers") != LUA_TTABLE) {
        lua_settop(L, top);                                            /* no package library */
        return;
    }                                                                  /* [loaded, package, s] */
    int n = (int)lua_rawlen(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        int ours = lua_tocfunction(L, -1) == l_search_checked;
        lua_pop(L, 1);
        if (ours) { lua_settop(L, top); return; }
    }
    int at = n >= 3 ? 3 : n + 1;
    for (int i = n; i >= at; i--) {                                    /* make room at 'at' */
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, l_search_checked, 1);
    lua_rawseti(L, -2, at);
    lua_settop(L, top);                                                /* [] */
}

/* usagi.load_plugin(path, name) -> the opener of module name in the file
 * at path, after the same checks as require (the ABI check for names
 * usagi.*); or nil and the reason. The REPL's :reload uses it. */
static int l_load_plugin(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1), *name = luaL_checkstring(L, 2);
    if (open_plugin(L, path, name, is_plugin_name(name))) return 1;
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

int usg_lua_open_plugin(lua_State *L)
{
    static const luaL_Reg fns[] = {{"plugins", l_plugins}, {"abi_version", l_abi_version},
                                   {"load_plugin", l_load_plugin}, {NULL, NULL}};
    add_searcher(L);
    usg_lua_register(L, fns, 1, 0);
    lua_createtable(L, 0, 2);                        /* [mod, mt] */
    lua_pushcfunction(L, l_lazy_index);
    lua_setfield(L, -2, "__index");
    lua_createtable(L, 0, (int)(sizeof lazy / sizeof *lazy));    /* [mod, mt, names] */
    for (size_t i = 0; i < sizeof lazy / sizeof *lazy; i++) {
        lua_pushstring(L, lazy[i].module);
        lua_setfield(L, -2, lazy[i].key);
    }
    lua_setfield(L, -2, "__lazy");                   /* [mod, mt] */
    lua_setmetatable(L, -2);                         /* [mod] */
    return 0;
}

