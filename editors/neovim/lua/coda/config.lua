-- Options of coda.nvim: the defaults, how the user's options merge in, and
-- which server command to start.

local M = {}

M.defaults = {
  -- The server: nil means the project's .venv/bin/coda-lsp when there is
  -- one, else `coda-lsp` on PATH.
  cmd = nil,
  -- Sent to the server as initializationOptions (camelCase, as the server reads them).
  -- "coda-mini", a model directory or hub id; nil: the server's default, which is its
  -- --model, else $CODA_MODEL, else coda-mini, the small model bundled with the server.
  model = nil,
  device = "auto",
  dtype = "auto",
  quantize = "none", -- "int8": int8 layers where measured faster on this CPU (:CodaStatus says), a third of fp32's memory
  max_new_tokens = 64,
  threshold = 0.9,
  block_size = 32,
  context_before = 1536,
  context_after = 512,
  -- Snippets of other files before the code, in tokens (0: none), and where they may come from.
  context_files = 512,
  context_open_files = true,
  context_imports = true,
  context_recent_edits = true,
  candidates = 3,
  complete_in_comments = false,
  -- A buffer's workspace folder is the nearest folder above it holding one of these; files it imports
  -- are read from there for context (coda-lsp reads none outside it). None found: no imported files.
  root_markers = { ".git", "pyproject.toml", "setup.py", "package.json", "Cargo.toml", "go.mod" },
  filetypes = { "python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust", "lua" },
  ghost_text = {
    enabled = true,
    debounce_ms = 75,
    keys = { accept = "<Tab>", accept_word = "<M-Right>", accept_line = "<M-Down>", dismiss = "<C-]>" },
  },
}

M.options = vim.deepcopy(M.defaults)

function M.merge(opts)
  M.options = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  return M.options
end

--- The command that starts coda-lsp over stdio.
function M.server_cmd(opts)
  opts = opts or M.options
  if opts.cmd then
    return opts.cmd
  end
  local venv = vim.fs.joinpath(vim.fn.getcwd(), ".venv", "bin", "coda-lsp")
  if vim.fn.executable(venv) == 1 then
    return { venv, "--stdio" }
  end
  return { "coda-lsp", "--stdio" }
end

--- The server's settings, as initializationOptions and didChangeConfiguration send them
--- (coda_lsp/settings.py is their schema; tests/editors/test_settings_schema.py checks these against it).
function M.server_settings(opts)
  opts = opts or M.options
  return {
    model = opts.model,
    device = opts.device,
    dtype = opts.dtype,
    quantize = opts.quantize,
    maxNewTokens = opts.max_new_tokens,
    threshold = opts.threshold,
    blockSize = opts.block_size,
    contextBefore = opts.context_before,
    contextAfter = opts.context_after,
    contextFiles = opts.context_files,
    contextOpenFiles = opts.context_open_files,
    contextImports = opts.context_imports,
    contextRecentEdits = opts.context_recent_edits,
    candidates = opts.candidates,
    languages = opts.filetypes,
    completeInComments = opts.complete_in_comments,
  }
end

return M
