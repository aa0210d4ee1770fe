"""ROS 2 lifecycle nodes, one job each, on top of core, snn, power and backends."""
