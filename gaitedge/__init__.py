"""gaitedge: gait and activity recognition from wearable IMUs, from research to the edge.

The public API is re-exported lazily (PEP 562 module ``__getattr__``): ``import gaitedge`` stays
light, so ``gaitedge --help`` does not pay for numpy, scipy.signal or onnxruntime; a name is
imported from its home module the first time it is used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> home module
_EXPORTS = {
    "Analysis": "gaitedge.api",
    "Decision": "gaitedge.api",
    "analyse": "gaitedge.api",
    "stream": "gaitedge.api",
    "ActivityConfig": "gaitedge.alerts",
    "ActivitySmoother": "gaitedge.alerts",
    "Alert": "gaitedge.alerts",
    "AlertType": "gaitedge.alerts",
    "FallConfig": "gaitedge.alerts",
    "FallDetector": "gaitedge.alerts",
    "ContractError": "gaitedge.bundle",
    "ModelContract": "gaitedge.bundle",
    "read_contract": "gaitedge.bundle",
    "OnnxEngine": "gaitedge.engine",
    "load_engine": "gaitedge.engine",
    "FormatError": "gaitedge.formats",
    "ReadOptions": "gaitedge.formats",
    "read": "gaitedge.api",
    "Pipeline": "gaitedge.pipeline",
    "BadSamplePolicy": "gaitedge.preprocess",
    "ChainConfig": "gaitedge.preprocess",
    "ChainInputError": "gaitedge.preprocess",
    "StreamingChain": "gaitedge.preprocess",
    "fit_normalization": "gaitedge.preprocess",
    "run_offline": "gaitedge.preprocess",
    "Recording": "gaitedge.recording",
    "RecordingError": "gaitedge.recording",
    "RecordingWriter": "gaitedge.recording",
    "read_recording": "gaitedge.recording",
    "Windower": "gaitedge.windows",
    "Windows": "gaitedge.windows",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gaitedge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
