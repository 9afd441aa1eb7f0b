"""`thrad-events rejections`: its options are checked as GET /v1/api/rejections checks them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from thrad_events.cli import main


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [("--limit", "0", "limit"), ("--limit", "1001", "limit"), ("--since", "", "since")],
)
def test_a_bad_option_is_refused_never_ignored(
    tmp_path: Path, option: str, value: str, problem: str
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["migrate", "--database-url", url]).exit_code == 0
    refused = runner.invoke(main, ["rejections", "--database-url", url, option, value])
    assert refused.exit_code == 2, refused.output
    assert problem in refused.output
    shown = runner.invoke(main, ["rejections", "--database-url", url, "--limit", "5"])
    assert shown.exit_code == 0, shown.output
