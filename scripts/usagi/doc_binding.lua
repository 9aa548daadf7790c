-- usagi.doc_binding -- help texts of the functions written in C (the usagi
-- module of host/lua/, tensor methods, usagi.h5, usagi.image, usagi.sys):
-- C functions carry no comments Lua can read, so their docs are data here,
-- in the order of the table in scripts/usagi/README.md. A method t:f(...) without its own
-- entry shows usagi.f's (t:f(...) is usagi.f(t, ...)); t:f_ is f in place.
-- tests/lua/doc_spec.lua fails when a public C function has no entry.
local T = {}

local function add(prefix, t) for k, v in pairs(t) do T[prefix .. k] = v end end

-- ==== Creating tensors =====================================================
-- zeros, ones, full, zeros_like, ones_like, arange, linspace, eye and the
-- fills copy_, fill_ and zero_ are declared in host/ops/create.lua.
add('usagi.', {
  tensor = 'usagi.tensor(table [, {dtype = \'f32\'}]) -> a copy of a nested table of numbers;\n'
    .. 'usagi.tensor(d1, d2, ...) -> zeros of that shape (Torch7\'s torch.Tensor(2, 3)).',
  frombytes = 'usagi.frombytes(s, shape [, {offset = 0, dtype = \'f32\', scale = 1}]) -> the bytes of s\n'
    .. 'from byte offset on, each an unsigned 8-bit value times scale, as a tensor of the shape\n'
    .. '(how IDX files such as MNIST become tensors).',
  is_tensor = 'usagi.is_tensor(v) -> true when v is a usagi.Tensor.',
  op_table = 'usagi.op_table() -> the declarations of the ops made from op tables (the core\'s and\n'
    .. 'those of the loaded plugins): name, module, doc, overloads and their arguments, the gradient,\n'
    .. 'test hints (host/ops/README.md). help() and tests/lua/ops_spec.lua read them.',
  memory = 'usagi.memory() -> bytes held by usagi\'s tensors now (for leak and flat-memory checks).',
  alloc_limit = 'usagi.alloc_limit([bytes]) -> the cap on one tensor allocation (the old one when bytes is given; 0 restores the default 1 TiB). Past it creation fails with out of memory: for sandboxes and fuzzers.',
  version = 'usagi.version: the version string.',
  abi_version = 'usagi.abi_version() -> the plugin ABI number this usagi accepts.',
  load_plugin = 'usagi.load_plugin(path, name) -> the opener of C module name in the file at path,\n'
    .. 'or nil and why: checked as require checks it first (a truncated or foreign file, and for\n'
    .. 'usagi.* a plugin whose usg_plugin_abi is missing or another ABI, are refused). :reload uses it.',
  plugins = 'usagi.plugins() -> the loaded plugins as a list of {name, version, abi, face}\n'
    .. '(face: the source of the plugin\'s Lua face), sorted by name.',
})

-- ==== Random numbers =======================================================
-- rand, randn, uniform_, normal_, bernoulli, multinomial, randperm and
-- dropout are declared in host/ops/random.lua; here is the generator.
add('usagi.', {
  manual_seed = 'usagi.manual_seed(seed [, stream]) seeds the one Philox 4x32-10 generator every draw\n'
    .. 'comes from (init, dropout, shuffles, sampling): same seed, same numbers on every machine.',
  initial_seed = 'usagi.initial_seed() -> the seed last given to manual_seed (0 when none).',
  get_rng_state = 'usagi.get_rng_state() -> the generator\'s state as a table of integers.',
  set_rng_state = 'usagi.set_rng_state(s) resumes the stream exactly where get_rng_state took it.',
})

-- ==== Shapes and views =====================================================
-- transpose, t, narrow, select, unsqueeze, squeeze, contiguous, clone, view,
-- reshape, permute, expand, expand_as and the conversions to, float, double
-- and int are declared in host/ops/view.lua; cat, stack, split and chunk in
-- host/ops/nn.lua.
add('usagi.', {
  size = 't:size() -> a usagi.Size (a list of sizes); t:size(d) -> the size of dim d. #t is the same Size.',
  stride = 't:stride([d]) -> the strides in elements (of dim d).',
  dim = 't:dim() -> the number of dims.',
  numel = 't:numel() -> the number of elements (also t:nelement()).',
  dtype = 't:dtype() -> \'f32\', \'f64\' or \'i32\'.',
  is_contiguous = 't:is_contiguous() -> true when the elements are laid out row-major without gaps.',
})
add('Tensor:', {
  nelement = 't:nelement() -> the number of elements (Torch7\'s name for numel).',
})

-- ==== Conversions ==========================================================
add('usagi.', {
  totable = 't:totable() -> nested Lua tables of numbers.',
  item = 't:item() -> the value of a one-element tensor as a Lua number.',
})

-- The elementwise ops, comparisons, reductions and matrix products are
-- declared, with their docs, in the op tables of host/ops/.

-- ==== Linear algebra =======================================================
add('usagi.', {
  set_num_threads = 'usagi.set_num_threads(n) sets how many threads the ops use: products and loops are split over them, OpenBLAS running single-threaded in each.',
  get_num_threads = 'usagi.get_num_threads() -> how many threads the ops use.',
  blas_info = 'usagi.blas_info() -> {config, core, threads}: the BLAS this process uses and the threads its products are split over.',
})

-- ==== Autograd =============================================================
add('usagi.', {
  no_grad = 'usagi.no_grad(f, ...) -> f(...) with nothing recorded for autograd.',
  enable_grad = 'usagi.enable_grad(f, ...) -> f(...) with recording on (inside no_grad).',
  set_grad_enabled = 'usagi.set_grad_enabled(flag) -> the previous setting; turns recording for\n'
    .. 'autograd on or off.',
  is_grad_enabled = 'usagi.is_grad_enabled() -> whether ops are recorded for autograd now.',
  detach = 't:detach() -> a tensor sharing t\'s memory, cut from the graph (no grad).',
  Tensor = 'usagi.Tensor(d1, ...) -> zeros of that shape (Torch7\'s torch.Tensor).',
})
add('Tensor:', {
  requires_grad = 't:requires_grad(flag) -> t, marked as a leaf whose .grad backward fills;\n'
    .. 't:requires_grad() -> whether it is.',
  backward = 't:backward([grad] [, {retain_graph = false}]) accumulates d t / d leaf into every\n'
    .. 'leaf\'s .grad (reverse mode on the tape); grad defaults to 1 for a one-element t.',
  grad_fn = 't:grad_fn() -> the name of the op that made t (\'mm\', \'add\', ...), or nil for a leaf.',
  is_leaf = 't:is_leaf() -> true when t was not made by a recorded op.',
})
T['Tensor.grad'] = 't.grad -> the gradient backward accumulated (nil before); t.grad = nil clears it.'

-- ==== HDF5, images, system =================================================
add('usagi.h5.', {
  open = 'usagi.h5.open(path [, mode = \'r\']) -> a File: \'r\', \'w\' (create or truncate), \'a\'. Methods:\n'
    .. 'write(path, t), read(path), attr(path, name [, value]), attrs, append, list, shape,\n'
    .. 'dtype, exists, kind, remove, flush, close (also <close>), write_strings(path, list) and\n'
    .. 'read_strings(path) (1-D datasets of UTF-8 strings, h5py\'s list of str).',
  is_hdf5 = 'usagi.h5.is_hdf5(path) -> true when the file is HDF5 (never an error).',
  verify = 'usagi.h5.verify(path [, seconds = 60]) -> true, or nil and a message naming the file:\n'
    .. 'reads every group, dataset and attribute in a forked child, so a damaged file that\n'
    .. 'crashes or hangs libhdf5 cannot take this process ("reading it crashed libhdf5 (signal\n'
    .. '11)", "reading it did not finish in 60 s"). A file this process has open for writing is\n'
    .. 'refused (nil and a message). Bad arguments raise.',
})
add('usagi.image.', {
  canvas = 'usagi.image.canvas(width, height [, color = white]) -> a Canvas to draw on: fill, line,\n'
    .. 'polyline, rect, marker, text, get, encode_png, save_png.',
  save_png = 'usagi.image.save_png(path, t): (H, W) grey or (H, W, 3) RGB, floats in [0, 1] or i32 0..255.',
  load_png = 'usagi.image.load_png(path) -> f32 tensor in [0, 1]: (H, W) grey, (H, W, 2) grey + alpha, '
    .. '(H, W, 3) RGB or palette, (H, W, 4) RGBA; bit depths 1 to 16, no interlace.',
  text_width = 'usagi.image.text_width(str [, scale = 1]) -> its width in pixels in the built-in font.',
})
add('usagi.sys.', {
  mkdir = 'usagi.sys.mkdir(path [, exclusive]) -> true: the directory and its parents; fine if it exists. '
    .. 'With exclusive, false when path already exists (one mkdir(2) makes the last part, so two '
    .. 'processes racing for one name never both get true).',
  kind = 'usagi.sys.kind(path) -> \'file\', \'directory\', \'other\' or nil when missing.',
  listdir = 'usagi.sys.listdir(path) -> the sorted names in a directory (without . and ..).',
  replace = 'usagi.sys.replace(tmp, dst): fsync tmp, then rename it atomically to dst.',
  link = 'usagi.sys.link(src, dst): dst becomes a second name of src, replacing dst atomically.',
  remove = 'usagi.sys.remove(path): a file or an empty directory; fine if missing.',
  time = 'usagi.sys.time() -> seconds since the epoch, with fractions.',
  monotonic = 'usagi.sys.monotonic() -> seconds from an arbitrary start, for durations.',
  sleep = 'usagi.sys.sleep(seconds).',
  exe = 'usagi.sys.exe() -> the path of the running executable.',
  getpid = 'usagi.sys.getpid() -> the process id.',
  hostname = 'usagi.sys.hostname() -> the machine\'s name.',
  isatty = 'usagi.sys.isatty(fd) -> true when the file descriptor (1: stdout) is a terminal.',
  spawn = 'usagi.sys.spawn(argv [, {stdout = path, stderr = path}]) -> pid of a new process.',
  wait = 'usagi.sys.wait([pid [, \'nohang\']]) -> pid, how, code: how is \'exit\' or \'signal\';\n'
    .. 'with \'nohang\', false while the child still runs.',
  kill = 'usagi.sys.kill(pid, signal): signal a number or \'KILL\', \'TERM\', \'INT\'.',
  lock = 'usagi.sys.lock(path) -> a lock (an exclusive flock on the file or directory), or nil,\n'
    .. '\'busy\'; held until lock:unlock(), its collection or the process\'s end (even by SIGKILL).',
  read = 'usagi.sys.read(path) -> the file\'s bytes; a gzip file comes back decompressed.',
  crc32 = 'usagi.sys.crc32(path) -> the CRC-32 of the file\'s bytes (zlib\'s), as an integer.',
  trap = 'usagi.sys.trap([at_once]): SIGINT, SIGTERM and SIGHUP are remembered (see signalled) instead of '
    .. 'stopping the process; a second one while the first is pending stops the running code at once\n'
    .. '(the error "interrupted by SIGINT"). With at_once the first one does (a run\'s set-up);\n'
    .. 'trap(false) waits for the second again (a run, once its first step ended) and traps nothing itself.',
  untrap = 'usagi.sys.untrap(): the signal handlers trap() found are back.',
  signalled = 'usagi.sys.signalled() -> \'INT\', \'TERM\' or \'HUP\' when such a signal came since '
    .. 'trap(), else nil.',
})
-- usagi.fetch: built into the usagi executable for `usagi data` (host/cli/fetch_lua.c)
add('usagi.fetch.', {
  sha256 = 'usagi.fetch.sha256(path [, gunzip]) -> the SHA-256 (64 hex digits) and the number of bytes\n'
    .. 'hashed, or nil, why; with gunzip, of what the gzip file decompresses to.',
  sha256_string = 'usagi.fetch.sha256_string(s) -> the SHA-256 of a string, as 64 hex digits.',
  download = 'usagi.fetch.download(url, part [, {label, progress = \'bar\'|\'lines\'|\'none\', connect_timeout,\n'
    .. 'stall_timeout}]) -> true, or nil, why, kind (\'http\', \'network\', \'local\', \'interrupted\'), status:\n'
    .. 'appends url\'s body to the file part, resuming from its size (HTTP Range); libcurl, redirects,\n'
    .. 'proxies from the environment. usagi.data_get checks and renames what it fetched.',
})

return T
