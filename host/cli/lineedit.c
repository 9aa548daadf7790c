/*
 * lineedit.c -- the REPL's terminal side over libedit (BSD-licensed): line
 * editing, Ctrl-R search, a history file kept between sessions with no
 * duplicates, Tab completion and Ctrl-C at the prompt.
 *
 * It knows nothing of Lua values: completion asks a callback (main.c passes
 * one that calls usagi.repl's complete) for the candidates of the text left
 * of the cursor, and inserts or lists what comes back. Used only when stdin
 * is a terminal; a piped stdin keeps the plain reader in main.c.
 *
 * Ctrl-C at the prompt: libedit is told nothing of signals (EL_SIGNAL off);
 * our SIGINT handler, installed without SA_RESTART, makes read() fail with
 * EINTR, our read function returns an error, el_gets gives up the line and
 * le_read reports "interrupted" -- the caller prints a fresh prompt. A
 * Ctrl-C that comes once Enter is read (while libedit finishes the line)
 * does not drop the line: it is raised again for the caller's handler.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include <histedit.h>

#include "lineedit.h"

#define HISTORY_SIZE 1000

static EditLine *el;
static History *hist;
static char hist_path[4096];
static le_completer completer;
static void *completer_ud;
static const char *current_prompt = "> ";
static volatile sig_atomic_t got_sigint;

/* ==== Reading keys ====================================================== */

static void on_sigint(int sig)
{
    (void)sig;
    got_sigint = 1;
}

/* One wide character from stdin, decoding UTF-8 (or the locale's
 * encoding); -1 on Ctrl-C or a read error, 0 at end of file. */
static int getcfn(EditLine *e, wchar_t *wc)
{
    static mbstate_t mbs;
    (void)e;
    for (;;) {
        char c;
        if (got_sigint) return -1;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR && !got_sigint) continue;
            return -1;
        }
        size_t r = mbrtowc(wc, &c, 1, &mbs);
        if (r == (size_t)-2) continue;                 /* more bytes to come */
        if (r == (size_t)-1) { memset(&mbs, 0, sizeof mbs); *wc = (unsigned char)c; }
        return 1;
    }
}

static char *prompt_fn(EditLine *e)
{
    (void)e;
    return (char *)current_prompt;
}

/* ==== Completion ======================================================== */

/* Length of the longest common prefix of the candidates. */
static size_t common_prefix(char **c, int n)
{
    size_t l = strlen(c[0]);
    for (int i = 1; i < n; i++) {
        size_t k = 0;
        while (k < l && c[i][k] == c[0][k]) k++;
        l = k;
    }
    return l;
}

/* The candidates in columns, as readline lists them. */
static void list_candidates(char **c, int n)
{
    size_t w = 0;
    for (int i = 0; i < n; i++) if (strlen(c[i]) > w) w = strlen(c[i]);
    int cols = (int)(80 / (w + 2));
    if (cols < 1) cols = 1;
    int rows = (n + cols - 1) / cols;
    fputc('\n', stdout);
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < cols; k++) {
            int i = k * rows + r;
            if (i < n) fprintf(stdout, "%-*s", (int)(w + 2), c[i]);
        }
        fputc('\n', stdout);
    }
    fflush(stdout);
}

/* Tab: one candidate is inserted; several insert their common prefix, or
 * are listed under the line when there is none to add. */
static unsigned char complete(EditLine *e, int ch)
{
    (void)ch;
    const LineInfo *li = el_line(e);
    size_t before = (size_t)(li->cursor - li->buffer);
    char *text = malloc(before + 1);
    if (!text) return CC_ERROR;
    memcpy(text, li->buffer, before);
    text[before] = '\0';
    size_t start = before;
    int n = 0;
    char **cand = completer ? completer(completer_ud, text, &start, &n) : NULL;
    free(text);
    unsigned char res = CC_ERROR;
    if (cand && n > 0 && start <= before) {
        size_t typed = before - start, common = common_prefix(cand, n);
        if (common > typed) {
            char *ins = strndup(cand[0] + typed, common - typed);
            if (ins) { el_insertstr(e, ins); free(ins); res = CC_REFRESH; }
        } else if (n == 1) {
            res = CC_NORM;
        } else {
            list_candidates(cand, n);
            res = CC_REDISPLAY;
        }
    }
    for (int i = 0; cand && i < n; i++) free(cand[i]);
    free(cand);
    return res;
}

/* ==== History =========================================================== */

/* $USAGI_HISTORY, else ~/.usagi_history; "" (none) when neither is set. */
static void find_history_path(void)
{
    const char *p = getenv("USAGI_HISTORY"), *home = getenv("HOME");
    if (p && *p) snprintf(hist_path, sizeof hist_path, "%s", p);
    else if (home && *home) snprintf(hist_path, sizeof hist_path, "%s/.usagi_history", home);
    else hist_path[0] = '\0';
}

/* Remove every earlier copy of s, so the history holds each entry once,
 * at the place it was last used. */
static void forget(const char *s)
{
    HistEvent ev;
    int found;
    do {
        found = 0;
        for (int r = history(hist, &ev, H_FIRST); r == 0; r = history(hist, &ev, H_NEXT)) {
            if (strcmp(ev.str, s) == 0) {
                int num = ev.num;
                history(hist, &ev, H_DEL, num);
                found = 1;
                break;
            }
        }
    } while (found);
}

void le_add_history(const char *entry)
{
    HistEvent ev;
    if (!hist || !entry || !*entry) return;
    forget(entry);
    history(hist, &ev, H_ENTER, entry);
    /* Saved whole at every entry: a second session (or one after a crash)
     * sees it, and the file keeps no duplicates. */
    if (hist_path[0] && history(hist, &ev, H_SAVE, hist_path) >= 0)
        chmod(hist_path, 0600);        /* what was typed is the user's alone */
}

/* ==== Open, read, close ================================================= */

/* libedit keeps its copies of the names given to EL_ADDFN and EL_EDITOR
 * past el_end (162 bytes, once per process): not ours to free. libhdf5
 * 1.10 loses the object header it was loading when the header's checksum
 * fails (424 bytes per damaged header read): not ours either. The
 * sanitized build of the tests runs LeakSanitizer, which asks the program
 * for its suppressions through this hook; other builds never call it. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    /* the wide copies are made by wcsdup, whose stack ends in libc; usagi
     * itself never calls wcsdup */
    return "leak:libedit.so\nleak:wcsdup\nleak:libhdf5\n";
}

int le_open(const char *progname, le_completer fn, void *ud)
{
    HistEvent ev;
    completer = fn;
    completer_ud = ud;
    hist = history_init();
    if (!hist) return 0;
    history(hist, &ev, H_SETSIZE, HISTORY_SIZE);
    history(hist, &ev, H_SETUNIQUE, 1);
    find_history_path();
    if (hist_path[0]) history(hist, &ev, H_LOAD, hist_path);  /* a missing file is fine */
    el = el_init(progname, stdin, stdout, stderr);
    if (!el) { history_end(hist); hist = NULL; return 0; }
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_SIGNAL, 0);
    el_set(el, EL_PROMPT, prompt_fn);
    el_set(el, EL_HIST, history, hist);
    el_set(el, EL_GETCFN, getcfn);
    el_set(el, EL_ADDFN, "usagi-complete", "complete a name or path", complete);
    el_set(el, EL_BIND, "^I", "usagi-complete", NULL);
    el_set(el, EL_BIND, "^R", "em-inc-search-prev", NULL);
    el_source(el, NULL);                               /* ~/.editrc, if any */
    return 1;
}

/* A line without its newline (malloc'd), or NULL at end of input; when
 * Ctrl-C gave up the line, NULL with *interrupted = 1. */
char *le_read(const char *prompt, int *interrupted)
{
    struct sigaction sa, old;
    int count = 0;
    *interrupted = 0;
    current_prompt = prompt;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;                         /* no SA_RESTART: read() returns EINTR */
    sigemptyset(&sa.sa_mask);
    got_sigint = 0;
    sigaction(SIGINT, &sa, &old);
    const char *line = el_gets(el, &count);
    sigaction(SIGINT, &old, NULL);
    if (got_sigint && line && count > 0) {
        /* The Ctrl-C came after Enter (a key read before it gives the line
         * up): the line stands, and the Ctrl-C belongs to what runs it,
         * so it goes to the caller's handler, which is back in place. */
        got_sigint = 0;
        raise(SIGINT);
    }
    if (got_sigint) {
        got_sigint = 0;
        *interrupted = 1;
        el_reset(el);
        fputc('\n', stdout);
        fflush(stdout);
        return NULL;
    }
    if (!line || count <= 0) return NULL;
    size_t l = strlen(line);
    while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r')) l--;
    return strndup(line, l);
}

void le_close(void)
{
    if (el) el_end(el);
    if (hist) history_end(hist);
    el = NULL;
    hist = NULL;
}
