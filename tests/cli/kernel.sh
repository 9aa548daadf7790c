#!/bin/sh
# The Jupyter kernel driven by Debian's python3-jupyter-client
# (tests/cli/kernel_client.py): every request a notebook makes, inline
# pictures, interrupts, bad signatures, fuzzed messages, shutdown.
# Usage: kernel.sh path/to/usagi
exec /usr/bin/python3 "$(dirname "$0")/kernel_client.py" "$1"
