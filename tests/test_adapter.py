"""Adapters: what is refused and why, the fit checks, and the version registry (no llama.cpp)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from localrag.adapter import convert, manage, peft
from localrag.adapter.registry import AdapterInfo, Registry, Version
from localrag.adapter.sample import make_peft_adapter
from localrag.errors import AdapterError, UsageError
from localrag.settings import Settings
from localrag.store import create_vault

PASS = bytearray(b"adapter test passphrase")

# A two-layer llama with 4 query heads and 2 key/value heads of 4 dimensions.
TINY = convert.BaseShape(
    "llama",
    2,
    4,
    2,
    {
        f"blk.{i}.{name}.weight": shape
        for i in range(2)
        for name, shape in {
            "attn_q": (16, 16),
            "attn_k": (8, 16),
            "attn_v": (8, 16),
            "attn_output": (16, 16),
            "ffn_gate": (32, 16),
            "ffn_up": (32, 16),
            "ffn_down": (16, 32),
        }.items()
    },
)


@pytest.fixture
def tiny_adapter(tmp_path: Path) -> Path:
    return make_peft_adapter(TINY, tmp_path / "tiny", rank=4, alpha=8)


def test_peft_adapter_converts_to_gguf_names_with_rotary_permutation(tiny_adapter: Path) -> None:
    adapter = peft.load_peft(tiny_adapter)
    lora = convert.peft_to_lora(adapter, TINY)
    assert len(lora.tensors) == 14 and lora.rank == 4 and lora.alpha == 8
    hf_a, hf_b = adapter.pairs["model.layers.1.self_attn.q_proj"]
    a, b = lora.tensors["blk.1.attn_q.weight"]
    np.testing.assert_array_equal(a, hf_a)
    # Rows of each head are interleaved as llama.cpp's converter does: (0, 2, 1, 3) per head.
    np.testing.assert_array_equal(b[:4], hf_b[[0, 2, 1, 3]])
    np.testing.assert_array_equal(b[4:8], hf_b[[4, 6, 5, 7]])
    _, k_b = lora.tensors["blk.0.attn_k.weight"]
    assert not np.array_equal(k_b, adapter.pairs["model.layers.0.self_attn.k_proj"][1])
    _, v_b = lora.tensors["blk.0.attn_v.weight"]
    np.testing.assert_array_equal(v_b, adapter.pairs["model.layers.0.self_attn.v_proj"][1])


def test_rslora_scale_is_folded_into_b(tiny_adapter: Path) -> None:
    config = json.loads((tiny_adapter / peft.CONFIG).read_text())
    (tiny_adapter / peft.CONFIG).write_text(json.dumps(config | {"use_rslora": True}))
    adapter = peft.load_peft(tiny_adapter)
    lora = convert.peft_to_lora(adapter, TINY)
    a, b = adapter.pairs["model.layers.0.mlp.up_proj"]
    la, lb = lora.tensors["blk.0.ffn_up.weight"]
    # PEFT scales rsLoRA by alpha/sqrt(r); llama.cpp applies alpha/r: the merge must equal PEFT's.
    np.testing.assert_allclose(
        lora.scale("blk.0.ffn_up.weight") * lb @ la, 8 / 2 * b @ a, rtol=1e-5
    )


def test_pickle_adapters_are_refused_with_the_reason(tmp_path: Path) -> None:
    for name in ("adapter_model.bin", "adapter.pt"):
        path = tmp_path / name
        path.write_bytes(b"\x80\x04not really")
        with pytest.raises(AdapterError, match=r"pickle.*arbitrary code"):
            peft.refuse_pickle(path)
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(AdapterError, match=r"adapter_model\.bin: pickle"):
        peft.load_peft(folder)


def test_missing_config_is_named(tiny_adapter: Path) -> None:
    (tiny_adapter / peft.CONFIG).unlink()
    with pytest.raises(AdapterError, match=r"no adapter_config\.json"):
        peft.load_peft(tiny_adapter)


def test_truncated_safetensors_is_named(tiny_adapter: Path) -> None:
    weights = tiny_adapter / peft.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(AdapterError, match=r"adapter_model\.safetensors: truncated"):
        peft.load_peft(tiny_adapter)
    weights.write_bytes(b"\x05\x00")
    with pytest.raises(AdapterError, match="truncated"):
        peft.load_peft(tiny_adapter)


def test_adapter_for_another_architecture_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "gpt2"
    folder.mkdir()
    peft.write_safetensors(
        folder / peft.WEIGHTS,
        {
            "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight": np.zeros((4, 16)),
            "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight": np.zeros((48, 4)),
        },
    )
    (folder / peft.CONFIG).write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8}))
    with pytest.raises(
        AdapterError, match=r"targets transformer\.h\.0\.attn\.c_attn.*another arch"
    ):
        convert.peft_to_lora(peft.load_peft(folder), TINY)


def test_wrong_shapes_are_named(tmp_path: Path) -> None:
    bigger = convert.BaseShape(
        "llama", 2, 4, 2, {k: (o * 2, i * 2) for k, (o, i) in TINY.shapes.items()}
    )
    folder = make_peft_adapter(bigger, tmp_path / "big", rank=4, targets=("v_proj",))
    with pytest.raises(AdapterError, match=r"B·A is 16×32 but the base's blk\.0\.attn_v.* 8×16"):
        convert.peft_to_lora(peft.load_peft(folder), TINY)
    deeper = convert.BaseShape("llama", 3, 4, 2, {**TINY.shapes, **_layer(2)})
    folder = make_peft_adapter(deeper, tmp_path / "deep", rank=4, layers=range(2, 3))
    with pytest.raises(AdapterError, match="targets layer 2, but the base model has 2 layers"):
        convert.peft_to_lora(peft.load_peft(folder), TINY)


def _layer(i: int) -> dict[str, tuple[int, int]]:
    return {k.replace("blk.0.", f"blk.{i}."): v for k, v in TINY.shapes.items() if "blk.0." in k}


def test_gguf_lora_round_trip_and_architecture_check(tiny_adapter: Path, tmp_path: Path) -> None:
    lora = convert.peft_to_lora(peft.load_peft(tiny_adapter), TINY)
    path = tmp_path / "tiny-lora.gguf"
    convert.write_lora(lora, path)
    back = convert.read_lora(path, TINY)
    assert back.alpha == lora.alpha and set(back.tensors) == set(lora.tensors)
    np.testing.assert_array_equal(
        back.tensors["blk.1.attn_k.weight"][1], lora.tensors["blk.1.attn_k.weight"][1]
    )
    other = convert.BaseShape("qwen2", 2, 4, 2, TINY.shapes)
    with pytest.raises(AdapterError, match="architecture 'llama', but the base model is 'qwen2'"):
        convert.read_lora(path, other)


def _version(name: str, n: int) -> Version:
    return Version(
        name, n, "Q8_0", "base", "b" * 64, "a" * 64, 16.0, 8, 10, f"{n:064d}", "now", 1.0
    )


def _info(name: str) -> AdapterInfo:
    return AdapterInfo(name, "/x", "peft", "a" * 64, 8, 16.0, ["attn_q"], 60, "b" * 64, "now")


def test_use_rollback_and_remove_versions(settings: Settings) -> None:
    with create_vault(settings, bytearray(PASS)) as store:
        registry = Registry(store)
        registry.add_adapter(_info("tone"))
        for n in (1, 2):
            registry.add_version(_version("tone", n))
        with pytest.raises(UsageError, match="exists"):
            registry.add_adapter(_info("tone"))
        assert registry.use("tone") == "tone@v2"  # the latest
        assert registry.use("tone@v1") == "tone@v1"
        # State lives in the vault: a new registry over the same store sees it.
        again = Registry(store)
        assert again.listing().active == "tone@v1"
        assert again.rollback() == "tone@v2"
        assert again.rollback() is None  # the base
        with pytest.raises(AdapterError, match="nothing to roll back"):
            again.rollback()
        again.use("tone@v2")
        assert again.remove("tone@v2") == ["adapter/tone@v2/model.gguf"]
        assert again.listing().active is None
        assert again.next_version("tone") == 3  # a removed ref is never reused
        with pytest.raises(AdapterError, match=r"no version tone@v2 \(versions: tone@v1\)"):
            again.version("tone@v2")
        assert again.remove("tone") == ["adapter/tone/lora.gguf", "adapter/tone@v1/model.gguf"]
        with pytest.raises(AdapterError, match="no adapter named 'tone'"):
            again.use("tone")


@pytest.mark.models
def test_bad_adapters_register_nothing(real_models: Settings, tmp_path: Path) -> None:
    base = convert.read_base(manage.models.model_path(real_models, "llm"))
    good = make_peft_adapter(base, tmp_path / "good", rank=2, layers=range(1))
    truncated = make_peft_adapter(base, tmp_path / "trunc", rank=2, layers=range(1))
    weights = truncated / peft.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-10])
    small = make_peft_adapter(TINY, tmp_path / "small", rank=2)
    with create_vault(real_models, bytearray(PASS)) as store:
        for bad, reason in [
            (truncated, "truncated"),
            (small, r"down_proj: B·A is 16×32 but the base's blk\.0\.ffn_down\.weight is 576×1536"),
            (tmp_path / "nothing", "no such file"),
        ]:
            with pytest.raises((AdapterError, UsageError), match=reason):
                manage.import_adapter(store, real_models, bad, "bad")
            assert store.blobs() == [] and Registry(store).listing().adapters == []
        info = manage.import_adapter(store, real_models, good, "good")
        assert info.tensor_count == 7 and info.rank == 2
        assert [b.name for b in store.blobs()] == ["adapter/good/lora.gguf"]
        with pytest.raises(UsageError, match="exists"):
            manage.import_adapter(store, real_models, good, "good")


@pytest.mark.models
def test_cli_import_list_and_refusals(
    real_models: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from localrag.cli import main

    monkeypatch.setenv("LOCALRAG_PASSPHRASE", PASS.decode())
    assert main(["init"]) == 0
    # init made the shipped answer model active: remove it, to start from the base alone.
    assert main(["adapter", "rm", "answer"]) == 0
    base = convert.read_base(manage.models.model_path(real_models, "llm"))
    folder = make_peft_adapter(base, tmp_path / "tone", rank=2, layers=range(1))
    gguf_lora = tmp_path / "tone.gguf"
    convert.write_lora(convert.peft_to_lora(peft.load_peft(folder), base), gguf_lora)
    assert main(["adapter", "import", str(folder), "--name", "tone"]) == 0
    assert main(["adapter", "import", str(gguf_lora), "--name", "tone-gguf"]) == 0
    capsys.readouterr()
    assert main(["adapter", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["active"] is None and listing["versions"] == []
    assert [(a["name"], a["source_format"]) for a in listing["adapters"]] == [
        ("tone", "peft"),
        ("tone-gguf", "gguf"),
    ]
    hostile = make_peft_adapter(base, tmp_path / "hostile", rank=2, layers=range(1))
    _rewrite_first_tensor(hostile, lambda e: e | {"shape": [-d for d in e["shape"]]})
    assert main(["adapter", "import", str(hostile), "--name", "x"]) == AdapterError.exit_code
    err = capsys.readouterr().err
    assert "invalid shape" in err and err.count("\n") == 1  # one line, no traceback
    pickled = tmp_path / "adapter_model.bin"
    pickled.write_bytes(b"\x80\x04")
    assert main(["adapter", "import", str(pickled), "--name", "old"]) == AdapterError.exit_code
    assert "pickle" in capsys.readouterr().err
    assert main(["adapter", "use", "tone"]) == AdapterError.exit_code
    assert "no merged version yet; run `localrag adapter merge tone`" in capsys.readouterr().err


def _rewrite_first_tensor(adapter: Path, change) -> None:
    """Rewrite the header entry of the first tensor of an adapter's safetensors file."""
    weights = adapter / peft.WEIGHTS
    data = weights.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    first = next(k for k in header if k != "__metadata__")
    header[first] = change(header[first])
    text = json.dumps(header).encode()
    weights.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size :])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e | {"data_offsets": [str(o) for o in e["data_offsets"]]}, "data offsets"),
        (lambda e: e | {"data_offsets": [-8, e["data_offsets"][1]]}, "data offsets"),
        (lambda e: e | {"shape": [-d for d in e["shape"]]}, "invalid shape"),  # same count
        (lambda e: e | {"shape": [True, 64]}, "invalid shape"),
        (lambda e: e | {"shape": [2**40, 2**40]}, "size does not match"),
        (lambda e: e | {"shape": "4x16"}, "invalid shape"),
        (lambda e: e | {"dtype": ["F32"]}, "dtype"),
        (lambda e: e | {"shape": [0, 16], "data_offsets": [0, 0]}, "disagree on the rank"),
        (lambda e: "F32", "malformed header entry"),
    ],
)
def test_malformed_safetensors_give_one_line_errors(tiny_adapter: Path, change, reason) -> None:
    _rewrite_first_tensor(tiny_adapter, change)
    with pytest.raises(AdapterError, match=reason) as refused:
        peft.load_peft(tiny_adapter)
    assert "\n" not in refused.value.message


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"r": 0}, "r is missing or not a positive number"),
        ({"r": True}, "r is missing"),
        ({"lora_alpha": "16"}, "lora_alpha is missing"),
        ({"alpha_pattern": ["q_proj"]}, "alpha_pattern is not a mapping"),
        ({"alpha_pattern": {"q_proj": "x"}}, "not a number"),
    ],
)
def test_malformed_adapter_configs_give_one_line_errors(
    tiny_adapter: Path, config: dict, reason: str
) -> None:
    path = tiny_adapter / peft.CONFIG
    path.write_text(json.dumps(json.loads(path.read_text()) | config))
    with pytest.raises(AdapterError, match=reason):
        peft.load_peft(tiny_adapter)


def test_adapter_rm_deletes_the_registry_entry_and_its_blobs_together(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with create_vault(settings, bytearray(PASS)) as store:
        registry = Registry(store)
        registry.add_adapter(_info("tone"))
        registry.add_version(_version("tone", 1))
        for blob in ("adapter/tone/lora.gguf", "adapter/tone@v1/model.gguf"):
            store.put_blob(blob, b"weights")
        real, calls = store._delete_blob, []

        def fails_on_the_second(name: str) -> bool:
            calls.append(name)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")  # injected
            return real(name)

        with monkeypatch.context() as broken:
            broken.setattr(store, "_delete_blob", fails_on_the_second)
            with pytest.raises(OSError):
                manage.remove(store, "tone")
        # Nothing happened: the adapter is listed and both files are there.
        assert [a.name for a in Registry(store).listing().adapters] == ["tone"]
        assert len(store.blobs()) == 2
        assert manage.remove(store, "tone") == ["tone", "tone@v1"]
        assert store.blobs() == [] and Registry(store).listing().adapters == []


@pytest.mark.parametrize(
    "header",
    [
        struct.pack("<IQQQ", 3, 0, 1, 2**63),  # a key 2^63 bytes long
        struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<IIQ", 9, 4, 2**62),  # an array
        struct.pack("<IQQQ", 3, 1, 0, 1) + b"t" + struct.pack("<I", 2**31),  # 2^31 dimensions
        struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<I", 99),  # an unknown type
    ],
    ids=["key length", "array length", "dimensions", "value type"],
)
def test_a_corrupt_gguf_header_is_one_clear_error(tmp_path: Path, header: bytes) -> None:
    """Found by `bench reliability`: corrupted counts made the header reader raise MemoryError
    and OverflowError (a traceback) instead of an error naming the file."""
    path = tmp_path / "corrupt.gguf"
    path.write_bytes(b"GGUF" + header + bytes(64))
    with pytest.raises(AdapterError, match=r"corrupt\.gguf: not a readable GGUF header"):
        convert.read_base(path)


def test_a_lora_whose_value_type_became_array_is_refused_quickly(
    tiny_adapter: Path, tmp_path: Path
) -> None:
    """Found by `bench reliability` (mutant 34 of seed 11): the first value's type flipped from
    string to array made gguf's reader walk 7e18 elements (gigabytes, never done). In a child
    process with a time limit, so the test fails rather than hangs."""
    import subprocess
    import sys

    path = tmp_path / "tiny-lora.gguf"
    convert.write_lora(convert.peft_to_lora(peft.load_peft(tiny_adapter), TINY), path)
    data = bytearray(path.read_bytes())
    (key_length,) = struct.unpack_from("<Q", data, 24)
    type_at = 24 + 8 + key_length
    assert struct.unpack_from("<I", data, type_at)[0] == 8  # a string
    struct.pack_into("<I", data, type_at, 9)  # now an array
    path.write_bytes(bytes(data))
    code = (
        "import sys; from pathlib import Path; from localrag.adapter import convert\n"
        "from tests.test_adapter import TINY\n"
        "try:\n    convert.read_lora(Path(sys.argv[1]), TINY)\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )
    assert done.stdout.startswith(f"AdapterError {path}: not a readable GGUF header"), done
