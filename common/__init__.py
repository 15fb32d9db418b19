"""Helpers every layer may use: timestamps, query helpers and the domain's errors. Imports no app."""
