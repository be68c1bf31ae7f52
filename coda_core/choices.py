"""The names of the runtime's choices, free of torch: the language server's settings and the
command line offer them before (or without) importing the runtime."""

# Each dtype name accepted -> torch's name for that dtype (coda_core.loading maps them to torch's dtypes).
DTYPE_NAMES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16",
               "float32": "float32", "fp32": "float32"}
DTYPES = ("auto", *DTYPE_NAMES)  # auto: the loader picks for the device (coda_core.loading.default_dtype)
QUANTIZE = ("none", "int8")  # how the linear layers' weights are stored (coda_core.quantize)
