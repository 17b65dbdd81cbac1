"""Hidden-layer activations of the MLPs, by name: configs validate the names without importing
torch; :func:`agents.policies.mlp.build_mlp` turns them into ``torch.nn`` modules."""

ACTIVATIONS: dict[str, str] = {"tanh": "Tanh", "relu": "ReLU", "elu": "ELU", "gelu": "GELU", "silu": "SiLU"}
