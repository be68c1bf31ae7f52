"""Hub models: downloaded once, into the Hugging Face cache, when named and missing; then found there
offline; the editor hears the download's percentage; `coda info` says how large and whether on disk.

The hub is tests/core/fake_hub.py on loopback, driven by the real huggingface_hub client."""

import json

import pytest

from fake_hub import FakeHub
from helpers import coda
from helpers import environment, server_with_statuses, until_loaded

REPO = "org/tiny-coda"


@pytest.fixture
def hub(tiny_model_dir, tmp_path):
    """The fake hub serving the tiny model, and the environment that points the client at it with an
    empty cache."""
    with FakeHub(REPO, tiny_model_dir) as hub:
        yield hub, {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0"}


def weight_downloads(hub: FakeHub) -> int:
    return hub.requests.count(f"GET /{REPO}/resolve/{'c0da' * 10}/model.safetensors")


def test_a_hub_model_is_downloaded_once_then_loads_offline(hub, tiny_model_dir, tmp_path):
    hub, env = hub
    size = (tiny_model_dir / "model.safetensors").stat().st_size
    before = json.loads(coda("info", REPO, "--json", env=env).stdout)["weights"]
    assert before == {"on_disk": False, "hub_id": REPO, "bytes": size}
    assert weight_downloads(hub) == 0  # coda info fetches config and tokenizer only
    src = tmp_path / "ex.py"
    src.write_text("import math\n\n\ndef area(r):\n    return \n")
    first = coda("infill", f"{src}:5:12", "--model", REPO, "--max-new-tokens", "4", "--json", env=env)
    assert first.returncode == 0, first.stderr
    assert weight_downloads(hub) == 1
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    again = coda("infill", f"{src}:5:12", "--model", REPO, "--max-new-tokens", "4", "--json", env=offline)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["text"] == json.loads(first.stdout)["text"] and weight_downloads(hub) == 1
    text = coda("info", REPO, env=offline).stdout
    assert "weights      on disk" in text, text


def test_info_says_what_a_missing_hub_model_weighs(hub, tiny_model_dir):
    hub, env = hub
    text = coda("info", REPO, env=env).stdout
    size = (tiny_model_dir / "model.safetensors").stat().st_size / 1024**3
    assert f"weights      not on disk: {size:.2f} GiB to download once" in text and f"hf download {REPO}" in text


@pytest.mark.asyncio
async def test_the_editor_hears_the_download_percentage(hub):
    hub, env = hub
    async with server_with_statuses({"model": REPO}, environment(**env)) as (client, statuses):
        await until_loaded(client, statuses)
    assert (statuses[0].state, statuses[-1].state) == ("loading", "ready"), statuses
    progress = [s for s in statuses if getattr(s, "percentage", None) is not None]
    percentages = [s.percentage for s in progress]
    assert percentages and percentages == sorted(set(percentages)) and percentages[-1] < 100, percentages
    assert all(s.state == "loading" and f"downloading {REPO}" in s.message for s in progress)
    whole = statuses.index(progress[-1]) + 1  # then the download is whole, and the weights are read
    assert statuses[whole].state == "loading" and "reading its weights" in statuses[whole].message, statuses
