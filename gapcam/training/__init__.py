"""Training and ONNX export of the reference network (optional extra: needs torch).

Nothing in the runtime imports this package; ``pip install .[train]`` brings torch.
"""
