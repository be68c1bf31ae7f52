-- coda-lsp for `vim.lsp.config` (Neovim >= 0.11). This file is found on the
-- runtimepath as the "coda" config, so `vim.lsp.enable("coda")` alone starts
-- the server with these defaults; `require("coda").setup(opts)` layers the
-- user's options on top.

---@type vim.lsp.Config
return {
  cmd = require("coda.config").server_cmd(),
  filetypes = require("coda.config").defaults.filetypes,
  root_markers = { "pyproject.toml", "package.json", "go.mod", "Cargo.toml", ".git" },
  init_options = {},
  settings = { coda = {} },
  commands = require("coda.actions").commands,
  handlers = {
    ["coda/status"] = function(_, status, ctx)
      require("coda.status").update(ctx.client_id, status)
    end,
  },
}
