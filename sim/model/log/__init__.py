"""The partitioned, replicated log (Kafka's model): the cluster of brokers holding a topic's partitions
(:mod:`sim.model.log.cluster`) and the consumer group's coordinator (:mod:`sim.model.log.group`)."""
