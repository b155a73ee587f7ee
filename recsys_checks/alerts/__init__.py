"""``recsys-checks alerts serve``: an Alertmanager receiver that answers every alert with a diagnosis.

An alert arrives (Alertmanager's webhook, version 4, with a bearer token), is matched to the runbooks whose spec
lists it under ``alerts:``, the surfaces behind it are found (the suite's alerts carry no tenant or surface label:
a fleet freshness scan, a probe of every published surface), and each matching runbook runs as a **dry run** for the
worst surfaces found broken. Every incident keeps the alert, the run records and the executed notebooks rendered to
HTML under ``--out``; ``GET /incidents`` lists them.

Its command line is :mod:`recsys_checks.cli.receiver`; the server (:mod:`recsys_checks.alerts.server`) is imported
when the command runs. The receiver drives ``recsys-checks`` through its stable command line
as subprocesses (:mod:`recsys_checks.alerts.checks`), never with ``--execute``.
"""
