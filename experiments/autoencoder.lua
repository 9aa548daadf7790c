-- autoencoder.lua -- the course's autoencoder (オートエンコーダー): squeeze an
-- image through a narrow code and rebuild it, no sampling, no KL.
--
--   code  c = W_2 act(W_1 x + b_1) + b_2                 784 -> 400 -> code
--   recon x' = sigmoid(W_4 act(W_3 c + b_3) + b_4)        code -> 400 -> 784
--   loss  binary cross-entropy of x' against x, summed over the pixels,
--         averaged over the batch; Adam
--
-- Reported: the held-out reconstruction loss (nats per image) and mean
-- squared error per pixel; reconstructions.png in the run directory puts
-- held-out images above their reconstructions. Data as vae_mnist.lua
-- (`data` = fashion, mnist, mnist-t10k or digits).
--
--   usagi run experiments/autoencoder.lua
--   usagi run experiments/autoencoder.lua --set code=2
--   usagi run experiments/autoencoder.lua --smoke          # digits, seconds
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
local data = require 'usagi.data'
local plot = require 'usagi.plot'
require 'usagi.vae'

return usagi.experiment {
  name = 'autoencoder',
  config = { data = 'fashion', hidden = 400, code = 20, epochs = 20, batch = 100, lr = 0.001 },
  smoke = { data = 'digits', hidden = 32, code = 4, epochs = 3 },
  checkpoint = { every_epochs = 5, keep = 1 },
  run = function(run, cfg)
    local train, test, side = data.image_set(cfg.data)
    local N, D = train.x:size(1), train.x:size(2)
    local model = nn.Autoencoder(D, { hidden = cfg.hidden, code = cfg.code })
    local opt = optim.Adam(model:parameters(), { lr = cfg.lr })
    run:track { model = model, optim = opt }
    run:print(('autoencoder: %s, %d train / %d held-out images, %d-%d-%d, %d parameters')
      :format(cfg.data, N, test.x:size(1), D, cfg.hidden, cfg.code, model:num_parameters()))
    for epoch in run:epochs(cfg.epochs) do
      local train_loss = run:train_epoch(opt, { train.x }, cfg.batch, function(x) return model:loss(x) end)
      local bce, mse
      usagi.no_grad(function()
        bce = model:loss(test.x):item()
        mse = (model(test.x):sigmoid() - test.x):square():mean():item()
      end)
      run:log { epoch = epoch, train_loss = train_loss, test_loss = bce, test_mse = mse }
      run:print(('epoch %3d  train %.3f  held-out %.3f nats per image, MSE %.5f per pixel')
        :format(epoch, train_loss, bce, mse))
    end
    if run.dir then
      usagi.no_grad(function()
        local x = test.x:narrow(1, 1, 50)
        plot.grid { images = x, under = model(x):sigmoid(), height = side, width = side, cols = 10,
                    path = run.dir .. '/reconstructions.png' }
      end)
      run:print('reconstructions: ' .. run.dir .. '/reconstructions.png')
    end
    local mse = run:history('test_mse')     -- the last epoch's, also when resumed past it
    return mse[#mse]
  end,
}
