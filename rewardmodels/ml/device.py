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
    use_all_cpu_threads()
    return torch.device("cpu"), "cpu"


def use_all_cpu_threads() -> None:
    """Intra-op threads = the cores this process may use (torch may count the host's, not the container's)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    if torch.get_num_threads() != cores:
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
