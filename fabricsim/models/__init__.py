"""Models: what a workload is made of, described by shape alone.

``transformer`` counts a Llama-family transformer's parameters and FLOPs, ``layers`` the parameters of
layer-list models, ``hf_config`` reads a Hugging Face config.json as plain JSON, ``devices`` holds
public peak figures of GPUs and their links. ``hf_config`` and ``devices`` import nothing from
fabricsim, so the scenario schema (``fabricsim.config``) can build on them.
"""
