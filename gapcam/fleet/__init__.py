"""Replay many bags at once (``gapcam fleet``) and compare two models on them (``gapcam compare``).

The fleet layer sits above :mod:`gapcam.replay` as replay sits above the core: one task per bag,
each task is exactly one ``replay_bag`` call, run by local worker processes or, with ``--ray``, as
Ray tasks. Ray is an optional extra (``pip install 'gapcam[fleet]'``) and is imported only inside
:mod:`gapcam.fleet.ray_runner`, so nothing else - this package included - needs it.
"""
