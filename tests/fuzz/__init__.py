"""Fuzz suite of issue 17: hostile and random inputs must keep the CLI's hardening contract.

Four hypothesis families (prediction CSVs, audit specs, baselines, command lines) and
crafted hostile model files; the contract is in ``_contract.py``. Inputs per test are
each module's ``EXAMPLES`` (times ``$XAI_FUZZ_SCALE``, default 1), drawn reproducibly
(``derandomize``); the run's calls per family print in the terminal summary, and
``--hypothesis-show-statistics`` shows what kinds of input were drawn.
"""
