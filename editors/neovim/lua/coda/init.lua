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
    init_options = settings,
    settings = { coda = settings },
  })
  vim.lsp.enable("coda")
  if options.ghost_text.enabled then
    require("coda.ghost").enable(options.ghost_text)
  end
end

--- The coda-lsp client attached to a buffer, or nil.
function M.client(bufnr)
  return vim.lsp.get_clients({ name = "coda", bufnr = bufnr or 0 })[1]
end

return M
