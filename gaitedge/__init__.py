"""gaitedge: gait and activity recognition from wearable IMUs, from research to the edge."""

from gaitedge.preprocess import (
    BadSamplePolicy,
    ChainConfig,
    ChainInputError,
    StreamingChain,
    fit_normalization,
    run_offline,
)
from gaitedge.recording import Recording, RecordingError, RecordingWriter, read_recording
from gaitedge.windows import Windower, Windows

__version__ = "0.1.0"

__all__ = [
    "BadSamplePolicy",
    "ChainConfig",
    "ChainInputError",
    "Recording",
    "RecordingError",
    "RecordingWriter",
    "StreamingChain",
    "Windower",
    "Windows",
    "__version__",
    "fit_normalization",
    "read_recording",
    "run_offline",
]
