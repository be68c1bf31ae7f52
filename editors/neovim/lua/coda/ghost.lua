-- Ghost text: the server's inline completion shown as virtual text while you type.
--
-- Neovim >= 0.12 has this built in (vim.lsp.inline_completion); there it is
-- simply enabled. On 0.11 this module does it: after each change in insert
-- mode (debounced) it sends textDocument/inlineCompletion, cancelling the
-- previous request with $/cancelRequest, and draws the first item with
-- extmarks: the first line inline at the cursor, the rest as virtual lines.
-- The accept keys insert all of it, its next word or its first line; with
-- nothing shown they do what they did before coda mapped them (Neovim's
-- snippet jump on <Tab>, another plugin's mapping, or the key itself).

local M = {}

local ns = vim.api.nvim_create_namespace("coda_ghost")
local group = vim.api.nvim_create_augroup("coda_ghost", { clear = true })

local state = {
  enabled = false,
  timer = nil, -- the debounce timer
  pending = nil, -- {client = ..., id = ...} of the request in flight
  shown = nil, -- {bufnr, row, col, text, range, client} of the ghost text on screen
  fallback = {}, -- key -> what it did before coda mapped it (see previous_mapping)
}

local function builtin()
  return vim.lsp.inline_completion ~= nil
end

function M.visible()
  return state.shown ~= nil
end

function M.clear()
  if state.shown then
    pcall(vim.api.nvim_buf_clear_namespace, state.shown.bufnr, ns, 0, -1)
    state.shown = nil
  end
end

local function cancel_pending()
  if state.pending then
    state.pending.client:cancel_request(state.pending.id)
    state.pending = nil
  end
end

local function show(bufnr, row, col, item, client)
  M.clear()
  local text = item.insertText
  if type(text) == "table" then -- a StringValue snippet: show its text
    text = text.value
  end
  if not text or text == "" then
    return
  end
  local lines = vim.split(text, "\n", { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], "Comment" } }
  end
  vim.api.nvim_buf_set_extmark(bufnr, ns, row, col, {
    virt_text = { { lines[1], "Comment" } },
    virt_text_pos = "inline",
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = "combine",
  })
  state.shown = { bufnr = bufnr, row = row, col = col, text = text, range = item.range, client = client }
end

--- Ask the server for an inline completion at the cursor.
function M.request()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = require("coda").client(bufnr)
  if not client or vim.api.nvim_get_mode().mode:sub(1, 1) ~= "i" then
    return
  end
  cancel_pending()
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = 2 } -- automatic
  local cursor = vim.api.nvim_win_get_cursor(0)
  local changedtick = vim.b[bufnr].changedtick
  local ok, id = client:request("textDocument/inlineCompletion", params, function(err, result)
    if state.pending and state.pending.id == id then
      state.pending = nil
    end
    -- stale: the user typed or moved on since
    if err or vim.b[bufnr].changedtick ~= changedtick or not vim.deep_equal(vim.api.nvim_win_get_cursor(0), cursor)
      or vim.api.nvim_get_mode().mode:sub(1, 1) ~= "i" then
      return
    end
    local items = result and (result.items or result) or {}
    if items[1] then
      show(bufnr, cursor[1] - 1, cursor[2], items[1], client)
    end
  end, bufnr)
  if ok then
    state.pending = { client = client, id = id }
  end
end

local function schedule_request(debounce_ms)
  M.clear()
  if state.timer then
    state.timer:stop()
  end
  state.timer = state.timer or vim.uv.new_timer()
  state.timer:start(debounce_ms, 0, vim.schedule_wrap(M.request))
end

--- The part of the shown text to insert: "all", "word" (up to the end of its next word) or "line".
local function part(text, how)
  if how == "word" then
    return text:match("^%s*[%w_]+") or text:match("^%s*[^%w_%s]+") or text:match("^%s+") or text
  elseif how == "line" then
    local first, rest = text:match("^([^\n]*)(\n?)")
    return first .. rest
  end
  return text
end

--- Insert the shown completion (or its next word / first line) and move the cursor past it.
function M.accept(how)
  local shown = state.shown
  if not shown then
    return
  end
  M.clear()
  local text = part(shown.text, how or "all")
  local range = shown.range
  if how ~= "all" and how ~= nil or not range then -- a partial insert replaces nothing
    local pos = vim.lsp.util.make_position_params(0, shown.client.offset_encoding).position
    range = { start = pos, ["end"] = pos }
  end
  vim.lsp.util.apply_text_edits({ { range = range, newText = text } }, shown.bufnr, shown.client.offset_encoding)
  local lines = vim.split(text, "\n", { plain = true })
  local row = shown.row + #lines -- 1-based row of the last inserted line
  local col = #lines == 1 and shown.col + #lines[1] or #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { row, col })
end

local DESC = "CoDA: " -- our mappings' descriptions start so, which tells them from the ones they replace

--- What `key` did in insert mode before coda mapped it, as a function that gives an expr
--- mapping's result: the global mapping it had (Neovim 0.11 maps <Tab> to jump in an active
--- vim.snippet), else the key itself. Taken once, so enabling twice does not capture our own.
local function previous_mapping(key)
  local old = vim.fn.maparg(key, "i", false, true)
  if vim.tbl_isempty(old) or old.buffer == 1 or (old.desc or ""):sub(1, #DESC) == DESC then
    return function()
      return key
    end
  end
  if old.expr == 1 then
    return function()
      local keys = old.callback and old.callback() or vim.api.nvim_eval(old.rhs)
      -- ours replaces keycodes; raw keys would be replaced twice
      return old.replace_keycodes == 1 and keys or vim.fn.keytrans(keys or "")
    end
  end
  return function() -- a plain mapping: run it outside this expr mapping's text lock
    if old.callback then
      vim.schedule(old.callback)
    else
      local keys = vim.api.nvim_replace_termcodes(old.rhs, true, false, true)
      vim.api.nvim_feedkeys(keys, old.noremap == 1 and "n" or "m", false)
    end
    return ""
  end
end

--- Map `key` in insert mode to `action()` (a mapping's keys) when `active()`, else to what it did before.
local function map_with_fallback(key, active, action, desc)
  if not key or key == "" then
    return
  end
  state.fallback[key] = state.fallback[key] or previous_mapping(key)
  vim.keymap.set("i", key, function()
    if active() then
      return action()
    end
    return state.fallback[key]()
  end, { expr = true, replace_keycodes = true, desc = DESC .. desc })
end

local function map_accept(key, how)
  map_with_fallback(key, M.visible, function()
    return string.format("<Cmd>lua require('coda.ghost').accept(%q)<CR>", how)
  end, "accept ghost text (" .. how .. ")")
end

function M.enable(opts)
  opts = opts or require("coda.config").options.ghost_text
  state.enabled = true
  if builtin() then
    vim.lsp.inline_completion.enable(true)
    -- get() accepts the shown completion, if there is one
    map_with_fallback(opts.keys.accept, vim.lsp.inline_completion.get, function()
      return ""
    end, "accept inline completion")
    return
  end
  vim.api.nvim_clear_autocmds({ group = group })
  vim.api.nvim_create_autocmd({ "TextChangedI", "TextChangedP" }, {
    group = group,
    callback = function(args)
      if state.enabled and require("coda").client(args.buf) then
        schedule_request(opts.debounce_ms)
      end
    end,
  })
  vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = group,
    callback = function()
      cancel_pending()
      M.clear()
    end,
  })
  vim.api.nvim_create_autocmd("CursorMovedI", {
    group = group,
    callback = function()
      local shown = state.shown
      if shown then
        local cursor = vim.api.nvim_win_get_cursor(0)
        if cursor[1] - 1 ~= shown.row or cursor[2] ~= shown.col then
          M.clear()
        end
      end
    end,
  })
  map_accept(opts.keys.accept, "all")
  map_accept(opts.keys.accept_word, "word")
  map_accept(opts.keys.accept_line, "line")
  map_with_fallback(opts.keys.dismiss, M.visible, function()
    M.clear()
    return ""
  end, "dismiss ghost text")
end

function M.disable()
  state.enabled = false
  cancel_pending()
  M.clear()
  if builtin() then
    vim.lsp.inline_completion.enable(false)
  end
end

function M.toggle()
  if state.enabled then
    M.disable()
  else
    M.enable()
  end
  vim.notify("coda: ghost text " .. (state.enabled and "on" or "off"))
end

return M
