"""Heads map the trunk's latent vector to every task's outputs, concatenated in task order.

A head is one Python file here plus one YAML file in conf/head/ whose `_target_` names it.
Heads are built as `Head(layout=..., trunk=TrunkSpec, **yaml options)` and return one tensor
(batch, layout.total), so losses and decoding never depend on the head design.
"""
