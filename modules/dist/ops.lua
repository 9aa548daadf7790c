-- modules/dist/ops.lua -- the op table of usagi.dist (host/ops/README.md):
-- the collectives that are tensor ops, broadcast and allreduce, which write
-- into their tensor in place and return it. The plugin has userdata and
-- state of its own (the reducer, MPI), so its opener is written by hand
-- (dist_lua.c, which says what stays hand-written and why) and calls
-- usg_dist_ops_open, generated from this table. In a process that no MPI
-- launcher started, dist is rank 0 of 1 and both are the identity, which is
-- what tests/lua/ops_spec.lua checks; tests/mpi/ runs them over two ranks.
return {
  name = 'dist',
  plugin = { version = '0.1.0', opener = false },
  includes = { 'usagi/lua.h', 'usagi/dist.h' },
  kinds = {
    -- 'sum' or 'mean', the reduction of an allreduce
    reduction = { sig = 's?', decl = 'usg_dist_op %n',
      check = '(usg_dist_op)luaL_checkoption(L, %i, "sum", (const char *const[]){"sum", "mean", NULL})',
      test = { bad = 'max' } },
  },
  ops = {
    {
      name = 'broadcast',
      doc = 'dist.broadcast(t [, root = 0]) -> t, overwritten in place with rank root\'s values (a\n'
        .. 'contiguous f32, f64 or i32 tensor of the same shape on every rank).',
      forms = { 'usagi' },
      args = { { 'tensor', 't' }, { 'integer', 'root', default = '0' } },
      pre = 'luaL_argcheck(L, root >= 0 && root < usg_dist_size(), 2, "root must be a rank 0..size-1");',
      call = 'usg_dist_broadcast(t, (int)root)',
      returns = 'first',
      grad = 'a collective over the ranks, not recorded',
      dtypes = 'any',
      test = { numbers = { 0 } },
    },
    {
      name = 'allreduce',
      doc = 'dist.allreduce(t [, \'sum\' | \'mean\']) -> t, in place: the sum (default) or mean over the ranks\n'
        .. 'of a contiguous tensor; afterwards every rank holds the same values.',
      forms = { 'usagi' },
      args = { { 'tensor', 't' }, { 'reduction', 'op', default = 'USG_DIST_SUM' } },
      call = 'usg_dist_allreduce(t, op)',
      returns = 'first',
      grad = 'a collective over the ranks, not recorded',
      dtypes = 'any',
    },
  },
}
