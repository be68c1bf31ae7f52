"""Bad input: each case fails with a clear error of a documented type."""

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from coda_core.config import config_from_dict, load_config
from coda_core.errors import CheckpointError, CodaError, ConfigError, ModelNotFoundError, UnsafeCheckpointError
from coda_core.loading import load_model
from coda_core.tokenizer import load_tokenizer

from small_models import small_model


@pytest.fixture
def saved(tmp_path):
    small_model(seed=40).save_pretrained(tmp_path)
    return tmp_path


def test_errors_share_one_base():
    for cls in (ModelNotFoundError, ConfigError, CheckpointError, UnsafeCheckpointError):
        assert issubclass(cls, CodaError)
    assert issubclass(UnsafeCheckpointError, CheckpointError)


def test_missing_directory(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model("./relative/org-looking/path")


def test_a_file_instead_of_a_directory(saved):
    with pytest.raises(ModelNotFoundError, match="is a file"):
        load_model(saved / "config.json")


def test_hub_id_offline_with_empty_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError) as err:
        load_model("Salesforce/CoDA-v0-Instruct")
    message = str(err.value)
    assert "Salesforce/CoDA-v0-Instruct" in message and "hf download" in message


def test_corrupt_safetensors_header(saved):
    weights = saved / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:40] = b"{not json at all!!!!!!!!!!!!!!!!"
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors is not a readable safetensors file"):
        load_model(saved)


def test_truncated_safetensors(saved):
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(saved)


def test_config_missing_required_fields(saved):
    config = json.loads((saved / "config.json").read_text())
    del config["hidden_size"], config["num_key_value_heads"]
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="missing required field\\(s\\): hidden_size, num_key_value_heads"):
        load_model(saved)


def test_config_bad_values_and_json(saved):
    with pytest.raises(ConfigError, match="num_attention_heads must be a multiple of num_key_value_heads"):
        config_from_dict(dict(vocab_size=10, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                              num_attention_heads=3, num_key_value_heads=2))
    with pytest.raises(ConfigError, match="hidden_size"):
        config_from_dict(dict(vocab_size=10, hidden_size="big", intermediate_size=8, num_hidden_layers=1,
                              num_attention_heads=2, num_key_value_heads=2))
    with pytest.raises(ConfigError, match="model_type 'llama'"):
        config_from_dict(dict(model_type="llama", vocab_size=10, hidden_size=8, intermediate_size=8,
                              num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    (saved / "config.json").write_text("{oops")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(saved)
    (saved / "config.json").unlink()
    with pytest.raises(ConfigError, match="has no config.json"):
        load_model(saved)


def test_tensor_shape_mismatch(saved):
    config = json.loads((saved / "config.json").read_text())
    config["intermediate_size"] = 96
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"tensor model\.layers\.0\.mlp\.\w+_proj\.weight has shape"):
        load_model(saved)


def test_missing_and_unexpected_tensors(saved):
    state = small_model(seed=41).state_dict()
    del state["model.layers.1.mlp.up_proj.weight"]
    save_file({k: v.contiguous() for k, v in state.items()}, saved / "model.safetensors")
    with pytest.raises(CheckpointError, match="lacks tensor\\(s\\) model.layers.1.mlp.up_proj.weight"):
        load_model(saved)
    state = small_model(seed=41).state_dict()
    state["model.layers.9.extra.weight"] = torch.zeros(2)
    save_file({k: v.contiguous() for k, v in state.items()}, saved / "model.safetensors")
    with pytest.raises(CheckpointError, match="does not use: model.layers.9.extra.weight"):
        load_model(saved)


def test_shard_index_naming_a_missing_shard(saved):
    state = small_model(seed=42).state_dict()
    (saved / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: "model-00001-of-00002.safetensors" for k in state}}))
    with pytest.raises(CheckpointError, match="model-00001-of-00002.safetensors"):
        load_model(saved)


class _Payload:
    """Unpickling this runs code: it would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_only_checkpoint_is_refused_unopened(saved, tmp_path):
    (saved / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    (saved / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    (saved / "extra.pt").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(UnsafeCheckpointError, match="only pickle-based weights \\(extra.pt, pytorch_model.bin\\)"):
        load_model(saved)
    assert not marker.exists()


def test_no_weights_at_all(saved):
    (saved / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="has no weights"):
        load_model(saved)


def test_tokenizer_errors(tmp_path):
    with pytest.raises(ModelNotFoundError):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no tokenizer files"):
        load_tokenizer(tmp_path)


def test_config_features_the_runtime_lacks_are_refused():
    base = dict(vocab_size=10, hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2,
                num_key_value_heads=2)
    with pytest.raises(ConfigError, match="rope_type 'yarn'"):
        config_from_dict(dict(base, model_type="qwen3", rope_theta=1e6,
                              rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32}))
    with pytest.raises(ConfigError, match="sliding-window"):
        config_from_dict(dict(base, use_sliding_window=True, sliding_window=4, max_window_layers=0))
    with pytest.raises(ConfigError, match="hidden_act 'gelu'"):
        config_from_dict(dict(base, hidden_act="gelu"))


def test_devices_and_mistyped_paths(tmp_path):
    from coda_core.loading import resolve_device

    with pytest.raises(CodaError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(CodaError, match="no CUDA"):
            resolve_device("cuda")
    # a missing directory under an existing parent is a local path, never a hub lookup
    (tmp_path / "models").mkdir()
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model(tmp_path / "models" / "coda-missing")


def test_decode_options_are_validated():
    from coda_core.denoise import DecodeOptions

    for bad in (dict(max_per_step=0), dict(steps=0), dict(steps=-3), dict(eps=1.5), dict(alg_temp=-1),
                dict(factor=0), dict(threshold=0), dict(refresh="sometimes"), dict(alg="random")):
        with pytest.raises(ValueError):
            DecodeOptions(**bad)


# -- bundled models: "coda-mini" names the folder inside the package -----------------------------

def _no_hub(monkeypatch):
    """Make any hub lookup fail the test: a bundled name must never reach it."""
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError(f"the hub was asked for {args} {kwargs}")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)


def test_coda_mini_resolves_to_the_package_folder_without_the_hub(coda_mini_dir, monkeypatch):
    from pathlib import Path

    import coda_core
    from coda_core.bundled import BUNDLED_MODELS, DEFAULT_MODEL
    from coda_core.loading import resolve_model_dir

    _no_hub(monkeypatch)
    # the folder a non-editable install finds beside the code (pyproject.toml ships it as package data)
    assert BUNDLED_MODELS["coda-mini"] == Path(coda_core.__file__).parent / "assets" / "coda-mini" == coda_mini_dir
    assert DEFAULT_MODEL == "coda-mini"
    assert resolve_model_dir("coda-mini") == coda_mini_dir
    assert resolve_model_dir("coda-mini", weights=False) == coda_mini_dir


def test_a_local_folder_named_like_a_bundled_model_needs_a_path(tiny_model_dir, tmp_path, monkeypatch):
    """The bare name is the bundled model even with ./coda-mini in the cwd; ./coda-mini or a Path is local."""
    from pathlib import Path

    from coda_core.bundled import BUNDLED_MODELS
    from coda_core.loading import resolve_model_dir

    _no_hub(monkeypatch)
    # the tiny model stands in for the bundled one, so this runs before the real folder is built
    monkeypatch.setitem(BUNDLED_MODELS, "coda-mini", tiny_model_dir)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "coda-mini").mkdir()
    assert resolve_model_dir("coda-mini") == tiny_model_dir
    assert resolve_model_dir("./coda-mini").resolve() == (tmp_path / "coda-mini").resolve()
    assert resolve_model_dir(Path("coda-mini")).resolve() == (tmp_path / "coda-mini").resolve()


def test_a_missing_or_weightless_bundled_model_is_a_broken_install(saved, tmp_path, monkeypatch):
    from coda_core.info import model_info
    from coda_core.bundled import BUNDLED_MODELS

    _no_hub(monkeypatch)
    monkeypatch.setitem(BUNDLED_MODELS, "coda-mini", tmp_path / "gone")
    for load in (load_model, model_info):
        with pytest.raises(ModelNotFoundError, match="bundled model coda-mini is missing or incomplete") as err:
            load("coda-mini")
        assert "reinstall" in str(err.value) and "\n" not in str(err.value)
    (saved / "model.safetensors").unlink()  # config and tokenizer but no weights: broken too
    monkeypatch.setitem(BUNDLED_MODELS, "coda-mini", saved)
    with pytest.raises(ModelNotFoundError, match="reinstall"):
        load_model("coda-mini")


def test_default_model_is_coda_model_else_coda_mini(monkeypatch):
    from coda_core.bundled import default_model

    monkeypatch.delenv("CODA_MODEL", raising=False)
    assert default_model() == "coda-mini"
    monkeypatch.setenv("CODA_MODEL", "")  # set but empty counts as unset
    assert default_model() == "coda-mini"
    monkeypatch.setenv("CODA_MODEL", "models/tiny")
    assert default_model() == "models/tiny"
