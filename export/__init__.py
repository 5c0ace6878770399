"""Export: distil, quantise and package models as self-describing ONNX / TensorRT bundles.

onnx.py      PyTorch -> ONNX bundle with its contract, checked against PyTorch
distill.py   MAE teacher -> small CNN student (student.py) on unlabelled windows
quantize.py  ONNX FP32 -> INT8 static (QDQ), INT8 dynamic, FP16
parity.py    artifact vs artifact on real held-out windows, and held-out accuracy
trt.py       ONNX -> TensorRT engine (where TensorRT is installed)
"""
