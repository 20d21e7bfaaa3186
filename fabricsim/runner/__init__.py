"""Runner: a scenario's trials, run on the engine's network models.

``simulation`` builds a scenario's fabric, workload plan and schedules and runs its trials into
records; ``parallel`` spreads the trials over processes or a Dask cluster; ``work_limits`` estimates a
scenario's work before anything is built.
"""
