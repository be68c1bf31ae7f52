"""coda_train: the CoDA training pipeline (installed from the train/ folder as `coda_train`).

Data (corpus, tokenizer, prepare), the three stages (pre-train, mid-train,
SFT) run by one trainer from recipe files, checkpoints, export and ship.
Parallelism is applied from outside the model by coda_train.parallel: plain
torch (one process, or FSDP2 under torchrun) and torch_xla SPMD on TPU.
"""
