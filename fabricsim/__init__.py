"""fabricsim: a discrete-event emulator of a GPU cluster's network fabric for collective communication.

The public API follows four steps: load a scenario, build its fabric and workload, run the trials,
read the records (see ``fabricsim.runner.simulation``).
"""

from fabricsim.version import __version__
