-- The server's model state per client, from its `coda/status` notifications
-- ({state = "loading" | "ready" | "error", model = ..., message = ...}).

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
  if not status.model then
    return string.format("CoDA: %s", status.state)
  end
  return string.format("CoDA: %s (%s)", status.state, vim.fs.basename(status.model))
end

return M
