"""The command line as a user first meets it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from localrag import __version__
from localrag.cli import COMMAND_MODULES, build_parser, main


def test_help_lists_every_command_with_one_line(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps to the terminal: keep each on one line
    with pytest.raises(SystemExit) as exit:
        main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    helps = {}
    for line in out[out.index("\ncommands:") :].splitlines():
        name, _, text = line.strip().partition(" ")
        helps[name] = text.strip()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert len(sub.choices) >= len(COMMAND_MODULES)
    assert [name for name in sub.choices if not helps.get(name, "").strip()] == []


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"localrag {__version__}"


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "localrag", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in result.stdout


def test_core_imports_without_textual():
    code = (
        "import sys, localrag.service, localrag.cli, localrag.doctor\n"
        "from localrag.cli import build_parser\n"
        "build_parser()\n"
        "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if 'textual' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_while_the_app_runs_log_records_stay_off_the_terminal(tmp_path):
    """A log line written to stderr under the app would tear its screen; a log file keeps its."""
    import io
    import logging

    from localrag.cli.tui import logs_off_the_terminal

    terminal, log_file = io.StringIO(), tmp_path / "localrag.log"
    root = logging.getLogger()
    handlers = [logging.StreamHandler(terminal), logging.FileHandler(log_file)]
    for handler in handlers:
        root.addHandler(handler)
    try:
        with logs_off_the_terminal():
            logging.getLogger("localrag.tui.app").warning("Could not add: x.pdf is damaged")
        assert terminal.getvalue() == ""
        handlers[1].flush()
        assert "x.pdf is damaged" in log_file.read_text()
        logging.getLogger("localrag").warning("after the app")
        assert "after the app" in terminal.getvalue()
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
