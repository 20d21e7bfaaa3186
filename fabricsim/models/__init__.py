"""Models: what a workload is made of, described by shape alone.

``transformer`` counts a Llama-family transformer's parameters and FLOPs, ``layers`` the parameters of
layer-list models. The tables the scenario schema validates against live below, in ``fabricsim.config``:
``config.hf_config`` reads a Hugging Face config.json as plain JSON, ``config.devices`` holds public peak
figures of GPUs and their links.
"""
