"""The names of the runtime's choices, free of torch: the language server's settings and the
command line offer them before (or without) importing the runtime."""

DTYPES = ("auto", "bfloat16", "bf16", "float16", "fp16", "float32", "fp32")  # coda_core.loading.DTYPES, and auto
QUANTIZE = ("none", "int8")  # how the linear layers' weights are stored (coda_core.quantize)
