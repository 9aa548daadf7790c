"""The Jupyter kernel (`usagi kernel -f FILE`) driven by a real client,
Debian's python3-jupyter-client: a BlockingKernelClient over a connection
file this test writes. It checks what a notebook relies on (execute, a
value's display data, streams, errors, completion, inspect, is_complete,
history, stdin, interrupt by message and by SIGINT with the variables
kept, an inline PNG, a tensor's HTML, shutdown), that an unsigned or wrongly
signed message gets no answer, that fuzzed messages (bad JSON, wrong
types, a frame over the size limit) are answered or dropped while the
kernel lives on, and that the kernel exits when its parent dies.

Usage: kernel_client.py path/to/usagi  (exits 77, a skip, without the
Python packages, and says which is missing).
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import zmq
    from jupyter_client import BlockingKernelClient
    from jupyter_client.connect import write_connection_file
    from jupyter_client.session import Session
except ImportError as e:
    print(f"skip: the kernel test needs python3-jupyter-client ({e})")
    sys.exit(77)

USAGI = os.path.abspath(sys.argv[1])
FAILS = []
TMP = tempfile.mkdtemp()
TIMEOUT = 60 if os.environ.get("USAGI_SANITIZE") == "ON" else 20


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def start(tmp, name="k.json"):
    fname, cfg = write_connection_file(
        os.path.join(tmp, name), ip="127.0.0.1", key=os.urandom(16).hex().encode())
    proc = subprocess.Popen([USAGI, "kernel", "-f", fname], stderr=subprocess.PIPE, text=True)
    kc = BlockingKernelClient(connection_file=fname)
    kc.load_connection_file()
    kc.start_channels()
    kc.wait_for_ready(timeout=TIMEOUT)
    return proc, kc, cfg


def run(kc, code, **kw):
    """execute code; the reply and every iopub message of that request"""
    msg_id = kc.execute(code, **kw)
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["parent_header"]["msg_id"] == msg_id, reply
    out = []
    while True:
        m = kc.get_iopub_msg(timeout=TIMEOUT)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        out.append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
    return reply, out


def of(out, t):
    return [m["content"] for m in out if m["msg_type"] == t]


def stream_text(out, name="stdout"):
    return "".join(c["text"] for c in of(out, "stream") if c["name"] == name)


def result_text(out):
    r = of(out, "execute_result")
    return r[0]["data"]["text/plain"] if r else None


def basics(kc):
    kc.kernel_info()
    info = kc.get_shell_msg(timeout=TIMEOUT)["content"]
    check(info["status"] == "ok" and info["language_info"]["name"] == "lua"
          and info["protocol_version"] == "5.3", "kernel_info: lua, protocol 5.3")

    reply, out = run(kc, "x = 20 + 1")
    check(reply["content"]["status"] == "ok" and not of(out, "execute_result"),
          "execute: a statement has no result")
    reply, out = run(kc, "x * 2")
    check(result_text(out) == "42" and reply["content"]["execution_count"] == 2,
          "execute: an expression shows its value (42), execution_count 2")
    _, out = run(kc, "y = x\ny * 2")
    check(result_text(out) == "42", "execute: a cell's last line, an expression, shows its value")
    _, out = run(kc, "print('hi', 1); io.write('a', 'b', '\\n'); io.stderr:write('warn\\n')")
    check(stream_text(out) == "hi\t1\nab\n" and stream_text(out, "stderr") == "warn\n",
          "execute: print and io.write stream to stdout, io.stderr to stderr")
    reply, out = run(kc, "local function f() error('boom') end\nf()")
    err = of(out, "error")
    check(reply["content"]["status"] == "error" and err and "boom" in err[0]["evalue"]
          and any("In[" in line for line in err[0]["traceback"]),
          "execute: an error has the REPL's short traceback: %r" % (err and err[0]["traceback"]))
    reply, _ = run(kc, "x = = 1")
    check(reply["content"]["status"] == "error" and reply["content"]["ename"] == "SyntaxError",
          "execute: a syntax error is an error reply")
    _, out = run(kc, "usagi.zeros(2, 3)")
    data = of(out, "execute_result")[0]["data"]
    check("<table" in data.get("text/html", "") and "f32 (2, 3)" in data["text/html"]
          and "usagi.Tensor" in data["text/plain"], "display: a tensor as an HTML table")
    _, out = run(kc, "usagi.arange(1, 1001):view(100, 10)")
    html = of(out, "execute_result")[0]["data"]["text/html"]
    check(html.count("<tr>") == 11, "display: a large tensor is summarized (11 rows)")
    _, out = run(kc, "require('usagi.plot').lines{ series = { { y = {3, 1, 2} } } }")
    png = [c["data"]["image/png"] for c in of(out, "display_data") if "image/png" in c["data"]]
    check(png and base64.b64decode(png[0])[:8] == b"\x89PNG\r\n\x1a\n",
          "display: usagi.plot shows an inline PNG")
    _, out = run(kc, "require('usagi.plot').grid{ images = usagi.rand(4, 64), height = 8, width = 8 }")
    check(any("image/png" in c["data"] for c in of(out, "display_data")) and not of(out, "execute_result"),
          "display: an image grid (plot.grid without a path) shows inline")
    svg = os.path.join(TMP, "p.svg")
    _, out = run(kc, f"require('usagi.plot').heatmap{{ values = usagi.rand(3, 4), path = {svg!r} }}")
    check(any("<svg" in c["data"].get("image/svg+xml", "") for c in of(out, "display_data")),
          "display: a heatmap written as SVG shows inline as SVG")
    _, out = run(kc, "display(usagi.image.canvas(8, 8))")
    check(any("image/png" in c["data"] for c in of(out, "display_data")),
          "display: display(canvas) shows a PNG")

    # a run: its progress bar updates one display in place, its metrics show as a table
    _, out = run(kc, "local E = require 'usagi.experiment'\n"
                 "return (E.run_experiment(usagi.experiment { name = 'nb', config = { n = 40 },\n"
                 "  run = function(run, cfg) for i in run:progress(cfg.n) do\n"
                 "    usagi.sys.sleep(0.01); run:log { loss = 1 / i } end end }, { quiet = false }))")
    shown = [m for m in out if m["msg_type"] == "display_data" and m["content"].get("transient")]
    ids = {m["content"]["transient"]["display_id"] for m in shown}
    updates = [m for m in out if m["msg_type"] == "update_display_data"
               and m["content"]["transient"]["display_id"] in ids]
    check(len(shown) == 1 and len(updates) >= 2 and "40/40" in updates[-1]["content"]["data"]["text/plain"]
          and "\r" not in stream_text(out, "stderr"),
          f"progress: one display updated in place ({len(updates)} updates)")
    res = of(out, "execute_result")
    check(res and "loss" in res[0]["data"].get("text/html", ""), "display: a run's metrics as a table")


def requests(kc):
    kc.complete("usagi.zer", 9)
    c = kc.get_shell_msg(timeout=TIMEOUT)["content"]
    check("usagi.zeros" in c["matches"] and c["cursor_start"] == 0 and c["cursor_end"] == 9,
          "complete: usagi.zer -> usagi.zeros")
    run(kc, "t = usagi.zeros(2)")
    kc.complete("y = t:ad", 8)
    c = kc.get_shell_msg(timeout=TIMEOUT)["content"]
    check("t:add" in c["matches"] and c["cursor_start"] == 4,
          "complete: t:ad -> t:add (methods through the metatable)")
    kc.inspect("usagi.zeros", 11)
    c = kc.get_shell_msg(timeout=TIMEOUT)["content"]
    check(c["found"] and "zeros" in c["data"]["text/plain"], "inspect: help(usagi.zeros)")
    kc.inspect("nosuchname", 3)
    c = kc.get_shell_msg(timeout=TIMEOUT)["content"]
    check(c["status"] == "ok" and not c["found"], "inspect: an unknown name is not found")
    for code, want in [("for i = 1, 3 do", "incomplete"), ("x = 1", "complete"),
                       ("x = = 1", "invalid"), ("1 +", "incomplete")]:
        kc.is_complete(code)
        c = kc.get_shell_msg(timeout=TIMEOUT)["content"]
        check(c["status"] == want, f"is_complete: {code!r} is {want}")
    kc.history(hist_access_type="tail", n=2)
    c = kc.get_shell_msg(timeout=TIMEOUT)["content"]
    check(c["status"] == "ok" and len(c["history"]) == 2, "history: the last two cells")
    # stdin: io.read asks the client
    msg_id = kc.execute("name = io.read()", allow_stdin=True)
    req = kc.get_stdin_msg(timeout=TIMEOUT)
    check(req["msg_type"] == "input_request", "stdin: io.read sends input_request")
    kc.input("usagi")
    kc.get_shell_msg(timeout=TIMEOUT)
    _, out = run(kc, "name")
    check(result_text(out) == "usagi", "stdin: io.read returns what was typed")
    reply, _ = run(kc, "io.read()", allow_stdin=False)
    check(reply["content"]["status"] == "error", "stdin: io.read without allow_stdin is an error")


def interrupts(kc, proc):
    for how in ("message", "signal"):
        msg_id = kc.execute("n = 0; while true do n = n + 1 end")
        time.sleep(0.5)
        if how == "message":
            hb = zmq.Context.instance().socket(zmq.REQ)
            hb.linger = 0
            hb.connect(f"tcp://127.0.0.1:{kc.hb_port}")
            hb.send(b"ping")
            check(hb.poll(5000) and hb.recv() == b"ping", "heartbeat: answered while a cell runs")
            hb.close()
            kc.control_channel.send(kc.session.msg("interrupt_request", {}))
            c = kc.get_control_msg(timeout=TIMEOUT)
            check(c["msg_type"] == "interrupt_reply", "interrupt: interrupt_reply on control")
        else:
            proc.send_signal(signal.SIGINT)
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        check(reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "error"
              and reply["content"]["ename"] == "interrupted", f"interrupt ({how}): the loop stops")
        _, out = run(kc, "n > 0")
        check(result_text(out) == "true", f"interrupt ({how}): the loop's variable is kept")


def raw_socket(cfg):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect(f"tcp://127.0.0.1:{cfg['shell_port']}")
    return s


def answered(s, wait=1.0):
    return s.poll(int(wait * 1000)) != 0


def hostile(kc, cfg):
    key = cfg["key"].encode() if isinstance(cfg["key"], str) else cfg["key"]
    good = Session(key=key)
    s = raw_socket(cfg)
    msg = good.msg("kernel_info_request", {})
    # a wrong signature, and none at all
    for sig_key in (b"not the key", b""):
        bad = Session(key=sig_key)
        bad.send(s, msg)
        check(not answered(s), f"signature: a message signed with {sig_key!r} is refused")
    good.send(s, msg)
    check(answered(s, TIMEOUT), "signature: the right key is answered")
    s.recv_multipart()

    def signed(parts):
        return [b"<IDS|MSG>", good.sign(parts).encode() if isinstance(good.sign(parts), str)
                else good.sign(parts)] + parts

    h = json.dumps(good.msg_header("execute_request"), default=str).encode()
    fuzz = [
        ("no delimiter", [b"hello"]),
        ("too few frames", [b"<IDS|MSG>", b"x"]),
        ("bad JSON", signed([h, b"{}", b"{}", b"{\"code\": "])),
        ("a header that is an array", signed([b"[1,2]", b"{}", b"{}", b"{}"])),
        ("invalid UTF-8", signed([h, b"{}", b"{}", b"{\"code\": \"\xff\"}"])),
        ("deep nesting", signed([h, b"{}", b"{}", b"[" * 100000])),
    ]
    for what, frames in fuzz:
        s.send_multipart(frames)
        check(not answered(s, 0.3), f"fuzz: {what} is dropped")
    s.send_multipart(signed([h, b"{}", b"{}", b"{\"code\": 5}"]))
    ok = answered(s, TIMEOUT)
    rep = s.recv_multipart() if ok else []
    check(ok and b"TypeError" in rep[-1], "fuzz: code that is a number gets an error reply")
    big = json.dumps({"code": "return 7" + " " * (4 << 20)}).encode()
    s.send_multipart(signed([h, b"{}", b"{}", big]))
    ok = answered(s, TIMEOUT)
    check(ok and b'"ok"' in s.recv_multipart()[-1], "fuzz: a 4 MiB cell is run")
    s.send_multipart(signed([h, b"{}", b"{}", b" " * (17 << 20)]))
    check(not answered(s, 1.0), "fuzz: a 17 MiB frame (over the limit) is dropped")
    s.close()
    _, out = run(kc, "x")
    check(result_text(out) == "21", "fuzz: the kernel lives on, its globals intact")


def parent_dies(tmp, busy):
    fname, cfg = write_connection_file(os.path.join(tmp, f"p{busy}.json"), ip="127.0.0.1", key=b"k")
    # a parent that starts the kernel, says its pid and waits
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys, time\n"
         f"p = subprocess.Popen([{USAGI!r}, 'kernel', '-f', {fname!r}])\n"
         "print(p.pid, flush=True)\ntime.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True)
    kid = int(parent.stdout.readline())
    if busy:                               # the kernel is in an endless loop when the parent dies
        kc = BlockingKernelClient(connection_file=fname)
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=TIMEOUT)
        kc.execute("while true do end")
        time.sleep(0.5)
        kc.stop_channels()
    else:
        time.sleep(0.5)
    parent.kill()
    parent.wait()
    gone = False
    for _ in range(int(TIMEOUT * 10)):
        try:
            os.kill(kid, 0)
            with open(f"/proc/{kid}/stat") as f:
                if f.read().split(")")[1].split()[0] == "Z":
                    gone = True
                    break
        except (ProcessLookupError, FileNotFoundError):
            gone = True
            break
        time.sleep(0.1)
    check(gone, "the kernel exits when its parent dies" + (" (in a running cell)" if busy else ""))
    if not gone:
        os.kill(kid, signal.SIGKILL)


def install():
    p = subprocess.run([USAGI, "kernel", "install", "--prefix", TMP], capture_output=True, text=True)
    spec_path = os.path.join(TMP, "share/jupyter/kernels/usagi/kernel.json")
    spec = json.load(open(spec_path)) if os.path.exists(spec_path) else {}
    check(p.returncode == 0 and spec.get("argv", [None])[0] == os.path.realpath(USAGI)
          and spec["argv"][1:] == ["kernel", "-f", "{connection_file}"]
          and spec["display_name"] == "usagi (Lua)" and spec["language"] == "lua",
          "install: kernel.json with the absolute path of usagi")
    p = subprocess.run([USAGI, "kernel", "install", "--bogus"], capture_output=True, text=True)
    check(p.returncode == 1 and "unknown option --bogus" in p.stderr, "install: a bad option is named")


def restart():
    """the kernelspec install() wrote, started and restarted by a KernelManager"""
    from jupyter_client.manager import start_new_kernel
    os.environ["JUPYTER_PATH"] = os.path.join(TMP, "share/jupyter")
    km, kc = start_new_kernel(kernel_name="usagi", startup_timeout=TIMEOUT)
    try:
        run(kc, "x = 5")
        pid = km.provisioner.process.pid
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=TIMEOUT)
        _, out = run(kc, "x")
        check(km.provisioner.process.pid != pid and result_text(out) == "nil",
              "restart: a new process, with fresh globals")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    check(not km.is_alive(), "restart: the kernelspec's kernel shuts down when asked")


def main():
    t0 = time.time()
    install()
    restart()
    with tempfile.TemporaryDirectory() as tmp:
        proc, kc, cfg = start(tmp)
        try:
            basics(kc)
            requests(kc)
            interrupts(kc, proc)
            hostile(kc, cfg)
            kc.shutdown()
            rep = kc.get_control_msg(timeout=TIMEOUT)
            check(rep["msg_type"] == "shutdown_reply", "shutdown: shutdown_reply")
            try:
                code = proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                code = None
            check(code == 0, f"shutdown: the kernel exits with 0 (got {code})")
        finally:
            kc.stop_channels()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err = proc.stderr.read()
            if err:
                print("kernel's stderr:\n" + err)
            check("runtime error" not in err and "AddressSanitizer" not in err,
                  "the kernel's stderr has no sanitizer report")
            check(" failed: " not in err and "traceback" not in err,
                  "no request handler failed inside the kernel")
        parent_dies(tmp, False)
        parent_dies(tmp, True)
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"{len(FAILS)} failed, {time.time() - t0:.1f} s")
    sys.exit(1 if FAILS else 0)


main()
