"""The local multi-region lab: several real Kubernetes control planes on one machine.

gridaware moves work between clusters, so its tests and demos need several real API servers.
The ``binary`` backend runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler and a
KWOK controller per cluster as plain processes (no Docker); the ``kind`` backend produces the
equivalent kind clusters for machines that do have Docker.
"""
