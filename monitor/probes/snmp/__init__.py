"""SNMP, one module per job (imports nothing, so the lab can use the codec without pysnmp):

- poll.py: one poll of a device and the SNMP probe kind (SnmpProber): identification, profile
  scalars and columns, the reboot rule;
- walk.py: the requests of a poll: GETs, walks of several columns per GETBULK/GETNEXT;
- interfaces.py: interface rows and their counters (32-bit wraps unfolded);
- transport.py: GET/GETNEXT/GETBULK over pysnmp's engines, auth entries and sockets;
- pysnmp_adapter.py: every touchpoint of pysnmp internals, verified at import;
- ber.py: the strict BER codec of the fast path and the lab's agents.
"""
