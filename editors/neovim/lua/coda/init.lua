-- coda.nvim: CoDA diffusion completions in Neovim through coda-lsp.
--
--   require("coda").setup({ model = "/path/to/model" })
--
-- setup() configures the "coda" language server (see lsp/coda.lua) with the
-- user's options, enables it for the configured filetypes, and turns on ghost
-- text. Rewrites go through the server's code actions (see coda.actions).

local config = require("coda.config")

local M = {}

function M.setup(opts)
  local options = config.merge(opts)
  local settings = config.server_settings(options)
  vim.lsp.config("coda", {
    cmd = config.server_cmd(options),
    filetypes = options.filetypes,
    root_markers = options.root_markers,
    init_options = settings,
    settings = { coda = settings },
  })
  vim.lsp.enable("coda")
  -- Neovim only logs a server command it cannot run: tell the user when a file that wants it opens.
  vim.api.nvim_create_autocmd("FileType", {
    group = vim.api.nvim_create_augroup("coda_missing_server", { clear = true }),
    pattern = options.filetypes,
    once = true,
    callback = function()
      local missing = M.missing_server()
      if missing then
        vim.notify("coda: " .. missing, vim.log.levels.WARN)
      end
    end,
  })
  if options.ghost_text.enabled then
    require("coda.ghost").enable(options.ghost_text)
  end
end

--- Stop every coda-lsp client and start the server again for the open buffers (after it died,
--- or to pick up a new install). Core Neovim has no :LspRestart; that is nvim-lspconfig's.
function M.restart()
  local clients = vim.lsp.get_clients({ name = "coda" })
  for _, client in ipairs(clients) do
    client:stop()
  end
  local started = vim.uv.now()
  local timer = assert(vim.uv.new_timer())
  timer:start(50, 50, vim.schedule_wrap(function()
    local running = vim.tbl_filter(function(client)
      return not client:is_stopped()
    end, clients)
    if #running > 0 and vim.uv.now() - started < 3000 then
      return -- give the server time to shut down cleanly
    end
    timer:stop()
    timer:close()
    for _, client in ipairs(running) do
      client:stop(true)
    end
    vim.lsp.enable("coda") -- starts a client for each open buffer of its filetypes
    vim.notify("coda: coda-lsp restarted")
  end))
end

--- Why the configured server command cannot run, or nil when it can.
function M.missing_server()
  local cmd = vim.lsp.config.coda and vim.lsp.config.coda.cmd
  if type(cmd) ~= "table" or vim.fn.executable(cmd[1]) == 1 then
    return nil
  end
  return string.format("the server command %q is not found. Install coda-lsp (pip install /path/to/coda-lsp, or `make test` "
    .. "in its repository for .venv/bin/coda-lsp), or set the cmd option of require('coda').setup().", cmd[1])
end

--- The coda-lsp client attached to a buffer, or nil.
function M.client(bufnr)
  return vim.lsp.get_clients({ name = "coda", bufnr = bufnr or 0 })[1]
end

return M
