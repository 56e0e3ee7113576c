"""Multi-task losses. A loss is one Python file here plus one YAML file in conf/loss/.

Every loss also decides how its outputs become per-task class probabilities, because that
is where BCE and CE really differ: the network can be identical.
"""
