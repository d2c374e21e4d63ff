"""Reflex states: unpack input, call a service, set vars, redirect. Nothing else."""
