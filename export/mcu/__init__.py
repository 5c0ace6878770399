"""The bundle on the wearable: dependency-free C99 for a Cortex-M4F, checked against the host.

graph.py     the INT8 QDQ graph -> the layers ORT executes, with its integer arithmetic explicit
generate.py  bundle -> C sources (fixed templates in c/ + generated gaitedge_params.{h,c})
host.py      the C built with the system cc and called via ctypes (parity tests)
arm.py       arm-none-eabi-gcc build, QEMU mps2-an386 run, unicorn instruction counts
parity.py    C vs ONNX Runtime, the Python chain and the alert rules on real recordings

    python -m export.mcu gaitedge/models/gaitedge-default.onnx --out build/mcu
"""

from export.mcu.generate import DeviceConfig, generate
from export.mcu.graph import GraphError, QuantNet, read_quant_net

__all__ = ["DeviceConfig", "GraphError", "QuantNet", "generate", "read_quant_net"]
