"""Foundations every layer uses: errors with their exit codes, results and how they read, time and JSON formats, the one secret rule."""
