-- :checkhealth coda: Neovim version, server found, server starts, model loads.

local M = {}

local function run(cmd, timeout_ms)
  local ok, proc = pcall(vim.system, cmd, { text = true })
  if not ok then
    return nil, tostring(proc)
  end
  local result = proc:wait(timeout_ms)
  return result, nil
end

function M.check()
  local health = vim.health
  local config = require("coda.config")
  health.start("coda.nvim")

  if vim.fn.has("nvim-0.11") == 1 then
    local v = vim.version()
    health.ok(string.format("Neovim %d.%d.%d", v.major, v.minor, v.patch))
  else
    health.error("Neovim 0.11 or newer is needed (vim.lsp.config)")
    return
  end
  if vim.lsp.inline_completion then
    health.ok("ghost text: Neovim's built-in vim.lsp.inline_completion")
  else
    health.ok("ghost text: coda.nvim's own (Neovim < 0.12)")
  end

  local cmd = (vim.lsp.config.coda or {}).cmd or config.server_cmd()
  if type(cmd) ~= "table" then
    health.warn("the coda server command is a function; not checked")
    return
  end
  if vim.fn.executable(cmd[1]) == 0 then
    health.error("server not found: " .. cmd[1], {
      "install the project (`make test` creates .venv with coda-lsp), or set `cmd` in setup()" })
    return
  end
  health.ok("server found: " .. vim.fn.exepath(cmd[1]))

  local base = vim.tbl_filter(function(arg) return arg ~= "--stdio" end, cmd) -- a new list
  local version, err = run(vim.list_extend(vim.deepcopy(base), { "--version" }), 30000)
  if not version or version.code ~= 0 then
    health.error("the server does not start: " .. (err or (version and version.stderr) or "timed out"))
    return
  end
  health.ok("server starts: " .. vim.trim(version.stdout))

  -- With no model configured the server loads its default ($CODA_MODEL, else the bundled coda-mini): check that one.
  local model = ((vim.lsp.config.coda or {}).init_options or {}).model or config.options.model
  local check_args = model and { "--check", "--model", model } or { "--check" }
  local check = run(vim.list_extend(vim.deepcopy(base), check_args), 300000)
  if check and check.code == 0 then
    health.ok(vim.trim(check.stdout))
  else
    health.error("the model does not load: " .. vim.trim(check and check.stderr or "timed out"))
  end
end

return M
