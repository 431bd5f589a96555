//! Apache Kafka's own command-line tools (kafka-tools, from Maven), run against a broker.
