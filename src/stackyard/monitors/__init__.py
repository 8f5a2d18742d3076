"""Monitors: checks that watch the warehouse's tables and say when something looks wrong.

:mod:`stackyard.monitors.anomaly` judges a table's daily volume against its own history.
"""
