"""timm for the tests, without torchvision (the parity extra installs timm with --no-deps)."""

import importlib.abc
import importlib.machinery
import sys
import types

import pytest

# --- timm without torchvision --------------------------------------------------------------------

class _Placeholder:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("torchvision stand-in: timm's efficientnet never calls this")


class _PlaceholderType(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _PlaceholderType(name, (_Placeholder,), {})


class _StandInModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _PlaceholderType(name, (_Placeholder,), {})


class _TorchvisionStandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _StandInModule(spec.name)

    def exec_module(self, module):
        module.__path__ = []


def import_timm():
    """timm imports torchvision when imported (FrozenBatchNorm2d, transforms, datasets) though its
    efficientnet never uses it. PyPI's Linux torchvision is a CUDA build that does not load beside
    the CPU torch wheel, so the Makefile installs timm without it; then stand-ins that raise on use
    are registered for timm's import only. A working torchvision is used as is."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - missing, or a CUDA build that fails to load its ops
        for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        finder = _TorchvisionStandIn()
        sys.meta_path.insert(0, finder)
        try:
            import timm
        finally:
            sys.meta_path.remove(finder)
            for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
                del sys.modules[name]
    import timm

    return timm


def torch_and_timm():
    """(torch, timm), or skip the test saying how to install them."""
    try:
        import torch
    except ImportError:
        pytest.skip("torch is not installed: `make install` installs the parity extra")
    try:
        timm = import_timm()
    except ImportError:
        pytest.skip("timm is not installed: `make install` installs it (--no-deps)")
    torch.set_num_threads(2)
    return torch, timm
