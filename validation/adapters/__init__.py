"""Adapters that run outside retrievals under the harness's plug-in contract.

Each adapter module exposes ``retrieve(observation: xarray.Dataset) -> xarray.Dataset``:
it converts a harness observation (residual Doppler, Mars-centred J2000 state vectors) into
the outside code's inputs, calls that code's own routines unchanged, and returns a profile
Dataset on dim ``altitude`` (plus per-ray ``bending_angle``/``impact_parameter`` on dim
``level``), so the harness can judge the outside code stage by stage. The outside package
is an optional dependency: importing an adapter never imports it; calling ``retrieve``
does, and raises :class:`retrieval.errors.RoharnessError` with the install line when it is
missing.
"""
