"""A pipeline job receives its node as the driver resolved it: pickled beside the job graph and
fingerprinted, so a job runs exactly what was checked and refuses a node that changed since."""

import json
from functools import partial

import pytest

from seed_core.config import ConfigError
from seed_transfer.pipelines.jobs import Node, read_node, record_file, run_node, write_node


def _node(payload: dict) -> Node:
    # done() is asked in the driver only: a closure there is fine, it is not handed to the job
    return Node("cls digits seed-s1", "cls digits", "seed-s1", "cls", (), lambda: False, partial(dict, payload), True)


def test_a_job_runs_the_node_the_driver_wrote_and_records_its_result(tmp_path):
    path, fingerprint = write_node(tmp_path, _node({"score": 0.5}))
    assert read_node(path, fingerprint).done is None  # the driver's own question stays with the driver
    assert run_node(["--node", str(path), "--fingerprint", fingerprint]) == 0
    record = json.loads(record_file(tmp_path, "cls digits seed-s1").read_text())
    assert (record["stage"], record["row"], record["result"]) == ("cls digits", "seed-s1", {"score": 0.5})
    assert run_node(["--node", str(path), "--fingerprint", fingerprint, "--resume"]) == 0  # a requeue


def test_a_node_rewritten_since_its_job_was_submitted_is_refused(tmp_path):
    path, fingerprint = write_node(tmp_path, _node({"score": 0.5}))
    again, other = write_node(tmp_path, _node({"score": 0.7}))  # a later invocation with other settings
    assert again == path and other != fingerprint
    with pytest.raises(ConfigError, match="is not the node this job was submitted with"):
        run_node(["--node", str(path), "--fingerprint", fingerprint])
    assert not record_file(tmp_path, "cls digits seed-s1").exists()


def test_a_job_without_its_node_is_refused_with_the_form_it_needs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_node(["--resume"])
    assert "--node and --fingerprint are required" in capsys.readouterr().err
