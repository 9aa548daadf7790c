-- dp_synth.lua -- a data-parallel test experiment on synthetic data, for
-- tests/mpi/dp_synthetic.sh: a 2-layer tanh MLP regresses y = sin(x w*)
-- from 8 inputs, with Adam over run:batches (so the data shard and the
-- optimizer state both matter), dropout (0 by default: with it, each rank
-- draws its own masks), a checkpoint every epoch, and the loss
-- averaged over the ranks. `mpirun -np 2 usagi run` of it with batch B must
-- reach the parameters one rank reaches with B, to f32 rounding.
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'

return usagi.experiment {
  name = 'dp_synth',
  config = { n = 96, inputs = 8, hidden = 16, batch = 16, epochs = 4, lr = 0.01, dropout = 0.0 },
  smoke = { epochs = 3 },
  checkpoint = { every_epochs = 1, keep = 10 },
  run = function(run, cfg)
    local x = usagi.randn(cfg.n, cfg.inputs)                          -- (N, D)
    local w = usagi.randn(cfg.inputs, 1)
    local y = (x:mm(w) * 0.5):sin() + usagi.randn(cfg.n, 1) * 0.05    -- (N, 1)
    local model = nn.Sequential { nn.Linear(cfg.inputs, cfg.hidden), nn.Tanh(), nn.Dropout(cfg.dropout),
                                  nn.Linear(cfg.hidden, 1) }
    local opt = optim.Adam(model:parameters(), { lr = cfg.lr })
    run:track { model = model, optim = opt }
    for epoch in run:epochs(cfg.epochs) do
      local sum, batches, rows = 0, 0, 0
      for xb, yb in run:batches({ x, y }, cfg.batch, { label = ('epoch %d'):format(epoch) }) do
        local loss = nn.mse_loss(model(xb), yb)                       -- mean over this rank's rows
        opt:minimize(loss, { clip = 1 })
        sum, batches, rows = sum + loss:item(), batches + 1, rows + xb:size(1)
      end
      -- rows: the samples all ranks trained on this epoch (each its share: n)
      run:log { epoch = epoch, loss = run:allreduce(sum / batches, 'mean'), rows = run:allreduce(rows) }
    end
  end,
}
