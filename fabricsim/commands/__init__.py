"""Subcommands of the ``fabricsim`` command line, one module each; ``fabricsim.cli`` registers them."""
