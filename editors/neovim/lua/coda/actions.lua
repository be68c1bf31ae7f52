-- :CodaRewrite, :CodaImplement and :CodaFillHoles. Each asks the server for
-- its code actions on a range, runs the one it names, and lets the server
-- apply the result with workspace/applyEdit (one undoable change).

local M = {}

local function client_or_warn(bufnr)
  local client = require("coda").client(bufnr)
  if not client then
    local missing = require("coda").missing_server()
    vim.notify("coda: " .. (missing or require("coda.status").describe(bufnr):gsub("^CoDA: ", "")), vim.log.levels.WARN)
  end
  return client
end

--- LSP range params of lines first..last (1-based, inclusive); of the exact last visual selection
--- when `visual` and it was charwise over those lines.
local function range_params(client, bufnr, first, last, visual)
  local enc = client.offset_encoding
  if visual and vim.fn.visualmode() == "v" and vim.api.nvim_buf_get_mark(bufnr, "<")[1] == first
    and vim.api.nvim_buf_get_mark(bufnr, ">")[1] == last then
    return vim.lsp.util.make_given_range_params(nil, nil, bufnr, enc) -- from the '< and '> marks
  end
  local last_line = vim.api.nvim_buf_get_lines(bufnr, last - 1, last, true)[1]
  return {
    textDocument = vim.lsp.util.make_text_document_params(bufnr),
    range = {
      start = { line = first - 1, character = 0 },
      ["end"] = { line = last - 1, character = vim.lsp.util.character_offset(bufnr, last - 1, #last_line, enc) },
    },
  }
end

-- The server completes in no document of this many characters or more (coda_lsp.documents.MAX_DOCUMENT_CHARS).
-- The buffer's byte count is compared with it: never less than its character count, and it costs nothing.
local MAX_DOCUMENT_CHARS = 32 * 1024 * 1024

--- Why the server offered no `command` here, and what to do, as a message for the user.
local function why_no_action(client, bufnr, command)
  local status = require("coda.status").get(client.id)
  if status.state == "error" then
    return "the model did not load (" .. (status.message or "see :CodaStatus")
      .. "). Set a model that loads (the model option), then :CodaRestart."
  elseif status.state ~= "ready" then
    return "the model is still loading; try again when :CodaStatus says ready."
  elseif vim.api.nvim_buf_get_offset(bufnr, vim.api.nvim_buf_line_count(bufnr)) >= MAX_DOCUMENT_CHARS then
    return "this file is over the 32 MB that coda-lsp works in."
  elseif command == "coda.implementFunction" then
    return "no function with a placeholder body (pass, ..., a TODO) at the cursor."
  elseif command == "coda.fillHoles" then
    return "no placeholders (pass, ..., TODO) in the range or the function at the cursor."
  end
  return "the server offers no " .. command .. " here."
end

--- Run the server's code action whose command is `command`, on `params.range`; extra arguments appended.
local function run_action(client, bufnr, params, command, extra)
  params.context = { diagnostics = {}, only = { "refactor.rewrite" } }
  client:request("textDocument/codeAction", params, function(err, actions)
    if err then
      vim.notify("coda: " .. err.message, vim.log.levels.ERROR)
      return
    end
    for _, action in ipairs(actions or {}) do
      local cmd = action.command
      if cmd and cmd.command == command then
        local call = vim.deepcopy(cmd)
        vim.list_extend(call.arguments, extra or {})
        client:exec_cmd(call, { bufnr = bufnr })
        return
      end
    end
    vim.notify("coda: " .. why_no_action(client, bufnr, command), vim.log.levels.WARN)
  end, bufnr)
end

--- Regenerate lines first..last, or rewrite them as `instruction` says when one is given.
function M.rewrite(first, last, instruction, visual)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_or_warn(bufnr)
  if not client then
    return
  end
  local params = range_params(client, bufnr, first, last, visual)
  if instruction and instruction ~= "" then
    run_action(client, bufnr, params, "coda.rewriteWithInstruction", { instruction })
  else
    run_action(client, bufnr, params, "coda.regenerateSelection")
  end
end

--- Implement the placeholder body of the function at the cursor.
function M.implement()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_or_warn(bufnr)
  if not client then
    return
  end
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  run_action(client, bufnr, params, "coda.implementFunction")
end

--- Fill every placeholder in lines first..last (with no range: in the function at the cursor).
function M.fill_holes(first, last, has_range)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_or_warn(bufnr)
  if not client then
    return
  end
  local params = has_range and range_params(client, bufnr, first, last, false)
    or vim.lsp.util.make_range_params(0, client.offset_encoding)
  run_action(client, bufnr, params, "coda.fillHoles")
end

--- Client-side handlers of server commands (vim.lsp.Config.commands): Neovim runs these instead of
--- sending the command, so a code action picked from the menu can ask the user first.
M.commands = {
  -- "Rewrite selection with instruction" names no instruction: ask for it, then send the command.
  ["coda.rewriteWithInstruction"] = function(command, ctx)
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    if not client then
      return
    end
    local function send(arguments)
      client:request("workspace/executeCommand", { command = command.command, arguments = arguments }, nil, ctx.bufnr)
    end
    local arguments = command.arguments or {}
    if arguments[3] then -- :CodaRewrite {instruction} gave one
      send(arguments)
      return
    end
    vim.ui.input({ prompt = "CoDA: how should the selection change? " }, function(instruction)
      if instruction == nil then
        return -- dismissed
      end
      -- empty: the server takes the instruction from a comment line above the selection
      send(vim.list_extend(vim.deepcopy(arguments), vim.trim(instruction) ~= "" and { vim.trim(instruction) } or {}))
    end)
  end,
}

return M
