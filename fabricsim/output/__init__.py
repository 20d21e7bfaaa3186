"""Output: what a run leaves behind and how runs are judged, above the runner.

``results`` writes a run's folder (summary.json, trials.csv, links.csv, flows.csv, ports.csv, plots,
report.html) from records as they arrive, through ``columns``, ``usage``, ``summary_text``, ``plots``,
``breakdown_plot`` and ``report``, the pictures drawn by worker processes (``painters``) in
``fabricsim run``; ``result_folder`` writes folders whole and only over its own;
``stats`` holds the percentile and bandwidth arithmetic; ``sample``, ``baseline`` and ``compare`` (with
``compare_plots``) hold runs to baselines and to each other; ``sweep`` (with ``sweep_plot``) runs one
collective over a range of sizes as nccl-tests does.
"""
