"""agents.cli.plot: a run's TensorBoard scalars drawn to a PNG, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.cli.plot import default_tags, main, read_scalars
from agents.core.run import Run


def make_run(tmp_path: Path) -> Path:
    run = Run(tmp_path / "run")
    for step in range(3):
        run.log({"eval/held_out/win_rate": 0.1 * step, "rollout/return_mean": float(step), "train/loss": 1.0}, step * 100)
    run.close()
    return run.dir


def test_reads_back_every_point_and_picks_the_eval_metrics(tmp_path: Path) -> None:
    scalars = read_scalars(make_run(tmp_path))
    assert scalars["eval/held_out/win_rate"] == [(0, 0.0), (100, pytest.approx(0.1)), (200, pytest.approx(0.2))]
    assert default_tags(scalars) == ["eval/held_out/win_rate"]
    assert default_tags({"rollout/return_mean": [(0, 1.0)], "train/loss": [(0, 1.0)]}) == ["rollout/return_mean"]


def test_cli_writes_a_png_and_rejects_unknown_tags(tmp_path: Path, capsys) -> None:
    run_dir = make_run(tmp_path)
    assert main([str(run_dir)]) == 0
    png = run_dir / "curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main([str(run_dir), "--tags", "eval/nope"]) == 2
    assert "eval/held_out/win_rate" in capsys.readouterr().err  # the error lists what exists
    assert main([str(tmp_path / "empty")]) == 2
