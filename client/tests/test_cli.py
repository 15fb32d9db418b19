"""The `mltrace` command against the live server: mltrace's output, --json, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

import mltrace
from mltrace import ComponentRun, IOPointer
from mltrace.cli.cli import mltrace_cli
from mltrace.db import PointerTypeEnum

T0 = datetime(2024, 1, 1)


def log(component, minute, inputs=(), outputs=(), seconds=60, **kwargs):
    run = ComponentRun(component, **kwargs)
    run.set_start_timestamp(T0 + timedelta(minutes=minute))
    run.set_end_timestamp(T0 + timedelta(minutes=minute, seconds=seconds))
    run.add_inputs(list(inputs))
    run.add_outputs(list(outputs))
    mltrace.log_component_run(run)


@pytest.fixture
def pipeline():
    """etl (2) -> train (3) -> infer (4, 5); the component write of etl is id 1."""
    mltrace.create_component("etl", "Cleans the data", "ana", ["nightly"])
    log("etl", 0, ["raw.csv"], ["clean_data.csv"], code_snapshot="def etl():\n    return 1\n")
    log("train", 10, ["clean_data.csv"], ["model.pkl"], seconds=90)
    log("infer", 20, ["model.pkl"], [IOPointer("pred_1", pointer_type=PointerTypeEnum.ENDPOINT)])
    log("infer", 30, ["model.pkl"], [IOPointer("pred_2", pointer_type=PointerTypeEnum.ENDPOINT)])
    mltrace.flush()


def cli(*args: str) -> str:
    result = CliRunner().invoke(mltrace_cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_inspect_prints_mltraces_info_card(pipeline):
    assert cli("inspect", "2") == (
        "Name: etl\n"
        "├─Owner: ana\n"
        "├─Desc: Cleans the data\n"
        "├─Run ID: 2\n"
        "├─Tags: nightly\n"
        "├─Started: 2024-01-01 00:00:00\n"
        "├─Git commit: None\n"
        "├─Duration: 1.000 mins\n"
        "├─Inputs:\n"
        "│  └─raw.csv\n"
        "├─Outputs:\n"
        "│  └─clean_data.csv\n"
        "├─Code Snapshot:\n"
        "│  def etl():\n"
        "│      return 1\n"
        "└─Dependencies: None\n"
        "\n"
    )


def test_recent_prints_the_newest_runs_up_to_the_limit(pipeline):
    out = cli("recent", "--limit", "2")
    assert [line for line in out.splitlines() if line.startswith("├─Run ID")] == [
        "├─Run ID: 5",
        "├─Run ID: 4",
    ]
    assert "└─Dependencies: train\n" in out


def test_history_prints_the_components_runs(pipeline):
    out = cli("history", "train")
    assert out == (
        "train--3\n"
        "├─Started: 2024-01-01 00:10:00\n"
        "├─Git commit: None\n"
        "├─Duration: 1.500 mins\n"
        "├─Inputs:\n"
        "│  └─clean_data.csv\n"
        "├─Outputs:\n"
        "│  └─model.pkl\n"
        "├─Code Snapshot:\n"
        "\n"
        "└─Dependencies: etl\n"
        "\n"
    )


def test_trace_prints_the_tree(pipeline):
    # mltrace's show_res, line for line, gives this indentation.
    assert cli("trace", "pred_1").splitlines() == [
        "infer",
        "  ├─pred_1",
        "  └─train",
        "    ├─model.pkl",
        "    └─etl",
        "      └─clean_data.csv",
    ]


def test_flag_review_and_unflag(pipeline):
    assert cli("flag", "pred_1") == ""
    assert cli("flag", "pred_2") == ""

    out = cli("review", "--limit", "2")

    assert out.startswith("Flagged outputs:\n├─pred_1\n└─pred_2\n\nName: train\n")
    assert (
        "├─This component has 100.0% coverage: it was used 2 times in producing the flagged outputs.\n" in out
    )
    assert [line for line in out.splitlines() if line.startswith("├─Run ID")] == [
        "├─Run ID: 3",
        "├─Run ID: 2",
    ]
    assert cli("unflag", "--output_id", "pred_1") == ""
    assert mltrace.review_flagged_outputs()[0] == ["pred_2"]
    assert cli("unflag", "--all") == ""
    assert mltrace.review_flagged_outputs() == ([], [])


def test_unflag_needs_exactly_one_target():
    result = CliRunner().invoke(mltrace_cli, ["unflag"])
    assert result.exit_code == 1
    assert result.output == "Error: Need to either set --all=True or specify an --output_id to unflag.\n"
    result = CliRunner().invoke(mltrace_cli, ["unflag", "--all", "--output_id", "x"])
    assert result.exit_code == 1
    assert "Cannot set both." in result.output


def test_components_and_tags(pipeline):
    mltrace.create_component("serve", "", "bo", ["online"])
    assert cli("components", "--owner", "ana") == "Name: etl\n\n"
    assert cli("components", "--tag", "online") == "Name: serve\n\n"
    assert cli("tags") == "['nightly', 'online']\n\n"
    result = CliRunner().invoke(mltrace_cli, ["components", "--owner", "nobody"])
    assert (result.exit_code, result.output) == (
        1,
        "Error: No components could be found with the flags passed.\n",
    )


def test_json_output_is_machine_readable(pipeline):
    card = json.loads(cli("inspect", "3", "--json"))
    assert (card["id"], card["component"], card["dependencies"]) == (3, "train", ["etl"])
    assert card["inputs"] == [{"name": "clean_data.csv", "value": "", "pointer_type": "DATA", "flag": False}]
    assert [run["id"] for run in json.loads(cli("recent", "--json"))] == [5, 4, 3, 2]
    assert json.loads(cli("trace", "pred_1", "--json"))[0]["id"] == "componentrun_4"
    assert json.loads(cli("tags", "--json")) == ["nightly"]
    cli("flag", "pred_2")
    review = json.loads(cli("review", "--json"))
    assert review["flagged"] == ["pred_2"]
    assert [(item["run"]["id"], item["count"]) for item in review["runs"]] == [(5, 1), (3, 1), (2, 1)]


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it."""
    script = os.path.join(os.path.dirname(sys.executable), "mltrace")
    return subprocess.run(
        [script, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )


def test_the_console_script_reads_its_server_from_the_environment(server, pipeline):
    result = run_cli("trace", "pred_2", MLTRACE_SERVER_URL=server.url, MLTRACE_TOKEN=server.token)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["infer", "  ├─pred_2"]


def test_an_unknown_output_is_one_line_and_a_non_zero_exit(server):
    result = run_cli("trace", "nothing", "--server", server.url, "--token", server.token)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "Error: ID nothing does not exist.\n"


def test_a_bad_token_is_one_line(server):
    result = run_cli("recent", "--server", server.url, "--token", "wrong")
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: the mltrace server at {server.url} needs a valid token (MLTRACE_TOKEN or set_server): "
        "Invalid token.\n"
    )


def test_a_server_that_is_down_is_one_line():
    from server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("tags", "--server", url)
    assert result.returncode == 1
    assert result.stderr == f"Error: cannot reach the mltrace server at {url}: connection refused\n"


def test_address_is_the_servers_host(server, pipeline):
    result = run_cli(
        "tags", "--address", "localhost", MLTRACE_SERVER_URL=server.url, MLTRACE_TOKEN=server.token
    )
    assert (result.returncode, result.stdout) == (0, "['nightly']\n\n"), result.stderr


def test_clear_is_not_supported():
    result = CliRunner().invoke(mltrace_cli, ["clear"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: mltrace.clean_db() is not supported")


def test_a_server_that_never_answers_is_given_up_on(tmp_path):
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    try:
        started = time.monotonic()
        # A process that did not bound its wait would take 600 s (120 s per request), and be
        # killed at run_cli's 60 s.
        result = run_cli("tags", "--server", url, MLTRACE_READ_TIMEOUT="600")
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert result.returncode == 1
    assert result.stderr == f"Error: cannot reach the mltrace server at {url}: timed out\n"
    # About 3 s (the command's bound) and the start-up: only a stall of over 35 s fails this.
    assert elapsed < 40


def test_impact_prints_the_runs_downstream_as_a_tree(pipeline):
    assert cli("impact", "clean_data.csv").splitlines() == [
        "clean_data.csv",
        "└── train (run 3, 2024-01-01T00:10:00Z)",
        "    ├── infer (run 4, 2024-01-01T00:20:00Z)",
        "    └── infer (run 5, 2024-01-01T00:30:00Z)",
    ]
    assert cli("impact", "clean_data.csv", "--depth", "1").splitlines() == [
        "clean_data.csv",
        "└── train (run 3, 2024-01-01T00:10:00Z)",
    ]
    body = json.loads(cli("impact", "model.pkl", "--json"))
    assert [(n["depth"], n["run"]["id"]) for n in body["nodes"]] == [(1, 4), (1, 5)]


# --- monitoring: tasks and metrics (not in mltrace's CLI) --------------------------------


@pytest.fixture
def monitored():
    """churn: outputs a-d, feedback a, b and e, so pairs a (1, 1) and b (0, 1); fraud: feedback only."""
    churn = mltrace.Task("churn")
    churn.logOutputs([1, 0], ["a", "b"])
    churn.logOutputs([1, 1], ["c", "d"])
    churn.logFeedbacks([1, 1, 0], ["a", "b", "e"])
    mltrace.Task("fraud").logFeedback(1, "x")
    mltrace.flush()


def test_tasks_lists_outputs_feedback_pairs_and_the_feedback_share(monitored):
    assert cli("tasks") == (
        "name   outputs  feedback  pairs  feedback share\n"
        "churn        4         3      2           50.0%\n"
        "fraud        0         1      0               -\n"
    )
    tasks = json.loads(cli("tasks", "--json"))
    assert [(t["name"], t["outputs"], t["feedback"], t["pairs"], t["feedback_share"]) for t in tasks] == [
        ("churn", 4, 3, 2, 0.5),
        ("fraud", 0, 1, 0, None),
    ]


def test_tasks_without_any():
    assert cli("tasks") == "No tasks.\n"
    assert json.loads(cli("tasks", "--json")) == []


def test_metrics_of_a_task_over_every_pair_or_a_window(monitored):
    assert cli("metrics", "churn", "--metric", "accuracy") == "churn: 2 pairs (all)\naccuracy  0.5\n"
    # The last pair by output time: b, logged after a (output 0, feedback 1).
    assert cli("metrics", "churn", "--metric", "accuracy", "--window-pairs", "1") == (
        "churn: 1 pair (the last 1 by output time)\naccuracy  0\n"
    )
    assert cli("metrics", "churn", "--metric", "mean_absolute_error", "--window-seconds", "3600") == (
        "churn: 2 pairs (output in the last 3600 seconds)\nmean_absolute_error  0.5\n"
    )


def test_metrics_without_metric_computes_every_supported_one(monitored):
    lines = cli("metrics", "churn").splitlines()

    assert lines[0] == "churn: 2 pairs (all)"
    assert [line.split()[0] for line in lines[1:]] == list(mltrace.supported_sklearn_metrics)
    assert "accuracy               0.5" in lines
    assert "recall                 0.5" in lines
    assert "precision              1" in lines
    (roc_auc,) = [line for line in lines if line.startswith("roc_auc ")]
    assert roc_auc.startswith("roc_auc                undefined: ")  # one class of feedback
    (matrix,) = [line for line in lines if line.startswith("confusion_matrix ")]
    assert matrix.startswith("confusion_matrix       [[0, 0], [1, 1]] (labels [")

    body = json.loads(cli("metrics", "churn", "--json"))
    assert list(body) == list(mltrace.supported_sklearn_metrics)
    assert {key: body["accuracy"][key] for key in ("task", "metric", "value", "pairs", "window")} == {
        "task": "churn",
        "metric": "accuracy",
        "value": 0.5,
        "pairs": 2,
        "window": None,
    }
    assert body["confusion_matrix"]["value"] == [[0, 0], [1, 1]]
    assert body["roc_auc"]["value"] is None and body["roc_auc"]["reason"]
    windowed = json.loads(cli("metrics", "churn", "--metric", "f1", "--window-pairs", "2", "--json"))
    assert windowed["f1"]["window"] == {"pairs": 2}
    assert windowed["f1"]["value"] == pytest.approx(2 / 3)


def test_metrics_errors_are_one_line(monitored):
    result = CliRunner().invoke(mltrace_cli, ["metrics", "nobody"])
    assert (result.exit_code, result.output) == (1, "Error: Unknown task: nobody.\n")
    result = CliRunner().invoke(
        mltrace_cli, ["metrics", "churn", "--window-seconds", "60", "--window-pairs", "10"]
    )
    assert (result.exit_code, result.output) == (
        1,
        "Error: Give --window-seconds or --window-pairs, not both.\n",
    )
    result = CliRunner().invoke(mltrace_cli, ["metrics", "churn", "--metric", "nope"])
    assert result.exit_code == 2 and "'nope' is not one of 'accuracy', 'precision'" in result.output
