"""edgeship: Keras model to verified device artifacts, and a runtime to run them.

Stages live in sub-packages: ``edgeship.train``, ``edgeship.compress``,
``edgeship.export`` and ``edgeship.runtime`` (the only one a device needs).
This package itself stays import-light: no TensorFlow, no engines.
"""

__version__ = "0.1.0"
