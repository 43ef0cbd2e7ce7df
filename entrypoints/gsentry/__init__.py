"""
Shared code of the GraphStorm job entry points (copied to /opt/ml/code/gsentry in the image).

One module per job: ``contract`` (the SageMaker container contract), ``transfer`` (s3:// and
file:// copies), ``graphdata`` (what each host downloads), ``process`` (running GraphStorm,
surfacing its error, stop signals), ``cluster`` (rendezvous and peer watchdog), ``launcher``
(this host's share of GraphStorm's distributed job and of its ID remap step), ``job`` (the
sequence every host runs), ``model`` (model artifact layout), ``isolation`` (a private /dev/shm
on shared machines), ``manifest`` (the manifest contract: what a step writes last and the next one checks), ``cli`` (our flags vs. GraphStorm's, exit codes), ``startup`` (how every entry
point starts, and what train and infer share before their hosts meet) and ``logs``.

Only the standard library and boto3 are imported here: torch, dgl and graphstorm run in child
processes, so the entry process stays small and starts fast.
"""
