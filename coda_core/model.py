"""The CoDA network: a Qwen3 decoder with full bidirectional attention.

Shapes used throughout:
    B batch, T tokens fed in this call, S canvas slots held in the KV cache,
    C hidden size, H query heads, G key/value heads (GQA), D head dim, V vocab,
    N rows picked for the LM head.

Module and parameter names are exactly Qwen3ForCausalLM's, so CoDA releases and
Qwen3 autoregressive checkpoints load without renaming.

Logits are *shifted*: the token at position j is predicted from the hidden
state at j - 1 (position 0 from itself). Every method returns logits in the
plain causal-LM layout (row j = hidden j); `prediction_rows` maps the
positions you want predicted to the rows that predict them.

Three ways in, one shape each (in the style of gpt-fast's prefill /
decode_one_token):
  * forward(input_ids [B, T])  the full forward, HF-compatible, no cache
    (training, the reference sampler, Qwen3 equivalence);
  * prefill(input_ids [B, S], cache)  all S canvas slots; fills the KVCache;
  * decode_window(input_ids [B, T], cache, slots [T])  only the T slots named
    in `slots`; attends to the cached K/V of every other slot and stores the
    window's fresh K/V back (diffusion decoding re-reads the same context
    many times, so only the window is recomputed).
Each takes `logits_index`, a (batch [N], row [N]) pair: only those N rows go
through the 151,936-wide LM head, giving logits [N, V]; without it every
row does, giving [B, T, V]. In prefill and decode_window the last layer, too,
runs its queries and MLP for those rows only (its K/V are still computed for
every row and cached): no later layer reads the other rows' outputs, and a
decoder asks for a few rows of a prefill of hundreds (a quarter of the
arithmetic of coda-mini's 4-layer prefill; 17-19% of its time measured).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

from .config import CoDAConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 and scale after casting back, as Qwen3 does, so
        # bf16 checkpoints reproduce the reference numerics.
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype):
    """cos/sin tables [B, T, D] for caller-supplied positions [B, T]."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=position_ids.device, dtype=torch.float) / head_dim))
    freqs = position_ids[..., None].float() * inv_freq  # [B, T, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, heads, T, D]; cos/sin [B, T, D]."""
    cos, sin = cos[:, None], sin[:, None]
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


def padding_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """attention_mask [B, T] (1 or True = a real token) as a bool key mask [B, T], or None when
    nothing is padded (so unpadded forwards pass no mask to SDPA at all)."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return attention_mask.bool()


def default_position_ids(attention_mask: torch.Tensor | None, batch: int, length: int, device=None) -> torch.Tensor:
    """RoPE positions [B, T] counted over real tokens, so left padding does not shift them."""
    if attention_mask is None:
        return torch.arange(length, device=device).expand(batch, length)
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


@dataclass
class KVCache:
    """K/V for every canvas slot and every layer, plus the canvas's padding.

    k[i], v[i]: [B, G, S, D] for layer i. `key_mask` [B, S] (True = a real
    token, None = no padding) and `position_ids` [B, S] are set by
    `set_padding`, which prefill (and a prefix-cache restore) calls, so that
    window steps attend and rotate exactly as prefill did. The shapes are
    fixed for a request, which keeps window steps static.
    """

    k: list[torch.Tensor]
    v: list[torch.Tensor]
    key_mask: torch.Tensor | None = None
    position_ids: torch.Tensor | None = None  # None until set_padding: no window step may run yet

    @classmethod
    def empty(cls, config: CoDAConfig, batch: int, slots: int, device=None, dtype=torch.float32) -> "KVCache":
        shape = (batch, config.num_key_value_heads, slots, config.head_dim)
        layers = range(config.num_hidden_layers)
        return cls(
            k=[torch.zeros(shape, device=device, dtype=dtype) for _ in layers],
            v=[torch.zeros(shape, device=device, dtype=dtype) for _ in layers],
        )

    @property
    def batch(self) -> int:
        return self.k[0].shape[0]

    @property
    def slots(self) -> int:
        return self.k[0].shape[2]

    def set_padding(self, attention_mask: torch.Tensor | None) -> None:
        """Record the canvas's padding: attention_mask [B, S] (1 = real token) or None.

        Sets key_mask [B, S] (None when nothing is padded) and position_ids
        [B, S], counted over real tokens as the full forward counts them.
        """
        if attention_mask is not None and attention_mask.shape != (self.batch, self.slots):
            raise ValueError(f"attention_mask of shape {tuple(attention_mask.shape)} for a cache of "
                             f"{self.batch}x{self.slots} slots")
        self.key_mask = padding_mask(attention_mask)
        self.position_ids = default_position_ids(self.key_mask, self.batch, self.slots, self.k[0].device)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.k, *self.v))


class Attention(nn.Module):
    def __init__(self, config: CoDAConfig):
        super().__init__()
        self.n_heads = config.num_attention_heads
        self.n_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        bias = config.attention_bias
        C, D = config.hidden_size, config.head_dim
        self.q_proj = nn.Linear(C, self.n_heads * D, bias=bias)
        self.k_proj = nn.Linear(C, self.n_kv_heads * D, bias=bias)
        self.v_proj = nn.Linear(C, self.n_kv_heads * D, bias=bias)
        self.o_proj = nn.Linear(self.n_heads * D, C, bias=bias)
        # Per-head norms on q and k, applied before RoPE.
        self.q_norm = RMSNorm(D, config.rms_norm_eps)
        self.k_norm = RMSNorm(D, config.rms_norm_eps)

    def forward(self, x, cos, sin, mask, kv=None, slots=None, rows=None):
        """x [B, T, C] -> [B, T, C]; cos/sin [B, T, D]; mask [B or 1, 1, T, S] bool or None.

        kv: this layer's cached (k, v), each [B, G, S, D], or None (no cache).
          slots None (prefill): the fed tokens are the whole canvas (T = S);
            their K/V are stored and attended to as computed.
          slots [T] (window): the fed tokens sit at those canvas slots; their
            K/V are written there, and attention reads every slot from the cache.
        rows: [R] the only rows whose output is wanted, in that order: -> [B, R, C].
          K/V are still computed for all T rows; queries only for these.
        """
        B, T, _ = x.shape
        k = self.k_norm(self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim)).transpose(1, 2)  # [B, G, T, D]
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # [B, G, T, D]
        k = apply_rope(k, cos, sin)
        if rows is not None:
            x, cos, sin = x[:, rows], cos[:, rows], sin[:, rows]
            mask = None if mask is None else mask[:, :, rows]
        Q = x.shape[1]  # query rows: T, or R
        q = self.q_norm(self.q_proj(x).view(B, Q, self.n_heads, self.head_dim)).transpose(1, 2)  # [B, H, Q, D]
        q = apply_rope(q, cos, sin)

        if kv is not None:
            k_cache, v_cache = kv
            if slots is None:
                k_cache.copy_(k)
                v_cache.copy_(v)
            else:
                k = k_cache.index_copy_(2, slots, k.to(k_cache.dtype))  # [B, G, S, D]
                v = v_cache.index_copy_(2, slots, v.to(v_cache.dtype))

        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=self.n_kv_heads != self.n_heads)
        return self.o_proj(y.transpose(1, 2).reshape(B, Q, self.n_heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, config: CoDAConfig):
        super().__init__()
        C, I = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(C, I, bias=False)
        self.up_proj = nn.Linear(C, I, bias=False)
        self.down_proj = nn.Linear(I, C, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: CoDAConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, mask, kv=None, slots=None, rows=None):
        """x [B, T, C] -> [B, T, C], or [B, R, C] for `rows`; the rest as Attention.forward."""
        attended = self.self_attn(self.input_layernorm(x), cos, sin, mask, kv, slots, rows)
        x = (x if rows is None else x[:, rows]) + attended
        return x + self.mlp(self.post_attention_layernorm(x))


class Decoder(nn.Module):
    """The `model.` part of the checkpoint: embeddings, layers, final norm."""

    def __init__(self, config: CoDAConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


def attention_mask_for(key_mask, query_slots, n_keys: int, causal: bool):
    """Boolean SDPA mask [B or 1, 1, T, S] (True = attend), or None when every pair attends.

    key_mask [B, S] marks real tokens (None: no padding); query_slots [T] are
    the canvas slots of the fed tokens; n_keys is S. Every query may always
    attend to its own slot, so rows of padding never see an empty key set
    (which would give NaN); their outputs are ignored anyway.
    """
    if key_mask is None and not causal:
        return None
    keys = torch.arange(n_keys, device=query_slots.device)
    allowed = torch.ones(1, 1, query_slots.numel(), n_keys, dtype=torch.bool, device=query_slots.device)
    if key_mask is not None:
        allowed = allowed & key_mask[:, None, None, :].bool()
    if causal:
        allowed = allowed & (keys[None, :] <= query_slots[:, None])
    return allowed | (keys[None, :] == query_slots[:, None])


def prediction_rows(positions: torch.Tensor, first_fed: int = 0) -> torch.Tensor:
    """Rows of a forward's hidden states that predict the tokens at `positions`.

    Token j is predicted from hidden j - 1, and token 0 from hidden 0. When the
    fed tokens start at canvas slot `first_fed` (a window forward), rows are
    counted from there; to predict a window [s, e) feed slots [s - 1, e).
    """
    return (positions - 1).clamp_min(0) - first_fed


def _check_index(logits_index):
    # A bare tensor would unpack along its first dimension without complaint.
    if logits_index is not None and (not isinstance(logits_index, (tuple, list)) or len(logits_index) != 2):
        raise TypeError("logits_index must be a (batch index [N], row index [N]) pair")
    return logits_index


def needed_rows(logits_index, length: int):
    """(rows [N], logits_index over them) for a cached forward (prefill, window) of `length` rows.

    rows: the rows logits_index reads, in its order, for the last layer to compute alone (a batch
    of B canvases computes those N rows of each, so N >= length gains nothing); None (with
    logits_index as given) when that is no saving or logits_index is None. Only shapes are read:
    no host sync on a GPU (torch.unique would need one to size its output).
    """
    if logits_index is None:
        return None, None
    batch_index, row_index = _check_index(logits_index)
    if row_index.numel() >= length:
        return None, (batch_index, row_index)
    return row_index, (batch_index, torch.arange(row_index.numel(), device=row_index.device))


class CoDAPreTrainedModel(PreTrainedModel):
    config_class = CoDAConfig
    base_model_prefix = "model"
    _no_split_modules = ["DecoderLayer"]
    _supports_sdpa = True


class CoDALanguageModel(CoDAPreTrainedModel):
    """CoDA: bidirectional Qwen3 decoder plus an untied LM head."""

    def __init__(self, config: CoDAConfig):
        super().__init__(config)
        self.model = Decoder(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        *,
        causal: bool = False,
        logits_index: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> CausalLMOutput:
        """The full forward, no cache: logits for input_ids [B, T].

        attention_mask [B, T]: 1 for real tokens, 0 for padding; None: no padding.
        position_ids [B, T]: RoPE positions; default counted over real tokens,
            so left padding does not shift them.
        causal: attend only to earlier slots (the autoregressive Qwen3 mode).
        logits_index: a (batch [N], row [N]) pair, the N rows to compute logits for.
        Returns CausalLMOutput with logits [N, V], or [B, T, V] without
        logits_index (model dtype); row r holds the prediction made from hidden
        row r (see prediction_rows).
        """
        B, T = input_ids.shape
        key_mask = padding_mask(attention_mask)
        if position_ids is None:
            position_ids = default_position_ids(key_mask, B, T, input_ids.device)
        mask = attention_mask_for(key_mask, torch.arange(T, device=input_ids.device), T, causal)
        # Every row through every layer: training calls this (on XLA too, where the rows that
        # needed_rows picks would be a shape known only at run time).
        _check_index(logits_index)
        hidden = self._hidden(input_ids, position_ids, mask)
        return CausalLMOutput(logits=self._logits(hidden, logits_index))

    def prefill(
        self,
        input_ids: torch.Tensor,
        cache: KVCache,
        attention_mask: torch.Tensor | None = None,
        *,
        logits_index: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Encode a whole canvas, input_ids [B, S], and store every slot's K/V in `cache`.

        attention_mask [B, S]: 1 for real tokens, 0 for padding; None: no
            padding. The cache keeps it, and the positions it implies, for the
            window steps that follow.
        logits_index: a (batch [N], row [N]) pair, as for forward.
        Returns logits [N, V], or [B, S, V] without logits_index: the same as
        forward(input_ids, attention_mask).
        """
        B, S = input_ids.shape
        if (cache.batch, cache.slots) != (B, S):
            raise ValueError(f"prefill of {B}x{S} tokens into a cache of {cache.batch}x{cache.slots} slots")
        cache.set_padding(attention_mask)
        mask = attention_mask_for(cache.key_mask, torch.arange(S, device=input_ids.device), S, causal=False)
        rows, logits_index = needed_rows(logits_index, S)
        hidden = self._hidden(input_ids, cache.position_ids, mask, cache, rows=rows)
        return self._logits(hidden, logits_index)

    def decode_window(
        self,
        input_ids: torch.Tensor,
        cache: KVCache,
        slots: torch.Tensor,
        *,
        logits_index: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """One cached window step: input_ids [B, T] are the tokens at canvas slots [T].

        Attends to the cached K/V of every other slot (with the padding and
        positions the cache recorded at prefill) and writes the window's fresh
        K/V back at `slots`. To predict a window [s, e) feed slots [s - 1, e),
        since token j is predicted from hidden j - 1 (see prediction_rows).
        logits_index: a (batch [N], row [N]) pair, rows counted within the window.
        Returns logits [N, V], or [B, T, V] without logits_index.
        """
        B, T = input_ids.shape
        if cache.position_ids is None:  # set_padding never ran: the cache holds no canvas
            raise ValueError("a window step needs a cache filled by prefill (or a prefix-cache restore)")
        if slots.shape != (T,):
            raise ValueError(f"slots must have shape ({T},), got {tuple(slots.shape)}")
        if B != cache.batch:
            raise ValueError(f"a window of {B} rows over a cache of {cache.batch}")
        mask = attention_mask_for(cache.key_mask, slots, cache.slots, causal=False)
        rows, logits_index = needed_rows(logits_index, T)
        hidden = self._hidden(input_ids, cache.position_ids[:, slots], mask, cache, slots, rows)
        return self._logits(hidden, logits_index)

    def _hidden(self, input_ids, position_ids, mask, cache: KVCache | None = None, slots=None,
                rows=None) -> torch.Tensor:
        """Final-norm hidden states [B, T, C] for input_ids [B, T] at position_ids [B, T].

        mask: SDPA mask from attention_mask_for. cache and slots: as
        Attention.forward's kv and slots (None, None for the full forward).
        rows: [R], or None: only these rows' states are wanted, [B, R, C]; the last
        layer computes the others' K/V (for the cache) and nothing else of them.
        """
        x = self.model.embed_tokens(input_ids)
        cos, sin = rope_cos_sin(position_ids, self.config.head_dim, self.config.rope_parameters["rope_theta"], x.dtype)
        last = len(self.model.layers) - 1
        for i, layer in enumerate(self.model.layers):
            kv = (cache.k[i], cache.v[i]) if cache is not None else None
            x = layer(x, cos, sin, mask, kv, slots, rows if i == last else None)
        return self.model.norm(x)

    def _logits(self, hidden: torch.Tensor, logits_index) -> torch.Tensor:
        """hidden [B, T, C] -> logits [B, T, V], or [N, V] for a (batch [N], row [N]) logits_index
        (rows of `hidden`: needed_rows maps them when the last layer kept only some)."""
        if logits_index is None:
            return self.lm_head(hidden)
        batch_index, row_index = logits_index
        return self.lm_head(hidden[batch_index, row_index])

    def new_cache(self, batch: int, slots: int) -> KVCache:
        """An empty cache on the model's device and dtype."""
        return KVCache.empty(self.config, batch, slots, device=self.device, dtype=self.dtype)


AutoModel.register(CoDAConfig, CoDALanguageModel)
