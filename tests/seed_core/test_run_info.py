import json

import torch

from seed_core.run_info import hardware, hardware_text, write_run_info


def test_hardware_line_names_cores_memory_and_gpus():
    info = {"cpu": "AMD EPYC", "cpu_cores": 2, "memory": "24 GiB", "gpus": []}
    assert hardware_text(info) == "2 CPU cores (AMD EPYC), 24 GiB memory, no GPU"
    info.update(memory=None, gpus=["NVIDIA H100", "NVIDIA H100"])
    assert hardware_text(info) == "2 CPU cores (AMD EPYC), NVIDIA H100, NVIDIA H100"
    info.update(torch_threads=1)  # recorded since results on the CPU depend on it
    assert hardware_text(info) == "2 CPU cores (AMD EPYC), NVIDIA H100, NVIDIA H100, torch on 1 thread"


def test_the_thread_count_is_recorded():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert hardware()["torch_threads"] == 1 and hardware_text().endswith(", torch on 1 thread")
    finally:
        torch.set_num_threads(before)


def test_run_info_records_the_machine(tmp_path):
    write_run_info(tmp_path)
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["hardware"] == hardware() and info["hardware"]["cpu_cores"] >= 1
