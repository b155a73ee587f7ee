"""The command line on top: ``recsys-checks`` and how results are printed for a person or a machine."""
