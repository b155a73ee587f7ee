"""The levers: every action that changes a deployment, each with its plan/apply contract, its guard and its audit record."""
