"""The algorithms, one file each, reading top to bottom (collect -> advantages -> update -> log):
``sft`` (language models), ``bc`` (behaviour cloning of a Gaussian MLP, the ``sft`` agent on
Box-action envs), ``grpo``, ``trpo`` and ``filtered``. Their configs are in
:mod:`agents.algos.configs`, their names in :mod:`agents.algos.registry`. An algorithm never
imports another one."""
