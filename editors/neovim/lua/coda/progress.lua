-- The server's work-done progress for its commands (rewrite, implement, fill holes):
-- shown in the echo area and in the statusline while a command runs, and
-- cancelled with :CodaCancel. Stock Neovim keeps progress only in
-- vim.lsp.status(), which nothing shows by default.

local M = {}

local running = {} -- client id -> {token, title, message, percentage} of the command in progress

local function is_coda(client_id)
  local client = vim.lsp.get_client_by_id(client_id)
  return client ~= nil and client.name == "coda"
end

--- "regenerate 40% step 12: def f(x):" for the command in progress of a client, or nil.
function M.text(client_id)
  local p = running[client_id]
  if not p then
    return nil
  end
  local parts = { p.title }
  if p.percentage then
    parts[#parts + 1] = p.percentage .. "%"
  end
  if p.message and p.message ~= "" then
    parts[#parts + 1] = p.message
  end
  return table.concat(parts, " ")
end

--- `text` as one line that fits the echo area. A longer one, or one with a newline (a progress
--- message is the code being written), would stop Neovim at a "Press ENTER" prompt on every step.
function M.echo_line(text)
  text = text:gsub("[\r\n]+", " ")
  local room = vim.v.echospace
  if vim.fn.strdisplaywidth(text) <= room then
    return text
  end
  local n = math.min(vim.fn.strchars(text), room)
  while n > 0 and vim.fn.strdisplaywidth(vim.fn.strcharpart(text, 0, n)) > room - 1 do
    n = n - 1
  end
  return vim.fn.strcharpart(text, 0, n) .. "…"
end

local function echo(text)
  vim.api.nvim_echo({ { M.echo_line(text) } }, false, {})
end

local function on_progress(args)
  local data = args.data or {}
  local value = data.params and data.params.value
  if type(value) ~= "table" or not is_coda(data.client_id) then
    return
  end
  local id = data.client_id
  if value.kind == "begin" then
    running[id] = { token = data.params.token, title = (value.title or "CoDA"):gsub("^CoDA: ", "") }
  elseif value.kind == "end" then
    local p = running[id]
    running[id] = nil
    echo("CoDA: " .. (p and p.title or "command") .. " " .. (value.message or "done"))
    return
  end
  local p = running[id]
  if not p then
    return
  end
  p.message, p.percentage = value.message or p.message, value.percentage or p.percentage
  echo("CoDA: " .. M.text(id))
end

function M.watch()
  vim.api.nvim_create_autocmd("LspProgress", {
    group = vim.api.nvim_create_augroup("coda_progress", { clear = true }),
    callback = on_progress,
  })
end

--- Cancel the command in progress of the buffer's coda client (window/workDoneProgress/cancel).
function M.cancel(bufnr)
  local client = require("coda").client(bufnr)
  local p = client and running[client.id]
  if not p then
    vim.notify("coda: no command is running", vim.log.levels.INFO)
    return
  end
  client:notify("window/workDoneProgress/cancel", { token = p.token })
  vim.notify("coda: cancelling " .. p.title)
end

return M
