"""ControlPlane.stop_component/start_component/restart_component, on a stand-in process.

A ``sleep`` stands in for a component (its health probe is stubbed to "the process runs"), so the
bookkeeping is checked without the Kubernetes binaries: a stopped component keeps its pid record,
and comes back with exactly its argv. tests/faults restarts the real kube-apiserver this way.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from tools import controlplane
from tools.controlplane import ClusterState, ControlPlane, ControlPlaneError


@pytest.fixture
def plane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ControlPlane:
    cp = ControlPlane(tmp_path / "cp", progress=lambda _m: None)
    for folder in (cp.run_dir, cp.log_dir):
        folder.mkdir(parents=True)
    state = ClusterState(ports={"kwok": 1}, kubeconfig="", server="", kubernetes_version="", etcd_version="",
                         kwok_version="", started_at=time.time())  # fmt: skip
    cp.state_file.write_text(json.dumps(asdict(state)))

    def probe(name: str, _state: ClusterState) -> tuple[bool, str]:
        rec = cp._pid_records()[name]
        return controlplane._alive(rec.pid, rec.start_time), "stub"

    monkeypatch.setattr(cp, "_probe", probe)
    return cp


def test_a_stopped_component_comes_back_with_its_argv(plane: ControlPlane) -> None:
    first = plane._spawn("kwok", ["sleep", "60"])
    try:
        assert plane.start_component("kwok").pid == first.pid, "a running component is left alone"
        plane.stop_component("kwok", sig=signal.SIGKILL)
        assert not controlplane._alive(first.pid, first.start_time)
        assert plane._pid_records()["kwok"].pid == first.pid, "the record (argv) stays"
        second = plane.start_component("kwok")
        assert second.pid != first.pid and second.argv == first.argv == ["sleep", "60"]
        assert controlplane._alive(second.pid, second.start_time)
        third = plane.restart_component("kwok", down=0.1)
        assert third.pid != second.pid and third.argv == first.argv
        assert not controlplane._alive(second.pid, second.start_time)
        assert (plane.log_dir / "kwok.log").read_text().count("### ") == 3, "every start is logged"
    finally:
        plane.stop(quiet=True)
    assert not controlplane._alive(third.pid, third.start_time)


def test_a_component_that_never_ran_cannot_be_stopped_or_started(plane: ControlPlane) -> None:
    with pytest.raises(ControlPlaneError, match="never started"):
        plane.stop_component("kube-apiserver")
    with pytest.raises(ControlPlaneError, match="never started"):
        plane.start_component("kube-apiserver")
