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


def test_each_command_is_registered_by_the_module_named_for_it():
    """A command parses with only its own module imported (`COMMANDS`), so the table must hold
    every command, each with the module that registers it."""
    import argparse
    import importlib

    from localrag.cli import COMMANDS

    registered = {}
    for name in COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"localrag.cli.{name}").register(sub)
        registered |= dict.fromkeys(sub.choices, name)
    assert registered == COMMANDS


@pytest.mark.parametrize(
    ("argv", "modules"),
    [
        (["search", "x"], ["library"]),
        (["--home", "ask", "-v", "ask", "q"], ["ask"]),  # the home folder's name is no command
        ([], ["tui"]),
        (["-v"], ["tui"]),
        (["--help"], COMMAND_MODULES),
        (["serach", "x"], COMMAND_MODULES),  # argparse's error lists every command
    ],
)
def test_a_command_imports_only_its_own_module(argv, modules):
    from localrag.cli import modules_for

    assert modules_for(argv) == modules


def test_a_fresh_command_does_not_import_the_others(tmp_path):
    code = (
        "import sys\n"
        "from localrag.cli import main\n"
        "main(['--home', sys.argv[1], 'docs'])\n"
        "assert 'gguf' not in sys.modules and 'textual' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
    )
    assert "no vault here yet" in result.stderr and result.returncode == 0, result.stderr


def test_a_terminated_command_cleans_up_as_after_ctrl_c(tmp_path):
    """`kill PID` runs the command's way out: here a temporary folder is removed."""
    import signal
    import time

    code = (
        "import os, sys, tempfile, time\n"
        "import localrag.cli as cli\n"
        "def run(args):\n"
        "    with tempfile.TemporaryDirectory(dir=sys.argv[1]):\n"
        "        print('ready', flush=True)\n"
        "        time.sleep(60)\n"
        "cli.modules_for = lambda argv: ['doctor']\n"
        "import localrag.cli.doctor as doctor\n"
        "doctor.run = run\n"
        "sys.exit(cli.main(['doctor']))\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(work)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 130
    assert list(work.iterdir()) == []
