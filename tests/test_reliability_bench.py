"""`localrag bench reliability` at the tests' sizes: the same code as `make reliability`, a few
kills, failed writes and mutants instead of hundreds, and the zeros asserted."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from localrag.bench import egress, gguf_mutations, hostile, kills, tracing, write_faults
from localrag.bench.reliability import SMALL, verdict
from localrag.embed import HashingEmbedder
from localrag.settings import Settings


def test_a_failed_write_at_each_of_the_first_writes_is_one_clear_line(tmp_path: Path) -> None:
    report = write_faults.run(tmp_path, HashingEmbedder(), 3, update=lambda n: None)
    assert report["writes_in_clean_ingest"] > 3
    assert report["injected"] == report["clear_errors"] == report["retries_completed"] == 3
    assert report["corrupt_vaults"] == report["partial_documents"] == 0
    assert "could not write the vault" in report["example_error"]
    assert verdict({"write_faults": report}) == {"write_faults": True}


def test_header_fields_are_the_counts_and_lengths_of_a_gguf(tmp_path: Path) -> None:
    key = b"general.architecture"
    data = b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, len(key)) + key
    data += struct.pack("<IQ", 8, 5) + b"llama"
    fields, end = gguf_mutations.header_fields(data)
    assert fields == [(4, 4), (8, 8), (16, 8), (24, 8), (52, 4), (56, 8)]
    assert end == len(data)
    mutator = gguf_mutations.Mutator(data, seed=1)
    for _ in range(50):
        kind, patches, cut = mutator.next()
        assert (cut is None) == (kind != "truncation")
        assert all(0 <= at < len(data) for at, _ in patches)


def test_a_failing_part_is_not_met() -> None:
    bad = {"bad": 1, "vault_unharmed": True}
    assert verdict({"gguf": bad}) == {"gguf": False}


@pytest.mark.models
@pytest.mark.slow
def test_mutated_ggufs_are_clear_errors_and_the_vault_is_unharmed(
    real_models: Settings, tmp_path: Path
) -> None:
    report = gguf_mutations.run(
        tmp_path, real_models.models_dir, SMALL["mutants"], update=lambda n: None
    )
    outcomes = report["outcomes"]
    assert report["bad"] == 0, [o["examples"] for o in outcomes.values()]
    assert report["vault_unharmed"]
    assert outcomes["cli models add"]["clear_error"] + outcomes["cli models add"]["accepted"] == 1
    assert outcomes["models add (worker)"]["clear_error"] >= 1  # the worker path ran
    assert sum(o["clear_error"] for o in outcomes.values()) >= SMALL["mutants"]


@pytest.mark.models
@pytest.mark.slow
def test_sigkills_of_add_and_rekey_leave_whole_documents(
    real_models: Settings, tmp_path: Path
) -> None:
    report = kills.run(tmp_path, real_models.models_dir, SMALL["kills"], update=lambda n: None)
    assert report["kills"] >= SMALL["kills"] and report["rekey_kills"] >= 1
    assert report["corrupt_vaults"] == report["partial_documents"] == 0, report["failures"]
    assert report["reruns"] >= 1 and report["reruns_completed"] == report["reruns"]
    assert report["documents"] == 6 and report["documents_lost_by_rekey"] == 0


@pytest.mark.models
@pytest.mark.slow
def test_hostile_files_are_refused_in_bounded_time_and_the_batch_goes_on(
    real_models: Settings, tmp_path: Path
) -> None:
    report = hostile.run(
        tmp_path, real_models.models_dir, SMALL["single_line_bytes"], update=lambda n: None
    )
    assert report["bad"] == 0, report["files"]
    assert report["files"]["docx bomb"]["outcome"] == "rejected"
    assert report["files"]["billion laughs"]["outcome"] == "rejected"
    assert report["batch_good_indexed"] == report["batch_good"] == 6
    assert not report["batch_corrupt"]


@pytest.mark.models
@pytest.mark.slow
def test_the_flow_tries_no_network_and_leaves_no_plaintext(
    real_models: Settings, tmp_path: Path
) -> None:
    report = egress.run(tmp_path, real_models.models_dir, update=lambda n: None)
    assert report["failed_steps"] == 0, report["steps"]
    assert report["python_processes"] >= len(report["steps"])  # the probe was really loaded
    assert report["network_attempts"] == 0
    assert report["plaintext_markers"] == 0, report["steps"]
    added = next(s for s in report["steps"] if s["step"] == "add")["documents_added"]
    assert "scan.pdf" in added and "memo.wav" in added  # OCR and Whisper ran under the guard


@pytest.mark.skipif(
    not (tracing.strace_works() and shutil.which("tesseract")), reason="needs strace, tesseract"
)
def test_the_native_trace_sees_the_lookup_of_tesseract_version(tmp_path: Path) -> None:
    """What the flow's trace counts: `tesseract --version` looks up the machine's own name
    (OpenLDAP, through libcurl's version line), which the Python probe cannot see."""
    trace = tmp_path / "trace.txt"
    subprocess.run([*tracing.strace_prefix(trace), "tesseract", "--version"], capture_output=True)
    assert tracing.network_attempts(trace) != []
    subprocess.run(
        [*tracing.strace_prefix(trace), "tesseract", "--list-langs"], capture_output=True
    )
    assert tracing.network_attempts(trace) == []
