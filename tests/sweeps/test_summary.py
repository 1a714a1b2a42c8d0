"""The sweep's summary files, without an MLflow store."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from sweeps import summary


def fake_tracker(artifact_uri: str, downloaded=None):
    """A tracker whose runs store their artifacts at artifact_uri; downloads are recorded."""
    calls = []

    def download(run_id, path):
        calls.append((run_id, path))
        return str(downloaded)

    client = SimpleNamespace(get_run=lambda run_id: SimpleNamespace(info=SimpleNamespace(artifact_uri=artifact_uri)),
                             download_artifacts=download)
    return SimpleNamespace(client=client), calls


def write_curve(folder):
    folder.mkdir(parents=True)
    curve = np.column_stack([np.arange(0, 30, 10), [0.7, 0.5, 0.25]])  # (3, 2)
    np.savetxt(folder / "cost_curve.csv", curve, fmt=["%d", "%.17g"], delimiter=",", header="iteration,cost",
               comments="")
    return curve


def test_a_local_curve_is_read_in_place(tmp_path):
    run_dir = tmp_path / "mlartifacts" / "my experiment" / "abc" / "artifacts"  # a space: %20 in the URI
    curve = write_curve(run_dir)
    tracker, downloads = fake_tracker(run_dir.as_uri())
    assert np.array_equal(summary.read_curve(tracker, "abc"), curve)
    assert downloads == []
    assert summary.read_curve(fake_tracker((tmp_path / "nowhere").as_uri())[0], "abc") is None


def test_a_server_curve_is_downloaded(tmp_path):
    curve = write_curve(tmp_path / "download")
    tracker, downloads = fake_tracker("mlflow-artifacts:/1/abc/artifacts", tmp_path / "download" / "cost_curve.csv")
    assert np.array_equal(summary.read_curve(tracker, "abc"), curve)
    assert downloads == [("abc", "cost_curve.csv")]
