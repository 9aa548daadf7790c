/*
 * lineedit.h -- the REPL's line editor (libedit): editing, history file,
 * Tab completion, Ctrl-C at the prompt. See lineedit.c.
 */
#ifndef USAGI_CLI_LINEEDIT_H
#define USAGI_CLI_LINEEDIT_H

#include <stddef.h>

/* Candidates for the text left of the cursor: a malloc'd array of *n
 * malloc'd strings (the lineedit frees them), each replacing text from byte
 * *start (0-based) to the cursor. NULL or *n = 0: nothing to offer. */
typedef char **(*le_completer)(void *ud, const char *text, size_t *start, int *n);

int le_open(const char *progname, le_completer fn, void *ud);   /* 1 on success */
char *le_read(const char *prompt, int *interrupted);             /* malloc'd line or NULL */
void le_add_history(const char *entry);
void le_close(void);

#endif
