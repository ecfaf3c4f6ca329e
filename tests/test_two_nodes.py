"""Two nodes on this machine: ``torchrun --nnodes 2`` (one or two processes per node, rendezvous on
localhost) trains and scores what one process does, and only global rank 0 writes.

Guards: training/distributed.py, training/run_folder.py, scorers/scoring.py."""

import socket
import subprocess
import sys

import pytest

from test_distributed import ENV, deltapref
from test_sharding import FSDP2, STEPS, assert_same_training, commands


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(args: list[str], logs, per_node: int = 1) -> list[tuple[str, str]]:
    """Run ``deltapref ARGS`` as two torchrun nodes (node ranks 0 and 1, each ``per_node``
    processes) meeting at a c10d rendezvous on localhost, as two machines would; each node's
    (stdout, stderr), kept in files under ``logs`` (pipes could fill while the other node runs)."""
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = []
    for node in range(2):
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(node)]
        launcher += ["--nproc_per_node", str(per_node), "--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint]
        launcher += ["--rdzv_id", "deltapref-two-nodes", "-m", "deltapref.cli"]
        out, err = (open(logs / f"node{node}.{name}", "w") for name in ("out", "err"))
        nodes.append((subprocess.Popen(launcher + args, env=dict(ENV), stdout=out, stderr=err), out, err))
    said = []
    for node, (process, out, err) in enumerate(nodes):
        process.wait(timeout=600)
        out.close(), err.close()
        said.append(((logs / f"node{node}.out").read_text(), (logs / f"node{node}.err").read_text()))
        assert process.returncode == 0, said[-1][0][-2000:] + said[-1][1][-3000:]
    return said


@pytest.mark.parametrize("per_node, sharded", [(1, False), (2, False), (1, True)])
def test_two_nodes_train_what_one_process_trains(scored_task, builtin_task, tmp_path, per_node, sharded):
    args, summary, learning_rate = commands(scored_task, str(builtin_task / "tokenizer"))["dpo+rc"]
    world = 2 * per_node
    deltapref(args + STEPS + ["--output_dir", str(tmp_path / "one"), "--per_device_train_batch_size", "16"])
    layout = FSDP2 if sharded else []
    run = args + STEPS + layout + ["--output_dir", str(tmp_path / "nodes"), "--per_device_train_batch_size"]
    (out0, err0), (out1, err1) = two_nodes(run + [str(16 // world)], tmp_path, per_node)
    assert_same_training(tmp_path / "one", tmp_path / "nodes", summary, learning_rate)
    said = [line for line in (out0 + out1).splitlines() if "saved to" in line]
    assert len(said) == 1 and "saved to" in out0  # one result line: global rank 0's, on node 0
    if sharded:
        assert "FSDP2: the model is sharded over 2 processes" in err0 + err1


def test_two_nodes_score_what_one_process_scores(scored_task, tmp_path):
    root = scored_task["root"]
    common = ["score", "--input", scored_task["test"], "--reward_model", str(root / "reward"), "--chunk_size", "16"]
    deltapref(common + ["--output", str(tmp_path / "one.jsonl")])
    two_nodes(common + ["--output", str(tmp_path / "two.jsonl")], tmp_path)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
