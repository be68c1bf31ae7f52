-- User commands of coda.nvim. The server starts through setup() or
-- `vim.lsp.enable("coda")`; these commands talk to it.

if vim.g.loaded_coda then
  return
end
vim.g.loaded_coda = true

vim.api.nvim_create_user_command("CodaRewrite", function(cmd)
  require("coda.actions").rewrite(cmd.line1, cmd.line2, cmd.args, cmd.range > 0)
end, { range = true, nargs = "*", desc = "CoDA: regenerate the selection, or rewrite it as the argument says" })

vim.api.nvim_create_user_command("CodaImplement", function()
  require("coda.actions").implement()
end, { desc = "CoDA: implement the body of the function at the cursor" })

vim.api.nvim_create_user_command("CodaFillHoles", function(cmd)
  require("coda.actions").fill_holes(cmd.line1, cmd.line2, cmd.range > 0)
end, { range = true, desc = "CoDA: fill every pass/.../TODO placeholder in the range or function" })

vim.api.nvim_create_user_command("CodaGhostToggle", function()
  require("coda.ghost").toggle()
end, { desc = "CoDA: turn ghost text on or off" })

vim.api.nvim_create_user_command("CodaStatus", function()
  print(require("coda.status").describe(0))
end, { desc = "CoDA: the server's model state" })

vim.api.nvim_create_user_command("CodaCancel", function()
  require("coda.progress").cancel(0)
end, { desc = "CoDA: cancel the rewrite, implement or fill that is running" })

require("coda.progress").watch()

vim.api.nvim_create_user_command("CodaRestart", function()
  require("coda").restart()
end, { desc = "CoDA: stop coda-lsp and start it again for the open buffers" })
