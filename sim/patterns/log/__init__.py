"""The partitioned log (Kafka's model): producers append keyed records to a replicated topic's partitions,
and a consumer group reads them, each partition by one member, committing its offsets.

The cluster (partitions, replication, elections, retention) is :mod:`sim.model.log.cluster`, the group's
coordinator :mod:`sim.model.log.group`; this package holds the pattern's options and one run's wiring
(:mod:`~sim.patterns.log.pattern`) and its clients (:mod:`~sim.patterns.log.producer`,
:mod:`~sim.patterns.log.consumer`).

- **Producers** pick each record's key (``keys``) and its partition (a stable hash of the key, or round-robin
  without keys), gather records per partition into batches (sent when ``batch_size`` bytes are reached or
  ``linger`` after the first record, as soon as fewer than ``max_in_flight`` batches of that partition await
  an answer) and send each batch to the partition's leader. With ``acks`` 1 or ``"all"`` a batch is retried
  ``ack_timeout * backoff**(attempt-1)`` after it was sent, or after an error answer, up to ``max_attempts``
  (``[delivery]``); then its records are lost with the last reason noted. ``idempotent`` producers number
  their records, so that the leader drops a retried batch it already has and refuses one out of order.
- **Consumers** fetch from each of their partitions' leader from their position up to the high watermark,
  hand the records to the node's workers (its service time, its servers), and fetch again once those are
  processed (``fetch_interval`` later when there was nothing). A record's ledger row is delivered when a
  worker processes it. ``commit = "periodic"`` commits the position (everything fetched) every
  ``commit_interval``; ``"after_processing"`` commits once all the records of a fetch are processed (as a
  consumer's synchronous commit after each poll's records).

One ledger row per record (one group): ``dst`` is the group's name, not a node (the group, whichever member
holds the partition, owes the processing; a broker down at the end excuses nothing), ``topic`` is
``<topic>/<key>`` (``<topic>`` without keys), so that ``delivery.ordering = "per_key"`` checks each
producer's per-key order.
"""

from sim.patterns.log.pattern import Log

__all__ = ["Log"]
