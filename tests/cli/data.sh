#!/bin/sh
# `usagi data`: list, get, verify, path and get --from, with downloads from a
# loopback HTTP server (tests/data_server.py, 127.0.0.1 only) that serves a
# copy of the shared data and injects faults: a download cut midway and
# resumed, a corrupt file, a 404, a redirect, a server that is down, a cache
# that cannot be written. Nothing here reaches outside the machine.
# Usage: data.sh path/to/usagi. Exits 77 (skipped) without ../shared/data.
set -u
usagi=$1
shared=${USAGI_SHARED_DATA:-../shared/data}
if [ ! -d "$shared/ptb" ] || [ ! -d "$shared/dlfs2" ] || [ ! -d "$shared/tinyshakespeare" ]; then
  echo "skipped: no $shared (ptb, dlfs2, tinyshakespeare) to serve"; exit 77
fi
# The loopback server must not be reached through a proxy of the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
t=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; chmod -R u+w "$t" 2>/dev/null; rm -rf "$t"; }
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/     /'; }
has() { printf '%s' "$1" | grep -qF -- "$2"; }

# The server's root: ptb, dlfs2 and tinyshakespeare as the shared data
# holds them (ptb.train.txt gzipped), word2vec_eval absent (a 404).
mkdir -p "$t/srv"
cp -r "$shared/ptb" "$shared/dlfs2" "$shared/tinyshakespeare" "$t/srv/"
chmod -R u+w "$t/srv"
/usr/bin/python3 tests/data_server.py "$t/srv" "$t/port" "$t/log" &
server=$!
i=0
while [ ! -s "$t/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
port=$(cat "$t/port")
url=http://127.0.0.1:$port

get() { # cache mirror args... -> $out, $rc
  c=$1 m=$2; shift 2
  out=$(USAGI_DATA=$c USAGI_DATA_MIRROR=$m "$usagi" data get "$@" 2>&1); rc=$?
}

# A full download: raw ptb.valid/test, train found as .gz after a 404.
get "$t/c1" "$url" ptb
if [ $rc = 0 ] && [ -f "$t/c1/ptb/ptb.valid.txt" ] && [ -f "$t/c1/ptb/ptb.train.txt.gz" ] &&
   ! ls "$t/c1/ptb" | grep -q part; then ok "a full download"; else no "a full download (rc $rc)" "$out"; fi
out=$(USAGI_DATA=$t/c1 "$usagi" data verify ptb 2>&1)
if [ $? = 0 ] && has "$out" "ok       ptb/ptb.train.txt"; then ok "verify"; else no "verify" "$out"; fi
out=$(USAGI_DATA=$t/c1 "$usagi" data path ptb 2>&1)
if [ "$out" = "$t/c1/ptb" ]; then ok "path"; else no "path" "$out"; fi
out=$(USAGI_DATA=$t/c1 "$usagi" data path dlfs2 2>&1)
if [ $? = 1 ] && has "$out" "usagi data get dlfs2"; then ok "path of a set not here"; else no "path of a set not here" "$out"; fi
out=$(USAGI_DATA=$t/c1 "$usagi" data list 2>&1)
if printf '%s\n' "$out" | grep -q '^ptb  *3/3 ' && printf '%s\n' "$out" | grep -q '^text8  *0/1 '; then
  ok "list"; else no "list" "$out"; fi
out=$(USAGI_DATA=$t/c1 "$usagi" -e 'print(require("usagi.data").path("ptb/ptb.train.txt.gz"))' 2>&1)
if [ "$out" = "$t/c1/ptb/ptb.train.txt.gz" ]; then ok "usagi.data.path reads the cache"; else no "usagi.data.path" "$out"; fi

# A damaged file in the cache: verify names it, get replaces it.
printf 'x' >> "$t/c1/ptb/ptb.valid.txt"
out=$(USAGI_DATA=$t/c1 "$usagi" data verify ptb 2>&1)
if [ $? = 1 ] && has "$out" "BAD      ptb/ptb.valid.txt"; then ok "verify finds a damaged file"; else no "verify damaged" "$out"; fi
get "$t/c1" "$url" ptb
if [ $rc = 0 ] && USAGI_DATA=$t/c1 "$usagi" data verify ptb >/dev/null 2>&1; then ok "get replaces a damaged file"
else no "get replaces a damaged file" "$out"; fi

# Cut midway: an error that says the part is kept, no input.txt; then resumed.
get "$t/c2" "$url/cut" tinyshakespeare
part=$t/c2/tinyshakespeare/input.txt.part
if [ $rc = 1 ] && has "$out" "run the same command again to resume" && [ -s "$part" ] &&
   [ ! -e "$t/c2/tinyshakespeare/input.txt" ]; then ok "a cut download keeps its part only"
else no "a cut download (rc $rc)" "$out"; fi
have=$(wc -c < "$part" | tr -d ' ')
get "$t/c2" "$url" tinyshakespeare
if [ $rc = 0 ] && grep -q "^/tinyshakespeare/input.txt bytes=$have-\$" "$t/log" &&
   [ ! -e "$part" ] && USAGI_DATA=$t/c2 "$usagi" data verify tinyshakespeare >/dev/null; then
  ok "the cut download resumed from byte $have"; else no "resume (rc $rc)" "$out
$(cat "$t/log")"; fi

# A server that ignores Range: the part is thrown away and the file fetched whole.
get "$t/c12" "$url/cut" dlfs2
get "$t/c12" "$url/norange" dlfs2
if [ $rc = 0 ] && USAGI_DATA=$t/c12 "$usagi" data verify dlfs2 >/dev/null; then ok "a server without ranges"
else no "a server without ranges (rc $rc)" "$out"; fi

# Two gets of one set at once: the second waits for the first, then finds
# its files in place; neither writes the other's .part.
USAGI_DATA=$t/c13 USAGI_DATA_MIRROR=$url/slow "$usagi" data get tinyshakespeare >"$t/first.txt" 2>&1 &
pid=$!
i=0
while [ ! -s "$t/c13/tinyshakespeare/input.txt.part" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
get "$t/c13" "$url" tinyshakespeare
wait $pid; rc1=$?
if [ $rc = 0 ] && [ $rc1 = 0 ] && has "$out" "waiting: another usagi is getting tinyshakespeare" &&
   has "$out" "ok  tinyshakespeare/input.txt" && ! ls "$t/c13/tinyshakespeare" | grep -q part &&
   USAGI_DATA=$t/c13 "$usagi" data verify tinyshakespeare >/dev/null; then ok "two gets at once"
else no "two gets at once (rc $rc, first $rc1)" "$out
$(cat "$t/first.txt")"; fi

# Ctrl-C (SIGINT) in the middle: a clear message, the part kept, then resumed.
USAGI_DATA=$t/c10 USAGI_DATA_MIRROR=$url/slow "$usagi" data get tinyshakespeare >"$t/int.txt" 2>&1 &
pid=$!
part=$t/c10/tinyshakespeare/input.txt.part
i=0
while [ "$( { [ -f "$part" ] && wc -c < "$part"; } || echo 0)" -lt 50000 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
kill -INT $pid; wait $pid; rc=$?
out=$(cat "$t/int.txt")
if [ $rc != 0 ] && has "$out" "interrupted" && [ -s "$part" ] && [ ! -e "$t/c10/tinyshakespeare/input.txt" ]; then
  get "$t/c10" "$url" tinyshakespeare
  if [ $rc = 0 ] && USAGI_DATA=$t/c10 "$usagi" data verify tinyshakespeare >/dev/null; then ok "Ctrl-C, then resumed"
  else no "resume after Ctrl-C (rc $rc)" "$out"; fi
else no "Ctrl-C (rc $rc)" "$out"; fi

# A corrupt file is refused and deleted; a good file of the set is kept.
mkdir -p "$t/c3/dlfs2" && cp "$shared/dlfs2/addition.txt" "$t/c3/dlfs2/"
get "$t/c3" "$url/corrupt" dlfs2
if [ $rc = 1 ] && has "$out" "dlfs2/date.txt: the download from $url/corrupt/dlfs2/date.txt is corrupt and was deleted" &&
   has "$out" "SHA-256 mismatch" && [ ! -e "$t/c3/dlfs2/date.txt" ] && [ ! -e "$t/c3/dlfs2/date.txt.part" ] &&
   cmp -s "$shared/dlfs2/addition.txt" "$t/c3/dlfs2/addition.txt"; then ok "a corrupt download is refused"
else no "a corrupt download (rc $rc)" "$out"; fi
# ... and a good copy already in the cache is not replaced by a corrupt one
cp "$shared/dlfs2/date.txt" "$t/c3/dlfs2/"
get "$t/c3" "$url/corrupt" dlfs2
if [ $rc = 0 ] && cmp -s "$shared/dlfs2/date.txt" "$t/c3/dlfs2/date.txt"; then ok "good files stay"
else no "good files stay (rc $rc)" "$out"; fi

# Redirects are followed.
get "$t/c4" "$url/redirect" dlfs2
if [ $rc = 0 ] && USAGI_DATA=$t/c4 "$usagi" data verify dlfs2 >/dev/null; then ok "a redirect"; else no "a redirect" "$out"; fi

# A set that comes as nested archives (DailyDialog's zip of split zips),
# the registry's URL pointed at the server: every file taken out, checked,
# and the archives removed afterwards.
if [ -d "$shared/dailydialog" ]; then
  /usr/bin/python3 - "$shared/dailydialog" "$t/srv/ijcnlp_dailydialog.zip" <<'PY'
import gzip, io, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w") as top:
    for split in ("train", "validation", "test"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for kind in ("", "act_", "emotion_"):
                name = "dialogues_%s%s.txt" % (kind, split)
                z.writestr("%s/%s" % (split, name), gzip.open("%s/%s.gz" % (src, name)).read())
        top.writestr("ijcnlp_dailydialog/%s.zip" % split, buf.getvalue())
    top.write("%s/readme.txt" % src, "ijcnlp_dailydialog/readme.txt")
PY
  out=$(USAGI_DATA=$t/c11 "$usagi" -e "
    local get = require 'usagi.data_get'
    get.registry.dailydialog.archives.top.url = '$url/ijcnlp_dailydialog.zip'
    get.get('dailydialog', { mirror = '', progress = 'none' })" 2>&1)
  if [ $? = 0 ] && USAGI_DATA=$t/c11 "$usagi" data verify dailydialog >/dev/null &&
     [ ! -e "$t/c11/dailydialog/.archives" ]; then ok "a set in nested archives"
  else no "a set in nested archives" "$out"; fi
fi

# A 404 names the file and the status.
get "$t/c5" "$url" word2vec_eval
if [ $rc = 1 ] && has "$out" "word2vec_eval/questions-words.txt" && has "$out" "HTTP 404" &&
   [ -z "$(ls "$t/c5/word2vec_eval")" ]; then ok "a 404"; else no "a 404 (rc $rc)" "$out"; fi

# A server that is down.
kill "$server"; wait "$server" 2>/dev/null; server=
get "$t/c6" "$url" dlfs2
if [ $rc = 1 ] && has "$out" "dlfs2/addition.txt" && has "$out" "127.0.0.1" &&
   [ -z "$(ls "$t/c6/dlfs2")" ]; then ok "a server that is down"; else no "server down (rc $rc)" "$out"; fi

# A cache that cannot be written: a read-only set directory (run as
# nobody when we are root, for whom permissions do not apply), and a cache
# path through a file.
mkdir -p "$t/ro/dlfs2" && chmod 555 "$t/ro/dlfs2" "$t/ro"
as=
if touch "$t/ro/dlfs2/probe" 2>/dev/null; then
  rm -f "$t/ro/dlfs2/probe"
  command -v setpriv >/dev/null && as="setpriv --reuid=65534 --regid=65534 --clear-groups" && chmod 755 "$t"
fi
if [ -n "$as" ] || ! touch "$t/ro/dlfs2/probe" 2>/dev/null; then
  out=$(USAGI_DATA=$t/ro USAGI_DATA_MIRROR=$url $as "$usagi" data get dlfs2 2>&1); rc=$?
  if [ $rc = 1 ] && has "$out" "cannot write into the cache directory $t/ro/dlfs2" &&
     [ -z "$(ls "$t/ro/dlfs2")" ]; then ok "a read-only cache"
  else no "a read-only cache (rc $rc)" "$out"; fi
else
  echo "skip a read-only cache: root without setpriv, permissions do not apply"
fi
: > "$t/afile"
get "$t/afile/cache" "$url" dlfs2
if [ $rc = 1 ] && has "$out" "cannot create the cache directory $t/afile/cache"; then ok "an unwritable cache path"
else no "an unwritable cache path (rc $rc)" "$out"; fi

# --from a folder, a .tar.gz and a .zip; a bad local copy is refused.
out=$(USAGI_DATA=$t/c7 "$usagi" data get dlfs2 --from "$shared" 2>&1)
if [ $? = 0 ] && USAGI_DATA=$t/c7 "$usagi" data verify dlfs2 >/dev/null; then ok "--from a folder"; else no "--from a folder" "$out"; fi
tar -czf "$t/dlfs2.tar.gz" -C "$shared" dlfs2
out=$(USAGI_DATA=$t/c8 "$usagi" data get dlfs2 --from "$t/dlfs2.tar.gz" 2>&1)
if [ $? = 0 ] && USAGI_DATA=$t/c8 "$usagi" data verify dlfs2 >/dev/null && [ -z "$(ls "$t/c8" | grep import)" ]; then
  ok "--from a .tar.gz"; else no "--from a .tar.gz" "$out"; fi
(cd "$shared" && zip -qr "$t/all.zip" tinyshakespeare) 2>/dev/null || (cd "$t/srv" && /usr/bin/python3 -c \
  "import shutil; shutil.make_archive('$t/all', 'zip', '.', 'tinyshakespeare')")
out=$(USAGI_DATA=$t/c8 "$usagi" data get tinyshakespeare --from "$t/all.zip" 2>&1)
if [ $? = 0 ] && USAGI_DATA=$t/c8 "$usagi" data verify tinyshakespeare >/dev/null; then ok "--from a .zip"
else no "--from a .zip" "$out"; fi
mkdir -p "$t/bad/dlfs2" && cp "$shared/dlfs2/addition.txt" "$t/bad/dlfs2/" && printf 'x' > "$t/bad/dlfs2/date.txt"
out=$(USAGI_DATA=$t/c9 "$usagi" data get dlfs2 --from "$t/bad" 2>&1)
if [ $? = 1 ] && has "$out" "dlfs2/date.txt: the copy in $t/bad is not the expected file" &&
   [ ! -e "$t/c9/dlfs2/date.txt" ] && [ -e "$t/c9/dlfs2/addition.txt" ]; then ok "--from refuses a bad copy"
else no "--from refuses a bad copy" "$out"; fi
out=$("$usagi" data get nosuchset 2>&1)
if [ $? = 1 ] && has "$out" "no data set named \"nosuchset\""; then ok "an unknown set"; else no "an unknown set" "$out"; fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
