-- The experiment's config and checkpoint table as a script gives them:
-- reading a key the config lacks is an error naming it (cfg.hiden), and
-- checkpoint = { best = 'acc:max' } means what --best acc:max means.
local usagi = require 'usagi'
local E = require 'usagi.experiment'
local h = dofile('tests/lua/helpers.lua')

local function spec(run, extra)
  local s = { name = 'cfgspec', config = { hidden = 4, lr = 0.1 }, run = run }
  for k, v in pairs(extra or {}) do s[k] = v end
  return usagi.experiment(s)
end

describe('experiment config', function()
  it('reading a key that is not in the config is an error that names it, at the reading line', function()
    local line = debug.getinfo(1, 'l').currentline + 1
    local s = spec(function(run, cfg) return cfg.hiden end)
    local ok, err = pcall(E.run_experiment, s, { quiet = true })
    assert.is_false(ok)
    err = tostring(err)
    assert.truthy(err:find(':' .. line .. ': the config has no key "hiden" (its keys: hidden, lr)', 1, true), err)
    assert.truthy(err:find('experiment_config_spec.lua:' .. line .. ':', 1, true), err)
  end)

  it('keys that are there read as before, new keys can be written, pairs sees them all', function()
    local s = spec(function(run, cfg)
      cfg.extra = 3
      local n = 0
      for _ in pairs(cfg) do n = n + 1 end
      return cfg.hidden + cfg.extra + n
    end)
    local _, r = E.run_experiment(s, { quiet = true, set = { lr = 0.5 } })
    assert.are.equal(4 + 3 + 3, r)
  end)

  it("checkpoint = { best = 'acc:max' } keeps the highest, as --best acc:max", function()
    local out = h.tmpdir()
    local accs = { 0.2, 0.9, 0.5, 0.4 }
    local s = spec(function(run, cfg)
      run:track { state = {} }
      for i in run:progress(#accs, { carry = {} }) do run:log { acc = accs[i] } end
    end, { checkpoint = { every = 1, keep = 1, best = 'acc:max' } })
    local run = E.run_experiment(s, { quiet = true, out = out, name = 'b' })
    local best = usagi.load(run.dir .. '/checkpoints/best.h5')
    h.rmrf(out)
    assert.are.equal(2, best.step)
    assert.are.equal(0.9, math.floor(best.best * 10 + 0.5) / 10)
  end)

  it('a bad checkpoint.best is refused when the script makes its experiment', function()
    local ok, err = pcall(spec, function() end, { checkpoint = { best = 'acc:highest' } })
    assert.is_false(ok)
    assert.truthy(tostring(err):find('checkpoint.best needs METRIC, METRIC:min or METRIC:max, got "acc:highest"', 1, true), err)
    ok, err = pcall(spec, function() end, { checkpoint = { best = 'acc:max', mode = 'min' } })
    assert.is_false(ok)
    assert.truthy(tostring(err):find('disagree', 1, true), err)
  end)
end)
