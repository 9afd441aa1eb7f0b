"""The README's quick start succeeds as written on a fresh clone.

The shell blocks between the README's quick-start markers are run by bash, unchanged but for the
server's address and the API key the first start printed, in a directory laid out like a
checkout after `make run` (`.venv`, `./var/thrad.db`), with no THRAD_* variable set. Each
`# ...` line after a command is output the reader is told to expect, and must appear, in order.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.integration.server import ServerProcess, clean_env

ROOT = Path(__file__).resolve().parents[2]
BEGIN = "<!-- quick-start:"
END = "<!-- quick-start: end -->"


def quick_start_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(BEGIN)
    section = readme[start : readme.index(END, start)]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def expected_lines(block: str) -> list[str]:
    return [line[2:].strip() for line in block.splitlines() if line.startswith("# ")]


def test_the_readme_quick_start_runs_as_written(tmp_path: Path) -> None:
    blocks = quick_start_blocks()
    assert len(blocks) >= 3, "the quick start lost its blocks"
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    server = ServerProcess(f"sqlite:///{tmp_path / 'var' / 'thrad.db'}", tmp_path / "server.log")
    try:
        found = re.search(r"shown only once:\s+(thr_\S+)", server.log())
        assert found, server.log()
        script = "\n".join(blocks)
        script = script.replace("http://127.0.0.1:8080", server.base_url)
        script = script.replace("thr_2bV...", found.group(1))
        env = {k: v for k, v in clean_env("unused").items() if k != "THRAD_DATABASE_URL"}
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        output = done.stdout.replace("\r", "")
        position = 0
        for line in (line for block in blocks for line in expected_lines(block)):
            at = output.find(line, position)
            assert at >= 0, f"expected {line!r} in the output:\n{output}"
            position = at + len(line)
    finally:
        server.stop()
    assert not server.error_lines()
