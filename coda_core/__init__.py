"""CoDA: the model runtime and the cached parallel sampler (the training objective is coda_train.masking).

The bottom layer: it imports nothing of coda_lsp, coda_eval, coda_train or
coda_cli, and knows nothing of parallelism (coda_train.parallel applies it
from outside).
"""

__version__ = "0.1.0"
