"""Helpers for integration tests: pjsua2 softphones in subprocesses, SIPp runners, WAV analysis.

Nothing in this package imports ``pjsua2`` except :mod:`tests.support.softphone_agent`, which
runs in its own process; the pytest process stays free of PJSIP.
"""
