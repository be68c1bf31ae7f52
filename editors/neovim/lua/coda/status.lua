-- The server's model state per client, from its `coda/status` notifications
-- ({state = "loading" | "ready" | "error", model = ..., message = ..., percentage = ...}).

local M = {}

local by_client = {}

function M.update(client_id, status)
  by_client[client_id] = status
  vim.api.nvim_exec_autocmds("User", { pattern = "CodaStatus", data = { client_id = client_id, status = status } })
end

--- The last status of a client; {state = "starting"} before the first notification.
function M.get(client_id)
  return by_client[client_id] or { state = "starting" }
end

--- A short text for a statusline: "CoDA: ready (models/tiny)".
function M.statusline(bufnr)
  local client = vim.lsp.get_clients({ name = "coda", bufnr = bufnr or 0 })[1]
  if not client then
    return ""
  end
  local status = M.get(client.id)
  -- The server names its model in every status; before the first one there is no name to show.
  -- While a hub model downloads, the server sends its percentage with state "loading".
  local state = status.state == "loading" and status.percentage
    and string.format("downloading %d%%", status.percentage) or status.state
  local line = status.model and string.format("CoDA: %s (%s)", state, vim.fs.basename(status.model))
    or string.format("CoDA: %s", state)
  local working = require("coda.progress").text(client.id)
  return working and (line .. " | " .. working) or line
end

--- The status for :CodaStatus: the statusline text, or why there is none.
function M.describe(bufnr)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  local line = M.statusline(bufnr)
  if line ~= "" then
    local status = M.get(require("coda").client(bufnr).id)
    return status.message and (line .. ": " .. status.message) or line
  end
  if vim.lsp.is_enabled("coda") then
    return string.format("CoDA: no coda-lsp attached to this buffer (filetype %q). See :checkhealth coda; "
      .. "the coda config's filetypes say where it starts.", vim.bo[bufnr].filetype)
  end
  return "CoDA: coda-lsp is not enabled: call require('coda').setup() or vim.lsp.enable('coda')."
end

return M
