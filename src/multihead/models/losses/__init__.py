"""Losses. `multitask.MultiTaskLoss` combines one `base.TaskLoss` per task, chosen by name.

A new task loss is one Python file here whose module name is the loss name (`corn.py` holds
the TaskLoss named "corn") plus one preset YAML in conf/loss/. Every loss also decides how its
outputs become class probabilities and a decoded class, because that is where the losses
really differ: the network can be identical.
"""
