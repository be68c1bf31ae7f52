"""The CoDA network: a Qwen3 decoder with full bidirectional attention.

Shapes used throughout:
    B batch, T tokens fed in this call, S canvas slots held in the KV cache,
    C hidden size, H query heads, G key/value heads (GQA), D head dim, V vocab.

Module and parameter names are exactly Qwen3ForCausalLM's, so CoDA releases and
Qwen3 autoregressive checkpoints load without renaming.

Logits are *shifted*: the token at position j is predicted from the hidden
state at j - 1 (position 0 from itself). `forward` returns logits in the plain
causal-LM layout (row j = hidden j); `prediction_rows` maps the positions you
want predicted to the rows that predict them.

Diffusion decoding re-reads the same context many times, so the model takes an
explicit `KVCache` holding K/V for every canvas slot:
  * prefill: `forward(ids, cache=cache)` runs all S slots and fills the cache;
  * window:  `forward(window_ids, cache=cache, slots=slots)` runs only the T
    slots named in `slots`, attends to the cached K/V of every other slot, and
    (with `write_cache=True`) stores the window's fresh K/V back.
Only the rows in `logits_index` go through the 151,936-wide LM head.
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


@dataclass
class KVCache:
    """K/V for every canvas slot and every layer, plus what prefill learned.

    k[i], v[i]: [B, G, S, D] for layer i. `key_mask` [B, S] (True = a real
    token, None = no padding) and `position_ids` [B, S] are set by prefill so
    that window forwards attend and rotate exactly as the full forward did.
    The shapes are fixed for a request, which keeps window forwards static.
    """

    k: list[torch.Tensor]
    v: list[torch.Tensor]
    key_mask: torch.Tensor | None = None
    position_ids: torch.Tensor | None = None

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

    def forward(self, x, cos, sin, mask, cache_kv=None, slots=None, write_cache=True):
        """x [B, T, C] -> [B, T, C].

        cache_kv: this layer's (k, v) [B, G, S, D] or None. With slots None the
        fed tokens are the whole canvas and their K/V are stored. With slots [T]
        the fed tokens sit at those canvas slots; the other slots' K/V come
        from the cache.
        """
        B, T, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(B, T, self.n_heads, self.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim)).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)

        if cache_kv is not None:
            k_cache, v_cache = cache_kv
            if slots is None:
                k_cache.copy_(k)
                v_cache.copy_(v)
            elif write_cache:
                k = k_cache.index_copy_(2, slots, k.to(k_cache.dtype))
                v = v_cache.index_copy_(2, slots, v.to(v_cache.dtype))
            else:
                k = k_cache.index_copy(2, slots, k.to(k_cache.dtype))
                v = v_cache.index_copy(2, slots, v.to(v_cache.dtype))

        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=self.n_kv_heads != self.n_heads)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))


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

    def forward(self, x, cos, sin, mask, cache_kv=None, slots=None, write_cache=True):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache_kv, slots, write_cache)
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

    key_mask [B, S] marks real tokens. Every query may always attend to its
    own slot, so rows of padding never see an empty key set (which would give
    NaN); their outputs are ignored anyway.
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


def default_position_ids(attention_mask: torch.Tensor | None, batch: int, length: int, device=None) -> torch.Tensor:
    """RoPE positions [B, T] counted over real tokens, so left padding does not shift them."""
    if attention_mask is None:
        return torch.arange(length, device=device).expand(batch, length)
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def prediction_rows(positions: torch.Tensor, first_fed: int = 0) -> torch.Tensor:
    """Rows of a forward's hidden states that predict the tokens at `positions`.

    Token j is predicted from hidden j - 1, and token 0 from hidden 0. When the
    fed tokens start at canvas slot `first_fed` (a window forward), rows are
    counted from there; to predict a window [s, e) feed slots [s - 1, e).
    """
    return (positions - 1).clamp_min(0) - first_fed


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
        cache: KVCache | None = None,
        slots: torch.Tensor | None = None,
        write_cache: bool = True,
        logits_index: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> CausalLMOutput:
        """Logits for `input_ids` [B, T].

        attention_mask [B, T]: 1 for real tokens, 0 for padding (full forwards).
            A window forward takes the mask stored in the cache by prefill.
        position_ids [B, T]: RoPE positions. Default: counted over real tokens
            (so left padding does not shift them), or the cache's for a window.
        causal: attend only to earlier slots (the autoregressive Qwen3 mode).
        cache: a KVCache; without `slots`, T must equal cache.slots and the
            cache is filled (prefill).
        slots [T]: canvas slots of the fed tokens for a window forward.
        write_cache: store the window's fresh K/V in the cache.
        logits_index: rows to compute logits for (default all): [K] for every
            batch row, [B, K] per batch row, or a (batch [N], row [N]) pair
            for N scattered rows, which gives logits [N, V].
        Returns CausalLMOutput whose logits [B, K or T, V] (model dtype) hold,
        in row r, the prediction made from hidden row r (see prediction_rows).
        """
        B, T = input_ids.shape
        device = input_ids.device
        if slots is not None:
            if cache is None:
                raise ValueError("a window forward (slots=...) needs a cache filled by prefill")
            if slots.shape != (T,):
                raise ValueError(f"slots must have shape ({T},), got {tuple(slots.shape)}")
            key_mask = cache.key_mask
            query_slots = slots
            if position_ids is None:
                position_ids = cache.position_ids[:, slots] if cache.position_ids is not None else slots.expand(B, T)
        else:
            key_mask = None if attention_mask is None or bool(attention_mask.all()) else attention_mask.bool()
            query_slots = torch.arange(T, device=device)
            if position_ids is None:
                position_ids = default_position_ids(key_mask, B, T, device)
            if cache is not None:
                if cache.slots != T or cache.batch != B:
                    raise ValueError(f"prefill of {B}x{T} tokens into a cache of {cache.batch}x{cache.slots} slots")
                cache.key_mask = key_mask
                cache.position_ids = position_ids

        n_keys = cache.slots if cache is not None else T
        mask = attention_mask_for(key_mask, query_slots, n_keys, causal)
        x = self.model.embed_tokens(input_ids)
        cos, sin = rope_cos_sin(position_ids, self.config.head_dim, self.config.rope_parameters["rope_theta"], x.dtype)
        for i, layer in enumerate(self.model.layers):
            cache_kv = (cache.k[i], cache.v[i]) if cache is not None else None
            x = layer(x, cos, sin, mask, cache_kv, slots, write_cache)
        x = self.model.norm(x)

        if isinstance(logits_index, tuple):
            batch_index, row_index = logits_index
            x = x[batch_index, row_index]
        elif logits_index is not None:
            if logits_index.dim() == 1:
                x = x[:, logits_index]
            else:
                x = x.gather(1, logits_index[..., None].expand(-1, -1, x.shape[-1]))
        return CausalLMOutput(logits=self.lm_head(x))

    def new_cache(self, batch: int, slots: int) -> KVCache:
        """An empty cache on the model's device and dtype."""
        return KVCache.empty(self.config, batch, slots, device=self.device, dtype=self.dtype)


AutoModel.register(CoDAConfig, CoDALanguageModel)
