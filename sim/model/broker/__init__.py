"""The broker: an application on a node with queues, topics, acks, redelivery and dead letters."""
