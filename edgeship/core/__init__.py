"""edgeship.core — the foundations every stage imports: errors, the manifest's records, metrics, parity, the task type.

Numpy and the standard library only (``tf`` loads TensorFlow lazily, on first use, for the build side).
Nothing here imports a stage (train, compress, export, runtime) or the orchestrator in ``edgeship``.
"""
