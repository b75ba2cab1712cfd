"""Device choice (made once per run), CPU threads, autocast, versions."""

import contextlib
import os
import platform

import torch


def choose_device(name: str = "auto") -> tuple[torch.device, str]:
    """(device, description) for "auto" | "cpu" | "cuda"; asking for CUDA where there is none is an error."""
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
        device = torch.device("cuda", torch.cuda.current_device())
        return device, f"{device} ({torch.cuda.get_device_name(device)})"
    if name not in ("auto", "cpu"):
        raise ValueError(f"unknown device {name!r}")
    cap_cpu_threads()
    return torch.device("cpu"), "cpu"


def usable_cpus() -> int:
    """Cores this process may really use: its CPU affinity, lowered by a cgroup v2 quota (docker --cpus)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def cap_cpu_threads() -> None:
    """torch sizes its intra-op pool from the host's cores; more threads than usable cores spin against each other
    (several times slower under a CPU quota). Lower it to the usable cores; a lower setting made by the caller
    (e.g. one thread per Celery worker process, or tests) is left alone."""
    cores = usable_cpus()
    if torch.get_num_threads() > cores:
        torch.set_num_threads(cores)


def bf16_supported(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when enabled; a no-op context elsewhere (CPU runs fp32: the same code, fp32 numbers)."""
    if enabled and bf16_supported(device):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def versions() -> dict:
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
            "cuda": torch.version.cuda if torch.cuda.is_available() else None}
