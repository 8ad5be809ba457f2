"""The simulated system: links, routing, the network and its cut-through fast variant, nodes, workloads,
brokers and faults."""
