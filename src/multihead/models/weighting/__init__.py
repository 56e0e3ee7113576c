"""Task weighting: how the per-task losses become one training signal (`weighting=`).

One Python file here plus one YAML file in conf/weighting/ whose `_target_` names the class.
"""
