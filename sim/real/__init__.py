"""Real brokers: start them on loopback, measure them, fit ``sim``'s broker model to them, and compare.

``servers`` starts and stops a broker (RabbitMQ, Mosquitto, NATS) in a folder of its own on a free loopback
port; ``load`` is the open-loop schedule and the per-message recorder with its Parquet format; ``rabbitmq``,
``mqtt`` and ``nats`` are the client adapters; ``fit`` turns a low-load measurement into a broker profile;
``predict`` compares what the profile predicts with what was measured. The clients are the ``[real]`` extra;
this package imports them only when an adapter runs. See docs/calibrate.md.
"""
