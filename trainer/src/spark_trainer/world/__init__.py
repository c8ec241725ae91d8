"""The neural world: small transformers trained from scratch here play SPARK's roles.

Not the product: a world for tests and experiments where every step still has a known truth.
The text comes from the TypeScript side (`sandbox/neural/export.ts`: the sandbox's one problem
generator and the project's own prompts); this package trains a tokenizer and the models on it,
measures them on held-out problems and writes `world.json`. See `docs/neural-world.md`.
"""
