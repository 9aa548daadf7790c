-- usagi.kernel -- `usagi kernel`: usagi as a Jupyter kernel (messaging
-- protocol 5.3). `usagi kernel -f CONNECTION_FILE` serves the five
-- sockets the file names; `usagi kernel install` writes the kernelspec
-- that makes Jupyter start it. Cells run as the REPL's lines do (the same
-- printing, completion, help and short tracebacks, scripts/usagi/repl.lua);
-- print, io.write and io.stderr stream to the notebook, io.read asks the
-- notebook through the stdin socket, and pictures show inline
-- (kernel_display.lua). The bytes move in C (host/cli/kernel_io.c:
-- ZeroMQ, HMAC-SHA256, the interrupt watch); JSON is kernel_json.lua's.
local usagi = require 'usagi'
local kio = require 'usagi.kernel_io'
local J = require 'usagi.kernel_json'
local R = require 'usagi.repl'
local D = require 'usagi.kernel_display'

local K = {}

local DELIM = '<IDS|MSG>'
local PROTOCOL = '5.3'

-- The kernel's own complaints go to the real stderr (Jupyter's log), never
-- into a cell's output.
local real_stderr = io.stderr
local function log(fmt, ...)
  real_stderr:write('usagi kernel: ', fmt:format(...), '\n')
  real_stderr:flush()
end

-- ==== The connection file ====================================================

local function read_file(path)
  local f, err = io.open(path, 'rb')
  if not f then return nil, err end
  local s = f:read('a')
  f:close()
  return s
end

local PORTS = { 'shell_port', 'iopub_port', 'stdin_port', 'control_port', 'hb_port' }

-- The connection file, checked: transport, ip, the five ports, the key
-- and its scheme. Returns the table or nil and what is wrong.
function K.read_connection(path)
  local text, err = read_file(path)
  if not text then return nil, ('cannot read the connection file: %s'):format(err) end
  local c, jerr = J.decode(text)
  if not c then return nil, ('connection file %s: %s'):format(path, jerr) end
  if type(c) ~= 'table' or getmetatable(c) == getmetatable(J.array()) then
    return nil, ('connection file %s: a JSON object expected'):format(path)
  end
  c.transport = c.transport or 'tcp'
  if c.transport ~= 'tcp' and c.transport ~= 'ipc' then
    return nil, ("connection file: transport must be 'tcp' or 'ipc', got %s"):format(tostring(c.transport))
  end
  if type(c.ip) ~= 'string' then return nil, 'connection file: ip must be a string, got ' .. type(c.ip) end
  for _, k in ipairs(PORTS) do
    if math.type(c[k]) ~= 'integer' or c[k] < 0 or c[k] > 65535 then
      return nil, ('connection file: %s must be a port number, got %s'):format(k, tostring(c[k]))
    end
  end
  c.key = c.key or ''
  if type(c.key) ~= 'string' then return nil, 'connection file: key must be a string, got ' .. type(c.key) end
  c.signature_scheme = c.signature_scheme or 'hmac-sha256'
  if c.key ~= '' and c.signature_scheme ~= 'hmac-sha256' then
    return nil, ("connection file: signature_scheme must be 'hmac-sha256', got %s"):format(tostring(c.signature_scheme))
  end
  return c
end

local function endpoint(c, port)
  if c.transport == 'ipc' then return ('ipc://%s-%d'):format(c.ip, port) end
  return ('tcp://%s:%d'):format(c.ip, port)
end

-- ==== Messages ===============================================================

local S = {}                 -- the session: sockets, key, counters, the current parent

local function random_hex(n)
  local f = io.open('/dev/urandom', 'rb')
  local bytes = f and f:read(n) or tostring(os.time()) .. tostring({})
  if f then f:close() end
  return (bytes:gsub('.', function(c) return ('%02x'):format(c:byte()) end)):sub(1, 2 * n)
end

local function now_iso()
  local t = usagi.sys.time()
  return os.date('!%Y-%m-%dT%H:%M:%S', math.floor(t)) .. ('.%06dZ'):format(math.floor((t % 1) * 1e6))
end

-- A message as its frames: identities, the delimiter, the signature, then
-- header, parent header, metadata and content as JSON.
local function frames_of(msg_type, content, parent, ids, metadata)
  S.count_msgs = S.count_msgs + 1
  local header = J.encode {
    msg_id = ('%s_%d'):format(S.session, S.count_msgs), session = S.session, username = 'usagi',
    date = now_iso(), msg_type = msg_type, version = PROTOCOL,
  }
  local ph = J.encode(parent and parent.header or J.object())
  local md = J.encode(metadata or J.object())
  local ct = J.encode(content)
  local sig = S.key ~= '' and kio.hmac(S.key, header, ph, md, ct) or ''
  local out = {}
  for _, id in ipairs(ids or {}) do out[#out + 1] = id end
  out[#out + 1] = DELIM
  for _, f in ipairs { sig, header, ph, md, ct } do out[#out + 1] = f end
  return out
end

local function send(sock, msg_type, content, parent, ids, metadata)
  local ok, err = sock:send(frames_of(msg_type, content, parent, ids, metadata))
  if not ok then log('sending %s failed: %s', msg_type, err) end
end

-- A reply on the socket the request came on, to its sender.
local function reply(msg, msg_type, content)
  send(msg.socket, msg_type, content, msg, msg.ids)
end

-- On iopub, about the request being handled.
local function publish(msg_type, content, parent)
  send(S.iopub, msg_type, content, parent or S.parent, { 'kernel.' .. msg_type })
end

local function is_object(v)
  return type(v) == 'table' and v ~= J.null and getmetatable(v) ~= getmetatable(J.array())
end

-- The frames of a request, checked and decoded: nil and why when the
-- message is malformed or its signature is wrong (it is then dropped).
function K.parse(frames, key)
  local d
  for i, f in ipairs(frames) do if f == DELIM then d = i; break end end
  if not d then return nil, 'no <IDS|MSG> delimiter' end
  if #frames < d + 5 then return nil, 'fewer than the five frames after the delimiter' end
  local ids = table.move(frames, 1, d - 1, 1, {})
  local sig, h, p, m, c = table.unpack(frames, d + 1, d + 5)
  if key ~= '' and not kio.equal(sig, kio.hmac(key, h, p, m, c)) then
    return nil, 'bad signature'
  end
  local msg = { ids = ids, buffers = table.move(frames, d + 6, #frames, 1, {}) }
  for name, text in pairs { header = h, parent_header = p, metadata = m, content = c } do
    local v, err = J.decode(text)
    if not v then return nil, name .. ': ' .. err end
    if not is_object(v) then return nil, name .. ' must be a JSON object' end
    msg[name] = v
  end
  if type(msg.header.msg_type) ~= 'string' then return nil, 'header.msg_type must be a string' end
  return msg
end

-- ==== Output streams =========================================================

-- print, io.write, io.stdout and io.stderr write into buffers that go to
-- the notebook as stream messages: when a buffer passes 4 KiB, when 0.1 s
-- passed since the last one went, and when the cell ends.
local buffers = { stdout = {}, stderr = {} }
local sizes = { stdout = 0, stderr = 0 }
local last_flush = 0

local function flush(name)
  for _, n in ipairs(name and { name } or { 'stdout', 'stderr' }) do
    if sizes[n] > 0 then
      local text = table.concat(buffers[n])
      buffers[n], sizes[n] = {}, 0
      if S.parent then publish('stream', { name = n, text = text }) end
    end
  end
  last_flush = usagi.sys.monotonic()
end

local function write(name, s)
  local b = buffers[name]
  b[#b + 1] = s
  sizes[name] = sizes[name] + #s
  if sizes[name] > 4096 or usagi.sys.monotonic() - last_flush > 0.1 then flush() end
end

-- A progress bar (usagi.run_progress on a "terminal": each redraw is one
-- write that starts with '\r\27[K') becomes one display updated in place
-- (update_display_data); a redraw that ends in '\n' is its last.
local bar = { id = nil, n = 0 }
local function progress(text)
  local final = text:sub(-1) == '\n'
  text = text:gsub('\n$', '')
  if text == '' then return end
  flush()
  local content = { data = { ['text/plain'] = text }, metadata = J.object() }
  if bar.id then
    content.transient = { display_id = bar.id }
    publish('update_display_data', content)
  else
    bar.n = bar.n + 1
    bar.id = ('%s_progress_%d'):format(S.session, bar.n)
    content.transient = { display_id = bar.id }
    publish('display_data', content)
  end
  if final then bar.id = nil end
end

-- A stand-in for io.stdout / io.stderr: write, flush, setvbuf, close, lines.
local function stream(name)
  local h = {}
  function h:write(...)
    if name == 'stderr' and select(1, ...) == '\r\27[K' then
      local parts = table.pack(...)
      for i = 1, parts.n do parts[i] = tostring(parts[i]) end
      progress(table.concat(parts, '', 2, parts.n))
      return self
    end
    for i = 1, select('#', ...) do
      local v = select(i, ...)
      if type(v) ~= 'string' and type(v) ~= 'number' then
        error(("bad argument #%d to 'write' (string expected, got %s)"):format(i, type(v)), 2)
      end
      write(name, tostring(v))
    end
    return self
  end
  function h:flush() flush(name); return self end
  function h:setvbuf() return true end
  function h:close() return true end
  function h:seek() return nil, 'cannot seek a notebook stream' end
  return setmetatable(h, { __name = 'usagi.kernel.Stream', __tostring = function() return 'file (notebook ' .. name .. ')' end })
end

-- io.read through the stdin socket: the notebook shows a prompt and sends
-- what the user typed; formats 'l', 'L', 'n' and 'a' read from that line.
local function input(prompt)
  flush()
  if not (S.parent and S.parent.content.allow_stdin == true) then
    error('io.read: this notebook does not take input (allow_stdin is false)', 3)
  end
  send(S.stdin, 'input_request', { prompt = prompt or '', password = false }, S.parent, S.parent.ids)
  while true do
    local ready = kio.poll({ S.stdin, S.control }, 500)
    for _, i in ipairs(ready) do
      if i == 2 then
        if S.on_control() then error('interrupted', 3) end
      else
        local msg = K.parse(S.stdin:recv() or {}, S.key)
        if msg and msg.header.msg_type == 'input_reply' then
          local v = msg.content.value
          return type(v) == 'string' and v or ''
        end
      end
    end
    if kio.sigint() then error('interrupted', 3) end
  end
end

local function io_read(...)
  local fmt = select('#', ...) == 0 and 'l' or ...
  local line = input('')
  if type(fmt) == 'string' then fmt = fmt:gsub('^%*', '') end
  if fmt == 'n' then return tonumber(line) end
  if fmt == 'L' then return line .. '\n' end
  return line
end

-- ==== Handlers ===============================================================

local H = {}                 -- msg_type -> function(msg)

local function language_info()
  return {
    name = 'lua', version = _VERSION:match('%d+%.%d+') or '5.4', mimetype = 'text/x-lua',
    file_extension = '.lua', pygments_lexer = 'lua', codemirror_mode = 'lua',
  }
end

function H.kernel_info_request(msg)
  reply(msg, 'kernel_info_reply', {
    status = 'ok', protocol_version = PROTOCOL, implementation = 'usagi',
    implementation_version = usagi.version or '0', language_info = language_info(),
    banner = ('usagi %s (%s): tensors, nn and runs in Lua. help() explains.'):format(
      usagi.version or '', _VERSION),
    help_links = J.array(),
  })
end

function H.comm_info_request(msg)
  reply(msg, 'comm_info_reply', { status = 'ok', comms = J.object() })
end

-- A cell as a function: `return <code>` first, so that an expression
-- shows its value, as the REPL does; a line starting with ':' is one of
-- the REPL's commands.
local function compile(code, name)
  if code:match('^%s*:%a') then
    return function() return R.command(code) end
  end
  local f = load('return ' .. code .. ';', '=' .. name)
  if f then return f end
  -- a cell whose last line is an expression shows its value, as a
  -- notebook user expects: 'x = f()\nx' runs as 'x = f()\nreturn x'
  local head, last = code:match('^(.*\n)%s*([^\n]-)%s*$')
  if head and last ~= '' then
    local h = load(head .. 'return ' .. last .. ';', '=' .. name)
    if h then return h end
  end
  return load(code, '=' .. name)
end

local function error_content(ename, text)
  local lines = {}
  for l in (text .. '\n'):gmatch('([^\n]*)\n') do lines[#lines + 1] = l end
  return { ename = ename, evalue = lines[1] or '', traceback = lines }
end

local function execute_error(msg, ename, text)
  local c = error_content(ename, text)
  publish('error', c)
  c.status, c.execution_count = 'error', S.count
  reply(msg, 'execute_reply', c)
end

function H.execute_request(msg)
  local c = msg.content
  if type(c.code) ~= 'string' then
    S.parent = msg
    return execute_error(msg, 'TypeError', 'execute_request: content.code must be a string, got ' .. type(c.code))
  end
  local silent = c.silent == true
  local store = c.store_history ~= false and not silent
  if store then
    S.count = S.count + 1
    S.history[#S.history + 1] = c.code
  end
  publish('execute_input', { code = c.code, execution_count = S.count })
  local f, err = compile(c.code, ('In[%d]'):format(S.count))
  if not f then return execute_error(msg, 'SyntaxError', err) end
  kio.sigint()                                  -- one that came between cells is dropped
  last_flush = usagi.sys.monotonic()            -- a short cell's output goes as one message
  local res = table.pack(kio.run(S.control, S.on_control, f, R.msghandler))
  flush()
  if S.shutdown then return end
  if not res[1] then
    local text = tostring(res[2])
    local ename = text:match('^[^\n]*'):match('interrupted$') and 'interrupted' or 'error'
    return execute_error(msg, ename, text)
  end
  if res.n > 1 and not silent and not (res.n == 2 and res[2] == nil and c.code:match('^%s*:')) then
    local ok, data, meta = pcall(D.bundle_of_values, res.n - 1, table.unpack(res, 2, res.n))
    if not ok then data, meta = { ['text/plain'] = '(the value could not be shown: ' .. tostring(data) .. ')' }, {} end
    publish('execute_result', { execution_count = S.count, data = data, metadata = meta })
  end
  reply(msg, 'execute_reply', {
    status = 'ok', execution_count = S.count, user_expressions = J.object(), payload = J.array(),
  })
end

-- cursor_pos counts Unicode code points; Lua counts bytes.
local function byte_at(code, pos)
  if math.type(pos) ~= 'integer' or pos < 0 then return #code end
  return (utf8.offset(code, pos + 1) or #code + 1) - 1
end

local function chars(code, bytes)
  return utf8.len(code, 1, bytes) or bytes
end

function H.complete_request(msg)
  local code = msg.content.code
  if type(code) ~= 'string' then
    return reply(msg, 'complete_reply', { status = 'error', ename = 'TypeError',
      evalue = 'complete_request: content.code must be a string', traceback = J.array() })
  end
  local cur = byte_at(code, msg.content.cursor_pos)
  local left = code:sub(1, cur):match('[^\n]*$')
  local line_start = cur - #left
  local ok, start, names = pcall(R.complete, left)
  if not ok then start, names = cur + 1, {} end
  reply(msg, 'complete_reply', {
    status = 'ok', matches = J.array(names), cursor_start = chars(code, line_start + start - 1),
    cursor_end = chars(code, cur), metadata = J.object(),
  })
end

-- The value named around the cursor ('nn.Linear', 'x:mm', 'usagi.zeros'),
-- or nil.
local function name_at(code, cur)
  local left = code:sub(1, cur):match('[%a_][%w_%.:]*$') or ''
  local right = code:sub(cur + 1):match('^[%w_]*') or ''
  local name = (left .. right):gsub('^[.:]+', '')
  if name == '' then return nil end
  return name
end

-- help(x), as text: what usagi.help prints.
local function help_text(v)
  local out, print0 = {}, print
  print = function(...)
    local t = {}
    for i = 1, select('#', ...) do t[i] = tostring((select(i, ...))) end
    out[#out + 1] = table.concat(t, '\t')
  end
  local ok, err = pcall(usagi.help, v)
  print = print0
  if not ok then return nil, err end
  return table.concat(out, '\n')
end

function H.inspect_request(msg)
  local code = msg.content.code
  if type(code) ~= 'string' then
    return reply(msg, 'inspect_reply', { status = 'error', ename = 'TypeError',
      evalue = 'inspect_request: content.code must be a string', traceback = J.array() })
  end
  local name = name_at(code, byte_at(code, msg.content.cursor_pos))
  local v = name and R.resolve(name)
  local text = v ~= nil and help_text(v)
  if text and text:match('^help: no doc') and type(v) ~= 'function' then
    text = R.format(v)                 -- a plain value: show it as the prompt would
  end
  if not text or text == '' then
    return reply(msg, 'inspect_reply', { status = 'ok', found = false, data = J.object(), metadata = J.object() })
  end
  reply(msg, 'inspect_reply', { status = 'ok', found = true,
    data = { ['text/plain'] = name .. '\n' .. text }, metadata = J.object() })
end

function H.is_complete_request(msg)
  local code = msg.content.code
  if type(code) ~= 'string' then return reply(msg, 'is_complete_reply', { status = 'unknown' }) end
  if code:match('^%s*:') or load('return ' .. code .. ';', '=cell') then
    return reply(msg, 'is_complete_reply', { status = 'complete' })
  end
  local f, err = load(code, '=cell')
  if f then return reply(msg, 'is_complete_reply', { status = 'complete' }) end
  local _, rerr = load('return ' .. code, '=cell')       -- '1 +' waits for its operand
  if err:match('<eof>$') or rerr:match('<eof>$') then return reply(msg, 'is_complete_reply', { status = 'incomplete', indent = '  ' }) end
  reply(msg, 'is_complete_reply', { status = 'invalid' })
end

function H.history_request(msg)
  local c, out = msg.content, {}
  local n = math.type(c.n) == 'integer' and c.n or #S.history
  local from = c.hist_access_type == 'tail' and math.max(1, #S.history - n + 1) or 1
  for i = from, #S.history do
    local entry = c.output == true and J.array { S.history[i], J.null } or S.history[i]
    out[#out + 1] = J.array { 0, i, entry }
  end
  reply(msg, 'history_reply', { status = 'ok', history = J.array(out) })
end

function H.interrupt_request(msg)
  reply(msg, 'interrupt_reply', { status = 'ok' })
end

function H.shutdown_request(msg)
  local restart = msg.content.restart == true
  reply(msg, 'shutdown_reply', { status = 'ok', restart = restart })
  publish('shutdown_reply', { status = 'ok', restart = restart }, msg)
  S.shutdown = true
end

-- Requests this kernel does not know get no reply; comm messages (widgets)
-- are taken and ignored.
for _, t in ipairs { 'comm_open', 'comm_msg', 'comm_close' } do H[t] = function() end end

-- One request: busy, the handler, idle, as the protocol asks; a handler
-- that fails answers with an error in its log, never ends the kernel.
local DEBUG = (os.getenv('USAGI_KERNEL_DEBUG') or '') ~= ''   -- log each request to stderr

local function handle(msg)
  if DEBUG then log('%s %s', msg.header.msg_type, J.encode(msg.content)) end
  local h = H[msg.header.msg_type]
  if not h then
    log('ignoring a %s message', msg.header.msg_type)
    return
  end
  local prev = S.parent
  S.parent = msg
  publish('status', { execution_state = 'busy' }, msg)
  local ok, err = xpcall(h, debug.traceback, msg)
  if not ok then log('%s failed: %s', msg.header.msg_type, tostring(err)) end
  flush()
  publish('status', { execution_state = 'idle' }, msg)
  S.parent = prev
end

local function receive(sock)
  local frames, err = sock:recv()
  if not frames then return nil end
  local msg, why = K.parse(frames, S.key)
  if not msg then
    log('dropped a message on the %s socket: %s', sock == S.control and 'control' or 'shell', why)
    return nil
  end
  msg.socket = sock
  return msg
end

-- A message on the control socket while a cell runs, or the parent's
-- death: true when the cell must stop (interrupt_request,
-- shutdown_request, no parent any more).
local function on_control()
  if kio.getppid() ~= S.parent_pid then
    log('the parent process is gone; exiting')
    S.shutdown = true
    return true
  end
  local msg = receive(S.control)
  if not msg then return false end
  local t = msg.header.msg_type
  local running = S.parent
  if t == 'interrupt_request' or t == 'shutdown_request' or t == 'kernel_info_request' then
    H[t](msg)
    S.parent = running
    return t ~= 'kernel_info_request'
  end
  log('ignoring a %s message on control while a cell runs', t)
  return false
end

-- ==== The loop ===============================================================

-- K.serve(connection) serves until a shutdown_request, or until the parent
-- process (the notebook server) is gone.
function K.serve(c)
  S.key, S.count, S.count_msgs, S.history = c.key, 0, 0, {}
  S.session = random_hex(16)
  S.on_control = on_control
  local ctx = kio.context()
  S.ctx = ctx
  S.shell = ctx:socket('router', endpoint(c, c.shell_port))
  S.control = ctx:socket('router', endpoint(c, c.control_port))
  S.stdin = ctx:socket('router', endpoint(c, c.stdin_port))
  S.iopub = ctx:socket('pub', endpoint(c, c.iopub_port))
  ctx:heartbeat(endpoint(c, c.hb_port))
  kio.catch_sigint()

  -- the session's globals: help as at the prompt, display(x), streams
  R.start()
  rawset(_G, 'display', function(...)
    for i = 1, select('#', ...) do
      local data, meta = D.bundle((select(i, ...)))
      publish('display_data', { data = data, metadata = meta, transient = J.object() })
    end
  end)
  io.stdout, io.stderr = stream('stdout'), stream('stderr')
  io.write = function(...) io.stdout:write(...); return io.stdout end
  print = function(...)
    local n, t = select('#', ...), {}
    for i = 1, n do t[i] = tostring((select(i, ...))) end
    write('stdout', table.concat(t, '\t') .. '\n')
  end
  io.read = io_read
  D.hook_plot(function(data, meta)
    flush()
    publish('display_data', { data = data, metadata = meta, transient = J.object() })
  end)
  -- progress bars update in place, as on a terminal
  require('usagi.run_progress').interactive = function() return true end
  -- runs made here say so in their provenance (its command line), unless
  -- the cell gives its own argv
  local experiment = require 'usagi.experiment'
  local run_experiment = experiment.run_experiment
  experiment.run_experiment = function(spec, opts)
    opts = opts or {}
    if opts.argv == nil then
      local copy = {}
      for k, v in pairs(opts) do copy[k] = v end
      copy.argv, opts = { 'usagi', 'kernel', '(notebook)' }, copy
    end
    return run_experiment(spec, opts)
  end
  -- a cell is not the script usagi was started with: usagi.experiment{...}
  -- in a cell returns the spec rather than running it under `usagi run`
  arg = nil

  publish('status', { execution_state = 'starting' }, { header = J.object() })
  S.parent_pid = kio.getppid()
  local socks = { S.control, S.shell }
  while not S.shutdown do
    for _, i in ipairs(kio.poll(socks, 500)) do
      local msg = receive(socks[i])
      if msg then handle(msg) end
      if S.shutdown then break end
    end
    kio.sigint()                       -- no cell runs: nothing to interrupt
    if not S.shutdown and kio.getppid() ~= S.parent_pid then
      log('the parent process is gone; exiting')
      break
    end
  end
  for _, s in ipairs { S.shell, S.control, S.stdin, S.iopub } do s:close() end
  ctx:close()
  return 0
end

local install = require 'usagi.kernel_install'
K.help = install.help

-- `usagi kernel ...` (usagi.cli's dispatch).
function K.main(args)
  if args[1] == 'install' then
    local exe = usagi.sys.exe()         -- absolute, so Jupyter finds it from anywhere
    return install.install(table.move(args, 2, #args, 1, {}), exe)
  end
  if args[1] ~= '-f' or not args[2] then
    io.stderr:write(install.help, '\n')
    return 2
  end
  local c, err = K.read_connection(args[2])
  if not c then error(err, 0) end
  local out, errs = io.stdout, io.stderr
  local ok, code = pcall(K.serve, c)
  io.stdout, io.stderr = out, errs         -- so that usagi.cli can say what went wrong
  if not ok then error(code, 0) end
  return code
end

return K
