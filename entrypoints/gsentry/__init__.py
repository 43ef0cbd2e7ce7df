"""Shared code of the GraphStorm job entry points (copied to /opt/ml/code/gsentry in the image).

One module per job: ``contract`` (the SageMaker container contract), ``transfer`` (s3:// and
file:// copies), ``graphdata`` (what each host downloads), ``process`` (running GraphStorm and
surfacing its error), ``cluster`` (rendezvous and peer watchdog), ``launcher`` (this host's share
of GraphStorm's distributed job), ``remap`` (GraphStorm's ID remap step), ``model`` (model
artifact layout), ``cli`` (our flags vs. GraphStorm's) and ``logs``.

Only the standard library and boto3 are imported here: torch, dgl and graphstorm run in child
processes, so the entry process stays small and starts fast.
"""
