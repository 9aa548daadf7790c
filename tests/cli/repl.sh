#!/bin/sh
# The REPL on a real pseudo-terminal (tests/cli/repl_pty.py drives it from
# Debian's python3): typing, completion, multi-line, Ctrl-C, help, history.
# Usage: repl.sh path/to/usagi
exec /usr/bin/python3 "$(dirname "$0")/repl_pty.py" "$1"
