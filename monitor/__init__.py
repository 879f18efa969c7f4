"""schoolnet-monitor: ICMP and SNMP health monitoring of a cooperative of school networks."""

__version__ = "0.1.0"
