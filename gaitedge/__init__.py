"""gaitedge: gait and activity recognition from wearable IMUs, from research to the edge."""

from gaitedge.alerts import (
    ActivityConfig,
    ActivitySmoother,
    Alert,
    AlertType,
    FallConfig,
    FallDetector,
)
from gaitedge.bundle import ContractError, ModelContract, read_contract
from gaitedge.engine import OnnxEngine, load_engine
from gaitedge.pipeline import Pipeline
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
    "ActivityConfig",
    "ActivitySmoother",
    "Alert",
    "AlertType",
    "BadSamplePolicy",
    "ChainConfig",
    "ChainInputError",
    "ContractError",
    "FallConfig",
    "FallDetector",
    "ModelContract",
    "OnnxEngine",
    "Pipeline",
    "Recording",
    "RecordingError",
    "RecordingWriter",
    "StreamingChain",
    "Windower",
    "Windows",
    "__version__",
    "fit_normalization",
    "load_engine",
    "read_contract",
    "read_recording",
    "run_offline",
]
