"""Loss and gradient evaluated data-parallel on a Dask cluster (``backend: {evaluator: dask}``).

:mod:`~paceui.fit.dask.evaluator` holds the client side (``DaskBackend``, ``DaskEvaluator``, the sharded
loss), :mod:`~paceui.fit.dask.shards` what a worker holds and runs (shards, their recipes, the per-shard
loss sums), :mod:`~paceui.fit.dask.prepare` the data preparation whose neighbour lists the workers build.
Nothing here imports ``distributed`` until a cluster is used.
"""
