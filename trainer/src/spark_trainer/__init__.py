"""Reference trainer for real models: trainer protocol v1 on PyTorch."""
