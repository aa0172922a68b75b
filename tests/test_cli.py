"""The command line's help and its errors, through its public entry point (tests/browser runs
``python -m panel_langchain_steps view``)."""

from __future__ import annotations

import json

import pytest

from panel_langchain_steps.cli import main


def test_help_documents_view(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["view", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "usage: panel-langchain-steps view" in text
    for words in ("FILE", "--port", "127.0.0.1", "LangSmith", "OTLP JSON", "--prices"):
        assert words in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ('{"format": "panel-langchain-steps/trace", "version": 99, "runs": []}', "unknown trace version 99"),
        ('[{"id": "a", "run_type": "chain", "start_time": 5}]', r"runs.json[0].start_time: expected an ISO"),
    ],
)
def test_bad_files_exit_with_a_message(tmp_path, capsys, content, message):
    path = tmp_path / "runs.json"
    path.write_text(content, encoding="utf-8")
    assert main(["view", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_bad_prices_exit_with_a_message(tmp_path, capsys):
    path = tmp_path / "runs.json"
    path.write_text(json.dumps([]), encoding="utf-8")
    assert main(["view", str(path), "--prices", "[1, 2]"]) == 2
    assert "panel-langchain-steps:" in capsys.readouterr().err
