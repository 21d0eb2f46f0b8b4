"""Contracts shared by every GPUBROKER component."""
