-- :CodaRewrite, :CodaImplement and :CodaFillHoles. Each asks the server for
-- its code actions on a range, runs the one it names, and lets the server
-- apply the result with workspace/applyEdit (one undoable change).

local M = {}

local function client_or_warn(bufnr)
  local client = require("coda").client(bufnr)
  if not client then
    vim.notify("coda: no coda-lsp client is attached to this buffer", vim.log.levels.WARN)
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
    vim.notify("coda: the server offers no " .. command .. " here", vim.log.levels.WARN)
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

return M
