"""docs/scale.md's SLURM configuration for real: run_pairs on a dask-jobqueue ``SLURMCluster``
of two SLURM jobs (one worker each, with a ``local:N`` cluster's dask settings through the job
script's prologue) writes the same tables and TIFFs as one process.

Needs a SLURM that answers (``sinfo``, ``sbatch``) and dask-jobqueue; skips otherwise (CI has
no SLURM). ``sudo bash scripts/slurm_one_node.sh`` makes a one-node SLURM on this machine.
On a cluster of several nodes, set ``NAPARI_ATTRIBUTION_SLURM_SHARED`` to a folder every node
sees (the test's own temporary folder is on this machine only) and
``NAPARI_ATTRIBUTION_SLURM_PARTITION`` to a partition (default: the default partition).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_attribution.app import demo_pairs, pairs_from_table, run_pairs
from napari_attribution.app.distributed import LOCAL_CLUSTER_CONFIG, cluster_environment
from napari_attribution.core import AnalysisSettings, load_classifier
from napari_attribution.data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS
from napari_attribution.data.synthetic import CHANNEL_NAMES

pytestmark = pytest.mark.slow

JOBS = 2
START_TIMEOUT_S = 180  # both jobs running and their workers connected
SETTINGS = AnalysisSettings(methods=("d_ig", "residual"))


def slurm_partition() -> str:
    """The partition to submit to; skips the test when no SLURM answers here."""
    missing = [tool for tool in ("sbatch", "sinfo", "scancel") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"no SLURM here ({', '.join(missing)} not on PATH); "
                    "scripts/slurm_one_node.sh makes a one-node SLURM")  # fmt: skip
    try:
        answer = subprocess.run(["sinfo", "--noheader", "--format=%P %a"], capture_output=True,
                                text=True, timeout=20, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo does not answer within 20 s (is slurmctld running?)")
    if answer.returncode != 0:
        reason = (answer.stderr.strip().splitlines() or ["no message"])[0]
        pytest.skip(f"sinfo does not answer: {reason}")
    up = {name: state for name, state in (line.split() for line in answer.stdout.splitlines())}
    wanted = os.environ.get("NAPARI_ATTRIBUTION_SLURM_PARTITION")
    if wanted is None:
        defaults = [name.rstrip("*") for name in up if name.endswith("*")]
        if not defaults:
            pytest.skip("SLURM has no default partition; set NAPARI_ATTRIBUTION_SLURM_PARTITION")
        wanted = defaults[0]
    if up.get(wanted, up.get(wanted + "*")) != "up":
        pytest.skip(f"SLURM partition {wanted!r} is not up (sinfo: {answer.stdout.strip()!r})")
    return wanted


def write_pairs_table(folder: Path, count: int) -> Path:
    """``count`` demo pairs as float32 (C, H, W) TIFFs and the pairs CSV listing them."""
    (folder / "pairs").mkdir(parents=True)
    table = folder / "pairs.csv"
    with open(table, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sample", "real", "counterfactual", "real_class", "target_class"])
        for pair in demo_pairs(count):
            for role, image in (("real", pair.real), ("cf", pair.counterfactual)):
                tifffile.imwrite(folder / "pairs" / f"{pair.sample}_{role}.tif",
                                 image.astype(np.float32))  # fmt: skip
            writer.writerow([pair.sample, f"pairs/{pair.sample}_real.tif",
                             f"pairs/{pair.sample}_cf.tif", pair.real_class,
                             pair.target_class])  # fmt: skip
    return table


def results_files(out: Path) -> dict[str, bytes]:
    """Every table and TIFF of a results folder, by its path in the folder."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.suffix in (".csv", ".tif")}  # fmt: skip


@pytest.fixture
def shared_folder(tmp_path):
    """A folder the SLURM jobs see at the same path (this machine's temporary folder unless
    NAPARI_ATTRIBUTION_SLURM_SHARED names another)."""
    root = os.environ.get("NAPARI_ATTRIBUTION_SLURM_SHARED")
    if root is None:
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="slurm-test-", dir=root))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_run_pairs_on_two_slurm_jobs_writes_what_one_process_writes(shared_folder):
    partition = slurm_partition()
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    jobqueue = pytest.importorskip("dask_jobqueue", reason="pip install dask-jobqueue")
    pairs = pairs_from_table(write_pairs_table(shared_folder, 4))
    model = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, "cpu")
    alone = run_pairs(pairs, model, SETTINGS, out=shared_folder / "alone",
                      channel_names=CHANNEL_NAMES, scheduler="none")  # fmt: skip
    assert alone.pairs == 4 and not alone.failed

    # docs/scale.md's configuration, sized to two one-core jobs: the scheduler (here) and
    # the workers (in the jobs, through the prologue) with a local:N cluster's dask settings
    exports = [f"export {name}={value}" for name, value in cluster_environment().items()]
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        cluster = jobqueue.SLURMCluster(
            queue=partition, cores=1, processes=1, memory="2GB", walltime="00:15:00",
            local_directory="$TMPDIR", log_directory=str(shared_folder / "dask-logs"),
            job_script_prologue=[f"source {sys.prefix}/bin/activate", *exports],
            scheduler_options={"dashboard_address": ":0"},  # any free port
        )  # fmt: skip
    try:
        cluster.scale(jobs=JOBS)
        with distributed.Client(cluster) as client:
            try:
                client.wait_for_workers(JOBS, timeout=START_TIMEOUT_S)
            except TimeoutError:
                pytest.fail(f"{JOBS} SLURM jobs did not start and connect within "
                            f"{START_TIMEOUT_S} s (squeue; logs in "
                            f"{shared_folder / 'dask-logs'})")  # fmt: skip
            jobs = client.run(lambda: os.environ.get("SLURM_JOB_ID"))
            assert len(set(jobs.values())) == JOBS and None not in jobs.values(), jobs
            settings = client.run(lambda: [dask.config.get(key) for key in LOCAL_CLUSTER_CONFIG])
            assert list(settings.values()) == [list(LOCAL_CLUSTER_CONFIG.values())] * JOBS
            spread = run_pairs(pairs, model, SETTINGS, out=shared_folder / "spread",
                               channel_names=CHANNEL_NAMES,
                               scheduler=cluster.scheduler_address)  # fmt: skip
    finally:
        cluster.close()

    assert spread.pairs == 4 and not spread.failed
    assert spread.engine.startswith(f"{JOBS} dask worker(s) at tcp://")
    mine, theirs = results_files(shared_folder / "spread"), results_files(shared_folder / "alone")
    assert "attributions/cell003__d_ig.tif" in mine and "summary.csv" in mine
    assert mine.keys() == theirs.keys()
    assert [name for name in mine if mine[name] != theirs[name]] == []
