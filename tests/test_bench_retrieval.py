"""`bench retrieval`: real text, real vectors, a fresh `localrag search` and the warm path."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from test_library_cli import tiny_beir

from localrag.bench.retrieval import child, cold_goal, units
from localrag.cli import main
from localrag.settings import Settings


def test_units_are_sentences_then_titles_then_windows(tmp_path: Path) -> None:
    beir = tiny_beir(tmp_path / "beir")
    first = units(beir, 6)
    assert [texts for _, _, texts in first] == [
        ["Capybaras are semi-aquatic rodents of South America."],
        ["Blade cracks in gas turbines grow under cyclic loading."],
        ["Vitamin D supplements increase bone mineral density."],
        ["Caffeine taken late in the day shortens sleep."],
        ["The okapi is the closest living relative of the giraffe."],
        ["Perovskite cells raise photovoltaic efficiency."],
    ]
    more = {doc: texts for doc, _, texts in units(beir, 13)}
    assert more["d1"] == [
        "Capybaras are semi-aquatic rodents of South America.",
        "Capybara ecology",
    ]
    assert more["d2"][1:] == [  # its title, then its one 16-word window (it has 9 words)
        "Turbine fatigue",
        "Blade cracks in gas turbines grow under cyclic loading.",
    ]
    with pytest.raises(SystemExit, match="only"):
        units(beir, 1000)


@pytest.mark.models
def test_bench_retrieval_runs_fresh_processes_on_an_encrypted_bench_vault(
    real_models: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beir = tiny_beir(tmp_path / "beir")
    (beir / "qrels" / "train.tsv").write_text((beir / "qrels" / "test.tsv").read_text())
    argv = ["bench", "retrieval", "--chunks", "12", "--queries", "3", "--cold", "2"]
    assert main([*argv, "--beir", str(beir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fresh_process"]["answered"] == 2  # each fresh search printed hits
    assert report["fresh_process"]["peak_rss_mb"] > 0
    assert report["warm"]["knn_recall@10"] == 1.0  # 12 chunks: the candidates hold them all
    assert report["warm"]["vec0"]["knn_recall@10"] == 1.0  # the path of a fresh process
    assert report["warm"]["same_hits_both_paths"] == "3/3"
    assert report["warm"]["memory_build_s"] >= 0
    assert report["goals"]["fresh_search_s"] == 0.6  # the goal for small vaults
    vault = real_models.home / "bench" / "retrieval-12" / "vault.db"
    assert not vault.read_bytes().startswith(b"SQLite format 3")
    assert main([*argv, "--beir", str(beir), "--json"]) == 0  # built once, reused
    assert json.loads(capsys.readouterr().out)["build_s"] < report["build_s"] + 1


def test_the_fresh_search_goal_follows_the_vaults_size() -> None:
    assert [cold_goal(n) for n in (12, 10_000, 14_479, 100_000, 250_000)] == [
        0.6,
        0.6,
        0.6,
        0.8,
        0.8,
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_fresh_process_reports_its_own_peak_memory_not_the_benchs() -> None:
    held = bytearray(400 * 1024 * 1024)
    held[::4096] = b"\x01" * len(held[::4096])  # touched: resident in this process
    wall, peak_mb, out = child(["--help"], dict(os.environ))
    assert "usage: localrag" in out and wall > 0
    assert 10 < peak_mb < 200, peak_mb  # `localrag --help` alone, not this 400 MB process
    del held
